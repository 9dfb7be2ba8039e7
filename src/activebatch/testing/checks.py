"""The shared contract checks every strategy must pass.

Each check takes a :class:`~activebatch.strategies.Strategy` instance (its options are kept; a
fresh copy is built from :meth:`~activebatch.strategies.Strategy.get_params` wherever a run
must not see an earlier one) and raises :class:`StrategyCheckError` (an ``AssertionError``)
whose message names the rule that was broken. Strategies that read arrays run on
:func:`~activebatch.testing.make_evidence`; strategies that read the model itself
(``learner``/``pool``) on a small trained model (:func:`~activebatch.testing.make_model_evidence`),
where the checks that transform arrays (dtypes, permutations, input copies) do not apply.
"""
from __future__ import annotations

import copy
import functools
import json
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ..learning.evidence import CANDIDATE_FIELDS, FIELDS, Evidence
from ..selection.round import select_round
from ..strategies.base import ScoreStrategy, Selection, Strategy, get
from .data import make_evidence, make_model_evidence

__all__ = ["CHECKS", "StrategyCheckError", "check_strategy", "parametrize_with_checks"]

_MODEL_FIELDS = frozenset({"learner", "pool"})
#: Seeds of the statistical comparison of a randomised strategy's law under a permutation.
_LAW_SEEDS = 200
#: Below this p-value the laws are declared different (the runs are seeded, so the check is
#: deterministic; the threshold only decides how strong a difference counts).
_LAW_ALPHA = 1e-4


class StrategyCheckError(AssertionError):
    """A strategy broke a rule of the shared contract."""


def _fail(strategy: Strategy, rule: str, detail: str) -> None:
    raise StrategyCheckError(f"strategy {strategy.name!r} breaks the rule '{rule}': {detail}")


def _fresh(strategy: Strategy) -> Strategy:
    """A new instance with the same options (no state carried from earlier runs)."""
    return type(strategy)(**copy.deepcopy(strategy.get_params()))


def _model_level(strategy: Strategy) -> bool:
    return bool(set(strategy.needs) & _MODEL_FIELDS)


def _used(strategy: Strategy) -> set[str]:
    return set(strategy.needs) | set(strategy.optional)


@functools.lru_cache(maxsize=2)
def _plain_model(seed: int = 0) -> tuple[Any, Any]:
    return make_model_evidence(seed)


#: Small models trained with a strategy's callbacks, by the strategy's class and options (a few).
_TRAINED: dict[str, tuple[Any, Any]] = {}


def _model(strategy: Strategy) -> tuple[Any, Any]:
    """The small trained model, fitted with the strategy's training callbacks when it has any
    (as the loop does), so a strategy that reads what they trained finds it."""
    probe_learner, probe_pool = _plain_model()
    if not _fresh(strategy).training_callbacks(probe_pool):
        return probe_learner, probe_pool
    key = f"{type(strategy).__module__}.{type(strategy).__qualname__}{strategy!r}"
    if key not in _TRAINED:
        if len(_TRAINED) >= 4:
            _TRAINED.pop(next(iter(_TRAINED)))
        _TRAINED[key] = make_model_evidence(0, strategy=_fresh(strategy))
    return _TRAINED[key]


def _evidence(strategy: Strategy, arrays: dict[str, Any] | None = None) -> Evidence:
    if _model_level(strategy):
        learner, pool = _model(strategy)
        return learner.evidence(pool, mc_seed=0)
    arrays = make_evidence() if arrays is None else arrays
    return Evidence.from_arrays(**arrays, read=_used(strategy))


def _run(strategy: Strategy, n: int, seed: int, *, arrays: dict[str, Any] | None = None,
         exclude: Any = None) -> Selection:
    return select_round(_fresh(strategy), _evidence(strategy, arrays), n, np.random.default_rng(seed),
                        exclude=exclude)


def _n_candidates(strategy: Strategy) -> int:
    return _evidence(strategy).n_candidates


