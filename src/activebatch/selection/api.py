"""One-shot selection for people who bring their own model outputs."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..utils.validation import check_n, check_seed
from ..learning.evidence import Evidence
from ..strategies import Strategy, get

__all__ = ["select"]


def select(strategy: "str | Strategy", n: int, *, probs: Any = None, embeddings: Any = None,
           labeled_embeddings: Any = None, mc_probs: Any = None, exclude: Any = None,
           seed: "int | np.random.Generator | None" = None, ids: Any = None, **options: Any) -> np.ndarray:
    """Choose ``n`` candidates to label next from model outputs you already have.

    Parameters
    ----------
    strategy : str or Strategy
        A registered name (see :func:`activebatch.strategies.names`) or a Strategy instance.
    n : int
        Batch size, 1 <= n <= number of selectable candidates.
    probs : array, memory map or tensor of shape (N, K), optional
        Softmax outputs on the N candidates (rows sum to 1).
    embeddings : array, memory map or tensor of shape (N, d), optional
        Penultimate-layer embeddings of the candidates (the input of the final linear layer).
    labeled_embeddings : array, memory map or tensor of shape (L, d), optional
        The same embeddings for the already labeled items (core-set conditions on them).
    mc_probs : array or tensor of shape (S, N, K), optional
        Softmax outputs of S stochastic forward passes (Bayesian strategies).
    exclude : array of int positions, or boolean mask of shape (N,), optional
        Candidates that must not be chosen (for example, already sent to annotators).
    seed : int or numpy.random.Generator, optional
        Source of all randomness; the same seed gives the same selection.
    ids : array of shape (N,), optional
        Stable identifiers of the candidate rows (e.g. pool indices or database keys), distinct.
        Stateful strategies record their selections by these ids; default: the row positions.
    **options
        Strategy options, e.g. ``init="random"`` for BADGE.

    Returns
    -------
    ndarray of int64, shape (n,)
        Distinct positions into the candidate rows, in selection order.

    Evidence a strategy does not use is ignored (and not validated). numpy arrays and torch
    tensors (CPU or CUDA) are both accepted.

    Memory-mapped arrays (``np.load(path, mmap_mode="r")``, float16 or float32) for ``probs``,
    ``embeddings`` and ``labeled_embeddings`` are validated in blocks of 65,536 rows and passed
    on unconverted, so a pool of a million rows is never read whole: BADGE streams them in row
    blocks. Strategies that need the field in memory (uncertainty, core-set, k-DPP, ...) convert
    it when they read it, as for in-memory arrays. With ``exclude``, the kept rows of a map are
    not copied up front: the strategy sees a lazy row selection, and only the rows each block
    needs are read (so a streaming strategy still never holds the whole array).

    A stateful strategy (``albl``) learns across rounds only when the same instance is passed
    each time: after labeling the returned items and retraining your model, call
    ``strategy.update(activebatch.strategies.Feedback(ids=..., labels=..., predictions=...))``
    with the ids, labels and new predictions of the labeled items. ``state_dict()`` and
    ``load_state_dict()`` save and restore what it learned. Model-level strategies
    (``adversarial_deepfool``, ``adversarial_bim``) need a Learner and Pool:
    ``strategy.select(learner.evidence(pool), n, rng)``.

    Examples
    --------
    >>> import numpy as np, activebatch as ab
    >>> rng = np.random.default_rng(0)
    >>> P = rng.dirichlet(np.ones(10), size=1000); Z = rng.normal(size=(1000, 64))
    >>> ab.select("badge", n=5, probs=P, embeddings=Z, seed=0).shape
    (5,)
    """
    strat = get(strategy, **options)
    rng = check_seed(seed)
    given = {"probs": probs, "embeddings": embeddings, "labeled_embeddings": labeled_embeddings,
             "mc_probs": mc_probs}
    used = set(strat.needs) | set(strat.optional)
    model_level = sorted(set(strat.needs) - set(given))
    if model_level:
        raise ValueError(f"strategy {strat.name!r} needs the model itself ({', '.join(model_level)}), not arrays: "
                         f"use activebatch.strategies.get({strat.name!r}).select(learner.evidence(pool), n, rng)")
    missing = [k for k in strat.needs if given[k] is None]
    if missing:
        raise ValueError(f"strategy {strat.name!r} needs {', '.join(missing)}; pass "
                         + ", ".join(f"{k}=..." for k in missing))
    fields = {k: v for k, v in given.items() if k in used and v is not None}
    if fields.keys() - {"labeled_embeddings"}:
        evidence = Evidence.from_arrays(**fields)
    else:
        # The strategy reads no candidate evidence (random): only the number of rows matters.
        n_rows = _n_rows(given)
        evidence = Evidence(n_rows)
    evidence.candidate_ids = _candidate_ids(ids, evidence.n_candidates)
    allowed = _allowed_rows(exclude, evidence.n_candidates)
    if allowed is None:
        check_n(n, evidence.n_candidates)
        return strat.select(evidence, n, rng)
    check_n(n, int(allowed.size), "candidates that are not excluded")
    # subset() keeps memory maps lazy (a row selection), so excluding rows copies nothing here.
    picked = strat.select(evidence.subset(torch.as_tensor(allowed)), n, rng)
    return allowed[picked]


def _n_rows(given: dict[str, Any]) -> int:
    for key in ("probs", "embeddings", "mc_probs"):
        value = given[key]
        if value is not None:
            shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
            if key == "mc_probs":
                if len(shape) != 3:
                    raise ValueError(f"mc_probs must have shape (S, N, K), got {shape}")
                return int(shape[1])
            if len(shape) != 2:
                raise ValueError(f"{key} must be a 2-D array of shape (N, ...), got shape {shape}")
            return int(shape[0])
    raise ValueError("no candidate evidence given: pass probs, embeddings or mc_probs so the "
                     "number of candidates is known")


def _candidate_ids(ids: Any, n_rows: int) -> np.ndarray:
    if ids is None:
        return np.arange(n_rows)
    arr = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    if arr.shape != (n_rows,):
        raise ValueError(f"ids must have shape ({n_rows},) (one per candidate row), got {arr.shape}")
    if np.unique(arr).size != n_rows:
        raise ValueError("ids must be distinct")
    return arr


def _allowed_rows(exclude: Any, n_rows: int) -> np.ndarray | None:
    if exclude is None:
        return None
    ex = exclude.detach().cpu().numpy() if isinstance(exclude, torch.Tensor) else np.asarray(exclude)
    mask = np.zeros(n_rows, dtype=bool)
    if ex.dtype == bool:
        if ex.shape != (n_rows,):
            raise ValueError(f"a boolean exclude mask must have shape ({n_rows},), got {ex.shape}")
        mask = ex.copy()
    elif ex.size:
        if ex.ndim != 1 or not np.issubdtype(ex.dtype, np.integer):
            raise ValueError("exclude must be a 1-D array of integer positions or a boolean mask")
        if ex.min() < 0 or ex.max() >= n_rows:
            raise ValueError(f"exclude holds positions outside 0..{n_rows - 1}")
        mask[ex] = True
    return np.flatnonzero(~mask)
