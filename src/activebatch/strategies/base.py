"""The Strategy contract and the name registry."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar, Callable, Mapping, TypeVar

import numpy as np

from ..learning.evidence import FIELDS, Evidence

__all__ = ["Strategy", "Feedback", "register", "get", "names", "strategy_class"]

_REGISTRY: dict[str, type["Strategy"]] = {}

S = TypeVar("S", bound=type["Strategy"])


@dataclass(frozen=True)
class Feedback:
    """What a stateful strategy learns after its selection was labeled and the model retrained.

    Parameters
    ----------
    ids : array of shape (m,)
        Identifiers of labeled items: at least every item the strategy selected so far (the loop
        passes the whole labeled set). Identifiers are those the strategy saw in
        ``Evidence.candidate_ids``: pool indices in :func:`activebatch.run`, and in
        :func:`activebatch.select` the ``ids`` given there (row positions by default).
    labels : array of int, shape (m,)
        Their labels.
    predictions : array of int, shape (m,), optional
        The classes predicted for them by the model retrained on the labels (ALBL's reward).
    """

    ids: Any
    labels: Any
    predictions: Any = None

    def __post_init__(self) -> None:
        from ..utils.validation import check_labels

        ids = np.asarray(self.ids)
        if ids.ndim != 1:
            raise ValueError(f"Feedback ids must be a 1-D array, got shape {ids.shape}")
        if np.unique(ids).size != ids.size:
            raise ValueError("Feedback ids must be distinct")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "labels", check_labels(self.labels, "Feedback labels", rows=ids.size))
        if self.predictions is not None:
            object.__setattr__(self, "predictions",
                               check_labels(self.predictions, "Feedback predictions", rows=ids.size))

    def lookup(self, ids: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (and predictions) of the items ``ids``; a ``ValueError`` names missing ones."""
        want = np.asarray(ids)
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        pos = np.searchsorted(sorted_ids, want)
        pos_c = np.minimum(pos, max(sorted_ids.size - 1, 0))
        found = (pos < sorted_ids.size) & (sorted_ids[pos_c] == want) if sorted_ids.size else \
            np.zeros(want.shape, dtype=bool)
        if not found.all():
            missing = want[~found]
            raise ValueError(f"Feedback lacks {missing.size} selected item(s) (e.g. {missing[:5].tolist()}); "
                             "pass the labels of every item the strategy selected so far")
        rows = order[pos_c]
        preds = None if self.predictions is None else self.predictions[rows]
        return self.labels[rows], preds


class Strategy:
    """Maps :class:`~activebatch.learning.evidence.Evidence` on N candidates to n distinct positions.

    Subclasses set ``name`` (registry key), ``needs`` (the Evidence fields they read),
    optionally ``optional`` (fields used when present) and implement :meth:`_select`. Options are keyword arguments of ``__init__``. The public
    :meth:`select` checks the request once; ``_select`` may assume 1 <= n <= N and that every
    field in ``needs`` is available.

    Strategies that learn across rounds set ``stateful = True`` and override :meth:`update`
    (called after each selection has been labeled and the model retrained), :meth:`state_dict`
    and :meth:`load_state_dict`; :meth:`begin` tells them the run's length. The defaults
    do nothing, so stateless strategies ignore all four.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Evidence fields read when available but not required.
    optional: ClassVar[frozenset[str]] = frozenset()
    #: Whether the strategy keeps state between rounds (then the loop calls :meth:`update`).
    stateful: ClassVar[bool] = False

    def __init__(self) -> None:
        """Strategies without options take no arguments."""

    def select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        """Choose ``n`` distinct candidate positions, in selection order.

        Parameters
        ----------
        evidence : Evidence
            Model outputs on the N candidates.
        n : int
            Batch size, 1 <= n <= N.
        rng : numpy.random.Generator
            The only source of randomness.

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        missing = evidence.missing(self.needs)
        if missing:
            hints = ", ".join(f"{m} ({FIELDS[m]})" for m in missing)
            raise ValueError(f"strategy {self.name!r} needs evidence that was not given: {hints}")
        if not 1 <= n <= evidence.n_candidates:
            raise ValueError(f"n must be between 1 and the number of candidates "
                             f"({evidence.n_candidates}), got {n}")
        out = np.asarray(self._select(evidence, n, rng), dtype=np.int64)
        if out.shape != (n,) or np.unique(out).size != n or out.min() < 0 or out.max() >= evidence.n_candidates:
            raise RuntimeError(f"strategy {self.name!r} returned an invalid selection {out!r}")  # pragma: no cover
        return out

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _select(evidence, n, rng)")

    # State across rounds (no-ops for stateless strategies) ------------------------------------
    def begin(self, *, rounds: int | None = None, budget: int | None = None) -> None:
        """Called by :func:`activebatch.run` before its first selection.

        Parameters
        ----------
        rounds : int, optional
            The number of selections the run will ask for.
        budget : int, optional
            The number of items the run will select in total.
        """

    def update(self, feedback: Feedback) -> None:
        """Learn from the labels of the last selection (called after the model was retrained)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything learned so far, as plain (JSON-serialisable) data; ``{}`` when stateless."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ValueError(f"strategy {self.name!r} keeps no state, got keys {sorted(state)}")

    def get_params(self) -> dict[str, Any]:
        """The strategy's options (the keyword arguments of its constructor)."""
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self" and hasattr(self, k)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def register(cls: S) -> S:
    """Class decorator adding a Strategy subclass to the registry under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not cls.name:
        raise TypeError("register expects a Strategy subclass with a non-empty name")
    unknown = (set(cls.needs) | set(cls.optional)) - set(FIELDS)
    if unknown:
        raise TypeError(f"strategy {cls.name!r} needs unknown evidence fields {sorted(unknown)}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a strategy named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Names of all registered strategies, sorted."""
    return sorted(_REGISTRY)


def strategy_class(name: str) -> type[Strategy]:
    """The registered class for ``name``; unknown names raise a ``ValueError`` listing the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"strategy name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(names())}") from None


def get(strategy: "str | Strategy", **options: Any) -> Strategy:
    """A Strategy instance from a registered name and options (or an instance, returned as is)."""
    if isinstance(strategy, Strategy):
        if options:
            raise TypeError("options can only be given with a strategy name, not with a Strategy instance")
        return strategy
    cls = strategy_class(strategy)
    params = inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    allowed = [k for k in params if k != "self" and params[k].kind is not params[k].VAR_KEYWORD]
    bad = [k for k in options if k not in allowed]
    if bad and not accepts_any:
        opts = ", ".join(allowed) if allowed else "none"
        raise TypeError(f"strategy {strategy!r} got unknown option(s) {bad}; its options: {opts}")
    return cls(**options)


def _ranked(scores, n: int, *, largest: bool) -> np.ndarray:
    """Top-n positions by score (stable: ties go to the lowest index), best first."""
    import torch

    s = scores.detach().to(torch.float64)
    s = -s if largest else s
    order = torch.sort(s, stable=True).indices[:n]
    return order.cpu().numpy()


Ranker = Callable[..., np.ndarray]