# The checks -----------------------------------------------------------------------------------------
def check_declaration(strategy: Strategy) -> None:
    """A registered-style declaration: a name, known evidence fields, options that round-trip."""
    if not isinstance(strategy, Strategy):
        raise StrategyCheckError(f"{strategy!r} is not an activebatch.strategies.Strategy")
    if not strategy.name or not isinstance(strategy.name, str):
        _fail(strategy, "has a name", "set the class attribute name = '...'")
    unknown = _used(strategy) - set(FIELDS)
    if unknown:
        _fail(strategy, "reads known evidence", f"unknown fields {sorted(unknown)}; known: {sorted(FIELDS)}")
    try:
        twin = _fresh(strategy)
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        _fail(strategy, "options round-trip", f"type(s)(**s.get_params()) failed: {exc!r}")
    if repr(twin) != repr(strategy):
        _fail(strategy, "options round-trip", f"{twin!r} differs from {strategy!r}")


def check_returns_distinct_positions(strategy: Strategy) -> None:
    """n distinct int64 positions in 0..N-1, for n = 1, a few, and N."""
    N = _n_candidates(strategy)
    for n in sorted({1, 3, min(7, N), N}):
        try:
            sel = _run(strategy, n, seed=1)
        except RuntimeError as exc:   # Strategy.query refuses an invalid selection
            _fail(strategy, "returns n distinct positions in range", f"n={n}: {exc}")
        idx = sel.indices
        if not (isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == (n,)):
            _fail(strategy, "returns n positions", f"n={n}: got {type(idx).__name__} {getattr(idx, 'shape', '')} "
                                                   f"{getattr(idx, 'dtype', '')}, expected int64 of shape ({n},)")
        if np.unique(idx).size != n:
            _fail(strategy, "returns no duplicates", f"n={n}: {idx.tolist()}")
        if idx.min() < 0 or idx.max() >= N:
            _fail(strategy, "returns positions in range", f"n={n}: {idx.tolist()} not in 0..{N - 1}")


def check_bad_n_refused(strategy: Strategy) -> None:
    """n = 0 and n = N + 1 are refused with a ValueError."""
    N = _n_candidates(strategy)
    for n in (0, N + 1):
        try:
            _fresh(strategy).select(_evidence(strategy), n, np.random.default_rng(0))
        except ValueError:
            continue
        _fail(strategy, "refuses a bad n", f"n={n} with {N} candidates was accepted")


def check_missing_evidence_refused(strategy: Strategy) -> None:
    """Evidence without the fields the strategy needs is refused with a ValueError."""
    if not strategy.needs:
        return
    try:
        _fresh(strategy).select(Evidence(_n_candidates(strategy)), 1, np.random.default_rng(0))
    except ValueError:
        return
    _fail(strategy, "refuses missing evidence", f"it needs {sorted(strategy.needs)} but ran without them")


def check_seed_reproducible(strategy: Strategy) -> None:
    """The same seed gives the same selection, whatever the global random state."""
    a = _run(strategy, 3, seed=7).indices
    state = np.random.get_state(), random.getstate(), torch.random.get_rng_state()
    try:
        np.random.seed(12345)
        random.seed(12345)
        torch.manual_seed(12345)
        b = _run(strategy, 3, seed=7).indices
    finally:
        np.random.set_state(state[0])
        random.setstate(state[1])
        torch.random.set_rng_state(state[2])
    if not np.array_equal(a, b):
        _fail(strategy, "the seed is the only source of randomness",
              f"seed 7 gave {a.tolist()} and then {b.tolist()} (global random state changed in between)")


def check_seed_used(strategy: Strategy) -> None:
    """A randomised strategy's picks depend on the seed; a deterministic one's never do."""
    picks = {tuple(_run(strategy, 3, seed=s).indices.tolist()) for s in range(12)}
    if strategy.randomized and len(picks) == 1:
        _fail(strategy, "a randomised strategy uses its seed",
              f"12 seeds all gave {sorted(picks)[0]} (declared randomized = True; does it ignore rng?)")
    if not strategy.randomized and len(picks) > 1:
        _fail(strategy, "a deterministic strategy ignores the seed",
              f"12 seeds gave {len(picks)} different selections (declare randomized = True if it samples)")


def check_inputs_not_modified(strategy: Strategy) -> None:
    """The evidence arrays (numpy and torch) are left exactly as given."""
    if _model_level(strategy):
        return
    for as_torch in (False, True):
        arrays = make_evidence()
        if as_torch:
            arrays = {k: torch.from_numpy(v) for k, v in arrays.items()}
        before = {k: (v.clone() if as_torch else v.copy()) for k, v in arrays.items()}
        _run(strategy, 5, seed=0, arrays=arrays)
        for key, value in arrays.items():
            same = torch.equal(value, before[key]) if as_torch else np.array_equal(value, before[key])
            if not same:
                _fail(strategy, "inputs are not modified", f"{key} ({'tensor' if as_torch else 'array'}) changed")


