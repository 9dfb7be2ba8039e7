"""The Strategy contract and the name registry."""
from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from ..kernels.scores import SAMPLINGS, sample_without_replacement, sampling_log_weights, top_n
from ..learning.evidence import FIELDS, Evidence
from ..utils.validation import check_choice, check_scalar

__all__ = ["Strategy", "ScoreStrategy", "Selection", "Feedback", "register", "get", "names", "strategy_class"]

_REGISTRY: dict[str, type[Strategy]] = {}

S = TypeVar("S", bound=type["Strategy"])


@dataclass(frozen=True)
class Selection:
    """The outcome of one selection: the picks in order and, where the strategy has them, their scores.

    As baal's ``get_ranks`` and batchbald_redux's ``CandidateBatch``, a selection says not only
    *which* candidates were chosen but *how much* each was worth when it was chosen.

    Attributes
    ----------
    indices : ndarray of int64, shape (n,)
        Distinct positions into the candidate rows, in selection order.
    scores : ndarray of float64, shape (n,), or None
        The value of each pick at the time it was picked (its uncertainty score for a ranking
        strategy, BatchBALD's conditional gain, BADGE's D^2, core-set's distance); None for
        strategies without one (random, k-DPP, ...). :attr:`score_name` says what it is.
    score_name : str or None
        What :attr:`scores` holds, with its direction.
    candidate_scores : ndarray of float64, shape (N,), or None
        The score of every candidate (ranking strategies); NaN for excluded rows.
    ids : ndarray of shape (n,), or None
        The candidates' ids (``Evidence.candidate_ids``) of the picks; set by the selection round.
    strategy : str
        The strategy's registered name.
    seconds : float
        Wall time of the strategy's work (set by the selection round).
    """

    indices: np.ndarray
    scores: np.ndarray | None = None
    score_name: str | None = None
    candidate_scores: np.ndarray | None = None
    ids: np.ndarray | None = None
    strategy: str = ""
    seconds: float = 0.0
    #: Strategy-specific notes on this selection (e.g. a k-DPP batch padded beyond the kernel's rank).
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def replace(self, **changes: Any) -> Selection:
        """A copy with ``changes`` applied (the selection is immutable)."""
        return replace(self, **changes)

    def to_frame(self) -> Any:
        """The picks as a pandas DataFrame: ``rank``, ``position``, ``id`` and ``score`` columns."""
        import pandas as pd

        data: dict[str, Any] = {"rank": np.arange(len(self)), "position": self.indices}
        data["id"] = self.indices if self.ids is None else self.ids
        if self.scores is not None:
            data["score"] = self.scores
        return pd.DataFrame(data)


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
    optionally ``optional`` (fields used when present) and ``score_name`` (what their per-pick
    scores mean), and implement :meth:`_select`, which may return the positions alone or a
    :class:`Selection` with scores. Options are keyword arguments of ``__init__``, checked there
    with :func:`~activebatch.utils.validation.check_scalar`. The public :meth:`select` and
    :meth:`query` check the request once; ``_select`` may assume 1 <= n <= N and that every
    field in ``needs`` is available.

    Strategies that learn across rounds set ``stateful = True`` and override :meth:`update`
    (called after each selection has been labeled and the model retrained), :meth:`state_dict`
    and :meth:`load_state_dict`; :meth:`begin` tells them the run's length. Strategies that
    need something from training (an extra head, per-epoch predictions) return training
    callbacks from :meth:`training_callbacks`; the loop and workspaces attach them to every
    fit of the selection model. The defaults do nothing.

    Check a new strategy with :func:`activebatch.testing.check_strategy`.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Evidence fields read when available but not required.
    optional: ClassVar[frozenset[str]] = frozenset()
    #: Whether the strategy keeps state between rounds (then the loop calls :meth:`update`).
    stateful: ClassVar[bool] = False
    #: What the per-pick scores of :meth:`query` mean (None: the strategy returns none).
    score_name: ClassVar[str | None] = None
    #: Whether the picks depend on the random generator for typical inputs (checked by
    #: :func:`activebatch.testing.check_strategy`: a randomised strategy must use its seed, a
    #: deterministic one must not depend on it).
    randomized: ClassVar[bool] = False

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
        return self.query(evidence, n, rng).indices

    def query(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        """Like :meth:`select`, returning the full :class:`Selection` (picks and their scores)."""
        missing = evidence.missing(self.needs)
        if missing:
            hints = ", ".join(f"{m} ({FIELDS[m]})" for m in missing)
            raise ValueError(f"strategy {self.name!r} needs evidence that was not given: {hints}")
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) \
                or not 1 <= n <= evidence.n_candidates:
            raise ValueError(f"n must be between 1 and the number of candidates "
                             f"({evidence.n_candidates}), got {n!r}")
        n = int(n)
        out = self._select(evidence, n, rng)
        sel = out if isinstance(out, Selection) else Selection(np.asarray(out))
        idx = np.asarray(sel.indices, dtype=np.int64).reshape(-1)
        if idx.shape != (n,) or np.unique(idx).size != n or idx.min() < 0 or idx.max() >= evidence.n_candidates:
            raise RuntimeError(f"strategy {self.name!r} returned an invalid selection {idx!r}: expected {n} "
                               f"distinct positions in 0..{evidence.n_candidates - 1}")
        scores = None if sel.scores is None else _as_float64(sel.scores, (n,), self.name, "scores")
        cand = (None if sel.candidate_scores is None
                else _as_float64(sel.candidate_scores, (evidence.n_candidates,), self.name, "candidate_scores"))
        return sel.replace(indices=idx, scores=scores, candidate_scores=cand, strategy=self.name,
                           score_name=sel.score_name or (self.score_name if scores is not None else None))

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray | Selection:
        raise NotImplementedError(f"{type(self).__name__} must implement _select(evidence, n, rng)")

    def training_callbacks(self, pool: Any = None) -> list[Any]:
        """Callbacks (:class:`activebatch.learning.Callback`) to attach to each fit of the model
        whose evidence this strategy reads; none by default.

        Parameters
        ----------
        pool : Pool, optional
            The pool being labeled (the loop and workspaces pass it), for callbacks that also
            train on the unlabeled items (``pool.features(pool.unlabeled_indices)``), such as an
            extra loss on unlabeled data.
        """
        return []

    def fit_artifact(self, learner: Any, what: str) -> Any:
        """What this strategy's training callbacks left in ``learner.fit_artifacts`` (under its
        name); a ``ValueError`` naming the remedy when the model was trained without them.

        Parameters
        ----------
        learner : Learner
        what : str
            What the strategy reads, for the message (e.g. "the loss prediction module").
        """
        found = getattr(learner, "fit_artifacts", {}).get(self.name)
        if found is None:
            raise ValueError(f"strategy {self.name!r} reads {what} trained with the model, and this model has none: "
                             "train it with the strategy's training callbacks (activebatch.run, grid specs and "
                             "workspaces attach them; with your own Learner pass "
                             "callbacks=strategy.training_callbacks(pool) to fit)")
        return found

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

    @classmethod
    def option_hint(cls, unknown: list[str]) -> str:
        """More to say when :func:`get` refuses the options ``unknown`` (appended to its message,
        e.g. where the options belong to a strategy that used to have this name); empty by default."""
        return ""

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
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown strategy {name!r}{hint}; known strategies: {', '.join(names())}") from None


