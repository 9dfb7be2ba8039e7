"""One-shot selection for people who bring their own model outputs."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..learning.evidence import Evidence
from ..strategies import Selection, Strategy, get
from ..utils.validation import check_scalar, check_seed
from .round import MissingEvidenceError, check_candidate_ids, select_round
from .sharded import as_shards

__all__ = ["select"]


def select(strategy: str | Strategy, n: int, *, probs: Any = None, embeddings: Any = None,
           labeled_embeddings: Any = None, mc_probs: Any = None, labeled_probs: Any = None, labels: Any = None,
           target_mc_probs: Any = None, exclude: Any = None,
           seed: int | np.random.Generator | None = None, ids: Any = None, return_result: bool = False,
           **options: Any) -> np.ndarray | Selection:
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
    labeled_probs : array or tensor of shape (L, K), optional
        Softmax outputs on the labeled items (contrastive strategies).
    labels : array of int, shape (L,), optional
        The labeled items' classes.
    target_mc_probs : array or tensor of shape (S, T, K), optional
        The same S stochastic passes on T target inputs (EPIG).
    exclude : array of int positions, or boolean mask of shape (N,), optional
        Candidates that must not be chosen (for example, already sent to annotators).
    seed : int or numpy.random.Generator, optional
        Source of all randomness; the same seed gives the same selection.
    ids : array of shape (N,), optional
        Stable identifiers of the candidate rows (e.g. pool indices or database keys), distinct.
        Stateful strategies record their selections by these ids; default: the row positions.
    return_result : bool, default False
        Return the full :class:`~activebatch.strategies.Selection` instead of the positions:
        the picks with their ids and, where the strategy computes them, the score of each pick
        (uncertainty score, BALD score, BatchBALD's conditional gain, BADGE's D^2, core-set's
        distance) and of every candidate (ranking strategies).
    **options
        Strategy options, e.g. ``init="random"`` for BADGE.

    Returns
    -------
    ndarray of int64, shape (n,), or Selection
        Distinct positions into the candidate rows, in selection order (or the full
        :class:`~activebatch.strategies.Selection` with ``return_result=True``).

    Every given field has its shape checked against the others, whether or not the strategy
    reads it; the values (NaN, probabilities summing to 1) are checked for the fields the
    strategy reads. numpy arrays and torch tensors (CPU or CUDA) are both accepted. The same
    request from ``activebatch select`` gets the same answer or the same error.

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

    A pool split into shards that no single machine holds is given as a list of ``.npy`` files
    per candidate field (``probs=["p0.npy", "p1.npy"]``, ``embeddings=[...]``, ``mc_probs=[...]``
    with shards of shape (S, n_i, K)) or as a Ray Dataset with a column per field
    (``probs=ds, embeddings=ds``): the selection then runs on Ray next to the shards (see
    :class:`activebatch.Shards` and docs/sharded.md; strategies ``least_confidence``, ``margin``,
    ``entropy``, ``bald``, ``coreset``, ``badge``), and the positions are global row positions.

    Examples
    --------
    >>> import numpy as np, activebatch as ab
    >>> rng = np.random.default_rng(0)
    >>> P = rng.dirichlet(np.ones(10), size=1000); Z = rng.normal(size=(1000, 64))
    >>> ab.select("badge", n=5, probs=P, embeddings=Z, seed=0).shape
    (5,)
    """
    shards = as_shards(probs=probs, embeddings=embeddings, mc_probs=mc_probs)
    if shards is not None:
        with shards:   # the owners live for this one selection
            return shards.select(strategy, n, labeled_embeddings=labeled_embeddings, labeled_probs=labeled_probs,
                                 labels=labels, target_mc_probs=target_mc_probs, exclude=exclude, seed=seed,
                                 ids=ids, return_result=return_result, **options)
    strat = get(strategy, **options)
    return_result = check_scalar(return_result, "return_result", bool)
    rng = check_seed(seed)
    given = {"probs": probs, "embeddings": embeddings, "labeled_embeddings": labeled_embeddings,
             "mc_probs": mc_probs, "labeled_probs": labeled_probs, "labels": labels, "target_mc_probs": target_mc_probs}
    used = set(strat.needs) | set(strat.optional)
    model_level = sorted(set(strat.needs) - set(given))
    if model_level:
        raise MissingEvidenceError(
            f"strategy {strat.name!r} needs the model itself ({', '.join(model_level)}), not arrays: "
            f"use activebatch.strategies.get({strat.name!r}).select(learner.evidence(pool), n, rng)")
    missing = [k for k in strat.needs if given[k] is None]
    if missing:
        raise MissingEvidenceError(f"strategy {strat.name!r} needs {', '.join(missing)}; pass "
                                   + ", ".join(f"{k}=..." for k in missing))
    evidence = Evidence.from_arrays(**given, read=used)
    evidence.candidate_ids = check_candidate_ids(ids, evidence.n_candidates)
    sel = select_round(strat, evidence, n, rng, exclude=exclude)
    return sel if return_result else sel.indices