def check_dtypes(strategy: Strategy) -> None:
    """float32 and float16 evidence give valid selections with finite (or +inf) scores."""
    if _model_level(strategy):
        return
    for dtype in (np.float32, np.float16):
        sel = _run(strategy, 5, seed=0, arrays=make_evidence(dtype=dtype))
        if np.unique(sel.indices).size != 5:
            _fail(strategy, "works on low-precision inputs", f"{np.dtype(dtype).name}: {sel.indices.tolist()}")
        if sel.scores is not None and np.isnan(sel.scores).any():
            _fail(strategy, "works on low-precision inputs", f"{np.dtype(dtype).name}: NaN scores {sel.scores}")


def _permuted(arrays: dict[str, np.ndarray], perm: np.ndarray) -> dict[str, np.ndarray]:
    out = dict(arrays)
    for key in ("probs", "embeddings"):
        out[key] = arrays[key][perm]
    out["mc_probs"] = arrays["mc_probs"][:, perm]
    return out


def check_permutation_equivariance(strategy: Strategy) -> None:
    """Permuting the candidate rows permutes a deterministic strategy's picks, and leaves a
    randomised strategy's law unchanged (inclusion counts over seeded runs, chi-square test)."""
    if _model_level(strategy):
        return
    arrays = make_evidence(n=30)
    perm = np.random.default_rng(99).permutation(30)
    shuffled = _permuted(arrays, perm)
    if not strategy.randomized:
        first, second = _run(strategy, 5, seed=0, arrays=arrays), _run(strategy, 5, seed=0, arrays=shuffled)
        a, b = first.indices, perm[second.indices]
        if first.candidate_scores is not None:
            # Ties go to the lowest position, which a permutation moves: compare the scores of
            # the picks, and the picks themselves where their score is not shared.
            cand = first.candidate_scores
            unique = np.array([np.count_nonzero(cand == cand[i]) == 1 for i in a])
            same = (np.allclose(first.scores, second.scores, rtol=1e-9, atol=1e-12)   # vectorised sums may
                    and np.array_equal(a[unique], b[unique]))                     # round by row position
        else:
            same = np.array_equal(a, b)
        if not same:
            _fail(strategy, "picks permute with the candidate rows", f"{a.tolist()} vs {b.tolist()} after permuting")
        return
    from scipy.stats import chi2_contingency

    counts = np.zeros((2, 30))
    for s in range(_LAW_SEEDS):
        counts[0, _run(strategy, 3, seed=s, arrays=arrays).indices] += 1
        counts[1, perm[_run(strategy, 3, seed=10_000 + s, arrays=shuffled).indices]] += 1
    seen = counts.sum(axis=0) > 0
    if seen.sum() < 2:
        return   # one candidate set always: nothing to compare beyond equality
    p_value = chi2_contingency(counts[:, seen])[1]
    if p_value < _LAW_ALPHA:
        _fail(strategy, "the law of a randomised strategy does not depend on the row order",
              f"inclusion counts differ after permuting the rows (chi-square p = {p_value:.2g} over "
              f"{_LAW_SEEDS} seeds each)")


def check_exclusion(strategy: Strategy) -> None:
    """Excluded candidates are never chosen and do not influence the picks: the picks equal those
    made on the kept rows alone (array evidence), or those made after the excluded items'
    features were replaced by noise (strategies that read the model and pool themselves)."""
    N = _n_candidates(strategy)
    excluded = np.arange(0, N, 3)
    sel = _run(strategy, 5, seed=3, exclude=excluded)
    if np.isin(sel.indices, excluded).any():
        _fail(strategy, "never selects excluded rows", f"picked {np.intersect1d(sel.indices, excluded).tolist()}")
    if strategy.stateful:
        return
    if _model_level(strategy):
        learner, pool = _model(strategy)
        hidden = pool.unlabeled_indices[excluded]
        changed = pool.copy()
        changed.X = np.array(pool.X, copy=True)
        changed.X[hidden] = np.random.default_rng(5).normal(scale=10.0, size=changed.X[hidden].shape)
        other = select_round(_fresh(strategy), learner.evidence(changed, mc_seed=0), 5, np.random.default_rng(3),
                             exclude=excluded).indices
        if not np.array_equal(sel.indices, other):
            _fail(strategy, "the excluded rows do not influence the picks",
                  f"chose {sel.indices.tolist()}, and {other.tolist()} once the excluded items' features changed")
        return
    kept = np.setdiff1d(np.arange(N), excluded)
    arrays = make_evidence()
    sub = {k: (v[:, kept] if k == "mc_probs" else v[kept] if k in CANDIDATE_FIELDS else v)
           for k, v in arrays.items()}
    alone = kept[_run(strategy, 5, seed=3, arrays=sub).indices]
    if not np.array_equal(sel.indices, alone):
        _fail(strategy, "the excluded rows do not influence the picks",
              f"with exclude= it chose {sel.indices.tolist()}, on the kept rows alone {alone.tolist()}")


