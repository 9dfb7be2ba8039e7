"""Forgetting events on the training set, recorded during a fit (a diagnostic callback).

Toneva, Sordoni, Combes, Trischler, Bengio & Gordon, "An Empirical Study of Example Forgetting
during Deep Neural Network Learning", ICLR 2019: an example is *presented* each time
it appears in a mini-batch, and is classified correctly or not by the forward pass of that
mini-batch (before the optimiser's step). A *forgetting event* is a transition from correct at
one presentation to incorrect at the next presentation of the same example; a *learning event*
the reverse. Examples that are classified correctly at some presentation and never suffer a
forgetting event are *unforgettable*; examples that are never classified correctly are *never
learned* (the paper ranks them with the most forgettable ones); the rest are *forgettable*.
The three groups partition the training set.

:class:`ForgettingEvents` counts them during any :meth:`~activebatch.Learner.fit` and leaves a
:class:`ForgettingStats` in ``learner.fit_artifacts[FORGETTING_KEY]``; :func:`activebatch.run`
copies the counts of the selection model's last fit into each round's record
(``History.to_frame(details=True)``: ``forgetting_events``, ``unforgettable``, ``never_learned``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .callbacks import BatchState, Callback, FitState

__all__ = ["FORGETTING_KEY", "ForgettingEvents", "ForgettingStats", "forgetting_stats"]

#: Where :class:`ForgettingEvents` leaves its :class:`ForgettingStats` in ``Learner.fit_artifacts``.
FORGETTING_KEY = "forgetting_events"


@dataclass(frozen=True)
class ForgettingStats:
    """Forgetting statistics of one fit's training rows.

    Attributes
    ----------
    events : ndarray of int64, shape (n,)
        Forgetting events of each training row (correct, then incorrect at its next presentation).
    learned : ndarray of bool, shape (n,)
        Whether the row was classified correctly at some presentation.
    """

    events: np.ndarray
    learned: np.ndarray

    @property
    def n_events(self) -> int:
        """Forgetting events summed over the training rows."""
        return int(self.events.sum())

    @property
    def n_unforgettable(self) -> int:
        """Rows learned at some presentation and never forgotten."""
        return int(np.count_nonzero(self.learned & (self.events == 0)))

    @property
    def n_never_learned(self) -> int:
        """Rows never classified correctly."""
        return int(np.count_nonzero(~self.learned))

    @property
    def n_forgettable(self) -> int:
        """Rows with at least one forgetting event."""
        return int(np.count_nonzero(self.events > 0))

    def counts(self) -> dict[str, int]:
        """The four counts as a dict (``forgetting_events``, ``forgettable``, ``unforgettable``,
        ``never_learned``)."""
        return {"forgetting_events": self.n_events, "forgettable": self.n_forgettable,
                "unforgettable": self.n_unforgettable, "never_learned": self.n_never_learned}


def forgetting_stats(correct_TN: Any) -> ForgettingStats:
    """Forgetting statistics from each example's presentations, in order.

    Parameters
    ----------
    correct_TN : array of bool, shape (T, N)
        ``correct_TN[t, i]``: whether example i was classified correctly at its t-th presentation.

    Returns
    -------
    ForgettingStats
        ``events[i]`` = #{t >= 1 : correct[t - 1, i] and not correct[t, i]},
        ``learned[i]`` = any(correct[:, i]).
    """
    c = np.asarray(correct_TN)
    if c.ndim != 2:
        raise ValueError(f"correct_TN must have shape (T, N), got {c.shape}")
    if c.dtype != np.bool_:
        if not np.isin(c, (0, 1)).all():
            raise ValueError("correct_TN must hold booleans (or 0/1)")
        c = c.astype(bool)
    forgot = c[:-1] & ~c[1:]
    return ForgettingStats(forgot.sum(axis=0).astype(np.int64), c.any(axis=0))


class ForgettingEvents(Callback):
    """Count forgetting events (Toneva et al., ICLR 2019) on the training rows of every fit.

    After each mini-batch's optimiser step, the mini-batch's predictions from its forward pass
    (``batch.logits``, taken before the step, as the paper's presentations are) are compared with
    ``batch.y``; each row's previous presentation is kept on the learner's device, so the cost is
    O(batch) per step. At the end of the fit a :class:`ForgettingStats` is stored in
    ``fit.artifacts[FORGETTING_KEY]``. Rows are those of the fit's training set (with CEAL's
    pseudo-labels, those rows too); a committee's statistics are its first member's.

    Attach it to any learner (``Learner(..., callbacks=[ForgettingEvents()])`` or
    ``fit(..., callbacks=[...])``); the ``label_dispersion`` strategy attaches it with its own.
    """

    def __init__(self) -> None:
        self._prev: torch.Tensor | None = None
        self._events: torch.Tensor | None = None
        self._learned: torch.Tensor | None = None

    def on_fit_start(self, fit: FitState) -> None:
        n, dev = int(fit.y.shape[0]), fit.y.device
        # A row's first presentation cannot be a forgetting event: "previously correct" starts False.
        self._prev = torch.zeros(n, dtype=torch.bool, device=dev)
        self._events = torch.zeros(n, dtype=torch.int64, device=dev)
        self._learned = torch.zeros(n, dtype=torch.bool, device=dev)

    def on_batch_end(self, fit: FitState, batch: BatchState) -> None:
        assert self._prev is not None and self._events is not None and self._learned is not None
        idx = batch.index
        correct = batch.logits.detach().argmax(dim=1) == batch.y
        # the rows of one mini-batch are distinct, so these indexed updates do not collide
        self._events[idx] += (self._prev[idx] & ~correct).to(torch.int64)
        self._learned[idx] |= correct
        self._prev[idx] = correct

    def on_fit_end(self, fit: FitState) -> None:
        assert self._events is not None and self._learned is not None
        fit.artifacts[FORGETTING_KEY] = ForgettingStats(self._events.cpu().numpy(), self._learned.cpu().numpy())
        self._prev = self._events = self._learned = None