def get(strategy: str | Strategy, **options: Any) -> Strategy:
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
        raise TypeError(f"strategy {strategy!r} got unknown option(s) {bad}; its options: {opts}"
                        f"{cls.option_hint(bad)}")
    return cls(**options)


def call_noting(category: type[Warning], fn: Callable[..., Any], *args: Any, **kwargs: Any
                 ) -> tuple[Any, tuple[str, ...]]:
    """``fn(*args, **kwargs)`` and the messages of the ``category`` warnings it raised, as notes
    for its :class:`Selection`. Every warning it raised is raised again from the strategy's
    caller, where the caller's warning filters apply (inside, ``category`` is always recorded)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        out = fn(*args, **kwargs)
    for w in caught:   # stack: here, _select, query, the selection round, its caller
        warnings.warn(w.message, w.category, stacklevel=5)
    return out, tuple(str(w.message) for w in caught if issubclass(w.category, category))


def _as_float64(values: Any, shape: tuple[int, ...], name: str, what: str) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    arr = arr.astype(np.float64, copy=False).reshape(-1)
    if arr.shape != shape:
        raise RuntimeError(f"strategy {name!r} returned {what} of shape {arr.shape}, expected {shape}")
    return arr


class ScoreStrategy(Strategy):
    """A strategy that ranks the candidates by one score each and takes the best n.

    Subclasses set ``fields`` (the Evidence fields the score reads, in the order it takes them;
    ``needs`` follows), ``largest`` (whether a larger score is better) and ``score_name``, and
    define :meth:`score` (for example ``score = staticmethod(margin_scores)``). Scores that
    look at each row by itself (``rowwise = True``, the default) are computed block by block
    from memory-mapped evidence, so a pool larger than memory is never read whole. The
    selection's scores are those of the picks; ``candidate_scores`` holds every candidate's.
    Ties go to the lowest position.

    Every score strategy also offers stochastic batch acquisition (Kirsch, Farquhar,
    Atighehchian, Jesson, Branchaud-Charron & Gal, "Stochastic Batch Acquisition: A Simple
    Baseline for Deep Active Learning", TMLR 2023): instead of the top n, the batch is drawn
    without replacement with probabilities proportional to a^beta (``"power"``), exp(beta a)
    (``"softmax"``) or rank^(-beta) (``"softrank"``), exactly, by Gumbel-top-k
    (:func:`~activebatch.kernels.scores.sample_without_replacement`). a is the acquisition score:
    the score itself when larger is better, and :meth:`informativeness` (1 - score by default,
    for scores in [0, 1] such as margin and least confidence) when smaller is better.

    Parameters
    ----------
    sampling : {"topk", "power", "softmax", "softrank"}, default "topk"
        How the batch is drawn from the scores.
    beta : float, default 1.0
        The inverse temperature of the stochastic rules (the paper's default).
    """

    fields: ClassVar[tuple[str, ...]] = ()
    largest: ClassVar[bool] = True
    rowwise: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.fields and "needs" not in cls.__dict__:
            cls.needs = frozenset(cls.fields)

    def __init__(self, sampling: str = "topk", beta: float = 1.0) -> None:
        self.sampling = check_choice(sampling, "sampling", SAMPLINGS)
        self.beta = check_scalar(beta, "beta", float, min_val=0, include_min=False)
        # The stochastic rules draw from the rng; top-k does not.
        self.randomized = self.sampling != "topk"

    def informativeness(self, scores: np.ndarray) -> np.ndarray:
        """The acquisition score a (larger = more informative) that the stochastic rules use.

        The score itself when ``largest``; otherwise ``1 - score``, right for scores in [0, 1]
        (margin, least confidence). Override for other scores that are better when smaller.
        """
        return scores if self.largest else 1.0 - scores

    def score(self, *fields: torch.Tensor) -> torch.Tensor:
        """One score per candidate, shape (N,), from the ``fields`` tensors."""
        raise NotImplementedError(f"{type(self).__name__} must define score(*fields)")

    def scores(self, evidence: Evidence) -> torch.Tensor:
        """Every candidate's score, shape (N,)."""
        if self.rowwise:
            return evidence.rowwise(self.score, *self.fields)
        return self.score(*(evidence.get(k) for k in self.fields))

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        s = self.scores(evidence)
        s_np = s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s)
        if getattr(self, "sampling", "topk") == "topk":
            idx = top_n(s_np, n, largest=self.largest)
        else:
            log_w = sampling_log_weights(self.informativeness(s_np.astype(np.float64)), self.sampling, self.beta)
            idx = sample_without_replacement(log_w, n, rng)
        return Selection(idx, scores=s_np[idx], candidate_scores=s_np)