def check_scores_consistent(strategy: Strategy) -> None:
    """Returned scores have one value per pick, are never NaN, and (ranking strategies) are the
    picks' entries of ``candidate_scores`` in order, with no better candidate left out."""
    sel = _run(strategy, 5, seed=0)
    if sel.scores is None:
        if sel.candidate_scores is not None:
            _fail(strategy, "scores consistent with the picks", "candidate_scores without per-pick scores")
        return
    if sel.scores.shape != (5,) or np.isnan(sel.scores).any():
        _fail(strategy, "scores consistent with the picks", f"scores {sel.scores!r} for 5 picks")
    if not sel.score_name:
        _fail(strategy, "scores consistent with the picks", "scores without a score_name saying what they are")
    if sel.candidate_scores is None:
        return
    cand = sel.candidate_scores
    if not np.array_equal(cand[sel.indices], sel.scores):
        _fail(strategy, "scores consistent with the picks", "scores differ from candidate_scores at the picks")
    if isinstance(strategy, ScoreStrategy) and getattr(strategy, "sampling", "topk") == "topk":
        key = -cand if strategy.largest else cand
        if np.any(np.diff(key[sel.indices]) < 0):
            _fail(strategy, "scores consistent with the picks", f"picks not ordered best first: {sel.scores}")
        rest = np.setdiff1d(np.arange(cand.size), sel.indices)
        if rest.size and key[rest].min() < key[sel.indices].max():
            _fail(strategy, "scores consistent with the picks", "a candidate scoring better than a pick was left out")


def check_state_round_trip(strategy: Strategy) -> None:
    """``state_dict`` is plain JSON data and ``load_state_dict`` of a fresh instance accepts it."""
    s = _fresh(strategy)
    select_round(s, _evidence(strategy), 3, np.random.default_rng(0))
    state = s.state_dict()
    try:
        text = json.dumps(state)
    except TypeError as exc:
        _fail(strategy, "state_dict is JSON data", str(exc))
    _fresh(strategy).load_state_dict(json.loads(text))


#: Every check, in the order :func:`check_strategy` runs them.
CHECKS: tuple[Callable[[Strategy], None], ...] = (
    check_declaration, check_returns_distinct_positions, check_bad_n_refused, check_missing_evidence_refused,
    check_seed_reproducible, check_seed_used, check_inputs_not_modified, check_dtypes,
    check_permutation_equivariance, check_exclusion, check_scores_consistent, check_state_round_trip,
)


def check_strategy(strategy: Strategy | str) -> None:
    """Run every check of :data:`CHECKS` on ``strategy`` (an instance or a registered name).

    Raises
    ------
    StrategyCheckError
        (an ``AssertionError``) naming the first rule the strategy breaks.
    """
    strategy = get(strategy)
    for check in CHECKS:
        check(strategy)


def parametrize_with_checks(strategies: Iterable[Strategy | str]) -> Any:
    """A ``pytest.mark.parametrize`` over (strategy, check) pairs, one test per check.

    The decorated test takes ``strategy`` and ``check`` and calls ``check(strategy)``; the test
    ids read ``<name>-<check>``.
    """
    import pytest

    cases, ids = [], []
    for s in strategies:
        strategy = get(s)
        for check in CHECKS:
            cases.append((strategy, check))
            ids.append(f"{strategy.name}-{check.__name__.removeprefix('check_')}")
    return pytest.mark.parametrize(("strategy", "check"), cases, ids=ids)
