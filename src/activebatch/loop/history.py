"""The record of one run: a :class:`RoundRecord` per round, gathered in a :class:`History`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .stopping import COLUMNS as STOPPING_COLUMNS

__all__ = ["History", "RoundRecord", "class_entropy", "RESULT_COLUMNS", "DETAIL_COLUMNS"]

#: Columns of :meth:`History.to_frame`, as in DESIGN.md ("Results").
RESULT_COLUMNS = ["dataset", "model", "batch_size", "strategy", "seed", "round", "n_labeled",
                  "test_accuracy", "train_seconds", "select_seconds", "class_histogram",
                  "class_entropy", "train_epochs", "train_accuracy", "balanced_accuracy", "macro_f1",
                  "selection_notes"]

_RECORD_DETAILS = ["n_pseudo_labeled", "ceal_threshold", "proxy_test_accuracy",
                   "proxy_train_seconds", "strategy_state", "forgetting_events", "unforgettable", "never_learned"]

#: Further columns of ``History.to_frame(details=True)`` (loop options, strategy state, forgetting counts,
#: and the stopping rules' values and verdicts when the run computed them: ``run(stopping=...)``).
DETAIL_COLUMNS = _RECORD_DETAILS + STOPPING_COLUMNS


@dataclass
class RoundRecord:
    """One round of a run: the batch just labeled and the model trained afterwards."""

    round: int
    n_labeled: int
    test_accuracy: float
    train_seconds: float
    select_seconds: float
    train_epochs: int
    train_accuracy: float
    selected: np.ndarray           # pool indices labeled in this round, in selection order
    class_histogram: list[int]     # labels of ``selected`` counted per class
    n_pseudo_labeled: int = 0                  # CEAL: pseudo-labeled items in this round's training set
    ceal_threshold: float | None = None        # CEAL: the entropy threshold of this round
    proxy_test_accuracy: float | None = None   # proxy: the selection model's test accuracy
    proxy_train_seconds: float | None = None   # proxy: time to train the selection model
    strategy_state: dict | None = None         # stateful strategies: state after this round
    selected_scores: np.ndarray | None = None  # the strategy's score of each pick (see Selection.scores)
    # Forgetting events on the selection model's training set in its last fit (Toneva et al., ICLR 2019),
    # when the fit ran activebatch.learning.ForgettingEvents: events, unforgettable and never-learned rows.
    forgetting_events: int | None = None
    unforgettable: int | None = None
    never_learned: int | None = None
    balanced_accuracy: float | None = None     # mean per-class recall on the test set
    macro_f1: float | None = None              # mean per-class F1 on the test set
    # run(stopping=...): each stopping rule's value and verdict after this round (activebatch.loop.stopping)
    stopping: dict | None = None
    # what the strategy said about this round's selection (Selection.notes: e.g. BatchBALD saturating)
    selection_notes: tuple[str, ...] = ()


@dataclass
class History:
    """The rounds of one run, with the run's identifying fields."""

    dataset: str
    model: str
    strategy: str
    batch_size: int
    seed: int | None
    n_classes: int
    rounds: list[RoundRecord] = field(default_factory=list)
    #: Loop options of the run: ``{"ceal": {...}}`` and/or ``{"proxy": "<model name>"}``.
    options: dict[str, Any] = field(default_factory=dict)
    #: The strategy's :meth:`~activebatch.strategies.Strategy.state_dict` at the end of the run
    #: (``{}`` for stateless strategies); give it to ``load_state_dict`` to continue.
    strategy_state: dict | None = None
    #: Why the run has fewer rounds than asked (the pool ran out, or a stopping rule said stop), or None.
    stop_reason: str | None = None
    #: The stopping rule that ended the run (``run(stopping=...)``), or None.
    stopped_by: str | None = None
    #: Wall seconds spent in :func:`~activebatch.run`, summed over its executions when it resumed
    #: from a checkpoint.
    seconds: float | None = None
    #: The rounds after which the run resumed from a checkpoint (``run(checkpoint=...)``), in order.
    resumed_after: list[int] = field(default_factory=list)

    def to_frame(self, details: bool = False) -> pd.DataFrame:
        """One row per round with the DESIGN.md results columns; ``class_histogram`` holds a
        list of K counts of the labels acquired in that round and ``class_entropy`` its entropy;
        ``selection_notes`` the strategy's notes on that round's selection (a list, usually empty).
        ``details=True`` adds :data:`DETAIL_COLUMNS` (CEAL, proxy, strategy state, forgetting counts and
        the stopping rules)."""
        rows = [{
            "dataset": self.dataset, "model": self.model, "batch_size": self.batch_size,
            "strategy": self.strategy, "seed": self.seed, "round": r.round, "n_labeled": r.n_labeled,
            "test_accuracy": r.test_accuracy, "train_seconds": r.train_seconds,
            "select_seconds": r.select_seconds, "class_histogram": list(r.class_histogram),
            "class_entropy": class_entropy(r.class_histogram),
            "train_epochs": r.train_epochs, "train_accuracy": r.train_accuracy,
            "balanced_accuracy": r.balanced_accuracy, "macro_f1": r.macro_f1,
            "selection_notes": list(r.selection_notes),
            **({k: getattr(r, k) for k in _RECORD_DETAILS} if details else {}),
            **({k: (r.stopping or {}).get(k) for k in STOPPING_COLUMNS} if details else {}),
        } for r in self.rounds]
        return pd.DataFrame(rows, columns=RESULT_COLUMNS + (DETAIL_COLUMNS if details else []))

    @property
    def selections(self) -> list[np.ndarray]:
        """Pool indices labeled in each round (round 0: the initial random set)."""
        return [r.selected for r in self.rounds]


def class_entropy(histogram: list[int] | np.ndarray) -> float:
    """Entropy (nats) of the class distribution of an acquired batch, from its histogram.

    The diversity measure of Kirsch et al. (BatchBALD, NeurIPS 2019, blog Figures 13/14): log K for
    a batch spread evenly over K classes, 0 for a batch of one class (or an empty batch).
    """
    h = np.asarray(histogram, dtype=np.float64)
    total = h.sum()
    if total <= 0:
        return 0.0
    p = h[h > 0] / total
    return float(-(p * np.log(p)).sum())
