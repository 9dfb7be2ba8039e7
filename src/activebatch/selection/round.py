"""One selection round: the single place where a request is checked and a strategy is called.

:func:`select_round` takes a strategy, the evidence on N candidates, the batch size, the random
generator and the exclusion; it validates them (the same checks and messages for every entry
point: :func:`activebatch.select`, :func:`activebatch.run`, workspaces and ``activebatch
select``), restricts the evidence to the selectable rows, calls the strategy, and maps its
picks back to candidate positions and ids, with their scores.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from ..learning.evidence import FIELDS, Evidence
from ..strategies.base import Selection, Strategy
from ..utils.validation import check_n

__all__ = ["MissingEvidenceError", "select_round", "check_candidate_ids", "check_evidence_available", "excluded_mask"]

#: What to do when a field is missing, by field.
_HINTS = {
    "mc_probs": "MC-dropout samples need a model with dropout before its head (e.g. MLP(..., dropout=0.5), "
                "or a workspace created with --dropout 0.5), a Bayesian head (MLP(..., bayesian=True), "
                "or --bayesian), or a Committee of models",
    "learner": "this strategy needs the model itself: use Learner.evidence(pool), not arrays",
    "pool": "this strategy needs the model itself: use Learner.evidence(pool), not arrays",
    "labeled_embeddings": "pass the embeddings of the labeled items",
}


class MissingEvidenceError(ValueError):
    """The strategy needs evidence that the caller (or the model) cannot supply."""


def check_evidence_available(strategy: Strategy, available: Iterable[str], *, source: str = "the evidence",
                             hint: str = "", field_hints: Mapping[str, str] | None = None) -> None:
    """Refuse a strategy whose ``needs`` are not all in ``available``, before any work is done.

    Parameters
    ----------
    strategy : Strategy
    available : iterable of str
        The evidence fields that can be supplied (e.g. :meth:`Learner.evidence_fields`).
    source : str
        Who supplies them, for the message ("the model", "the workspace model").
    hint : str
        Extra advice appended to the message.
    field_hints : mapping of str to str, optional
        Advice by missing field from the source itself, in place of the generic advice for that
        field (e.g. a scikit-learn learner's ``missing_evidence_hints``: what it provides instead).
    """
    missing = sorted(set(strategy.needs) - set(available))
    if missing:
        raise MissingEvidenceError(_missing_message(strategy, missing, source, hint, field_hints))


def _missing_message(strategy: Strategy, missing: list[str], source: str, hint: str = "",
                     field_hints: Mapping[str, str] | None = None) -> str:
    what = ", ".join(f"{m} ({FIELDS[m]})" for m in missing)
    advice = {**_HINTS, **(field_hints or {})}
    hints = [h for h in dict.fromkeys(advice.get(m, "") for m in missing) if h]
    if hint:
        hints.append(hint)
    return (f"strategy {strategy.name!r} needs {what}, which {source} does not provide"
            + ("; " + "; ".join(hints) if hints else ""))


def excluded_mask(exclude: Any, n_rows: int) -> np.ndarray | None:
    """The boolean mask (N,) of excluded candidates from positions or a boolean mask; None for none.

    An integer array of length N holding only 0s and 1s is refused: it is almost certainly a
    mask written as integers, which would otherwise be read as the positions 0 and 1.
    """
    if exclude is None:
        return None
    ex = exclude.detach().cpu().numpy() if isinstance(exclude, torch.Tensor) else np.asarray(exclude)
    mask = np.zeros(n_rows, dtype=bool)
    if ex.dtype == bool:
        if ex.shape != (n_rows,):
            raise ValueError(f"a boolean exclude mask must have shape ({n_rows},), got {ex.shape}")
        return ex.copy()
    if ex.size == 0:
        return mask
    if ex.ndim != 1 or not np.issubdtype(ex.dtype, np.integer):
        raise ValueError(f"exclude must be a 1-D array of integer positions or a boolean mask of shape "
                         f"({n_rows},), got an array of dtype {ex.dtype} and shape {ex.shape}")
    if n_rows > 2 and ex.size == n_rows and np.isin(ex, (0, 1)).all():
        raise ValueError(f"exclude holds {n_rows} values, all 0 or 1: a mask given as integers would be read as "
                         "the positions 0 and 1; pass a boolean mask (exclude.astype(bool)) or the positions "
                         "to exclude (np.flatnonzero(mask))")
    if ex.min() < 0 or ex.max() >= n_rows:
        bad = ex[(ex < 0) | (ex >= n_rows)]
        raise ValueError(f"exclude holds positions outside 0..{n_rows - 1} (e.g. {bad[:3].tolist()})")
    mask[ex] = True
    return mask


def check_candidate_ids(ids: Any, n_rows: int) -> np.ndarray | None:
    """``ids`` as an array of ``n_rows`` distinct candidate ids (None stays None)."""
    if ids is None:
        return None
    arr = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    if arr.shape != (n_rows,):
        raise ValueError(f"ids must have shape ({n_rows},) (one per candidate row), got {arr.shape}")
    if np.unique(arr).size != n_rows:
        raise ValueError("ids must be distinct")
    return arr


def select_round(strategy: Strategy, evidence: Evidence, n: int, rng: np.random.Generator, *,
                 exclude: Any = None, what: str = "candidates") -> Selection:
    """Choose ``n`` of the candidates that are not excluded, with ``strategy``.

    Parameters
    ----------
    strategy : Strategy
        The strategy instance (stateful strategies keep their state across calls).
    evidence : Evidence
        Model outputs on the N candidates; ``evidence.candidate_ids`` (if set) names them.
    n : int
        Batch size, 1 <= n <= number of selectable candidates.
    rng : numpy.random.Generator
        The only source of randomness.
    exclude : array of int positions, or boolean mask of shape (N,), optional
        Candidates that must not be chosen. Their rows are never shown to the strategy (a
        memory-mapped field becomes a lazy row selection: nothing is copied).
    what : str
        How the selectable items are called in messages.

    Returns
    -------
    Selection
        ``indices`` are positions into the N candidate rows (not into the kept subset), in
        selection order; ``ids`` the candidate ids of the picks (the positions when the
        evidence names none); ``scores`` the strategy's per-pick scores where it has them;
        ``candidate_scores`` (ranking strategies) every candidate's score, NaN where excluded;
        ``seconds`` the strategy's wall time.
    """
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a Strategy instance, got {type(strategy).__name__}")
    missing = evidence.missing(strategy.needs)
    if missing:
        raise MissingEvidenceError(_missing_message(strategy, missing, "the evidence"))
    N = evidence.n_candidates
    mask = excluded_mask(exclude, N)
    allowed = None if mask is None or not mask.any() else np.flatnonzero(~mask)
    if mask is not None and mask.any():
        what = f"{what} that are not excluded"
    n = check_n(n, N if allowed is None else int(allowed.size), what)
    # subset() keeps memory maps lazy (a row selection), so excluding rows copies nothing here.
    shown = evidence if allowed is None else evidence.subset(torch.as_tensor(allowed))
    t0 = time.perf_counter()
    sel = strategy.query(shown, n, rng)
    seconds = time.perf_counter() - t0
    positions = sel.indices if allowed is None else allowed[sel.indices]
    cand = sel.candidate_scores
    if cand is not None and allowed is not None:
        full = np.full(N, np.nan)
        full[allowed] = cand
        cand = full
    ids = positions if evidence.candidate_ids is None else np.asarray(evidence.candidate_ids)[positions]
    return sel.replace(indices=positions, ids=ids, candidate_scores=cand, seconds=seconds)
