"""Small, valid evidence for the checks: arrays of every field, or a trained model and its pool."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["make_evidence", "make_model_evidence"]


def make_evidence(seed: int = 0, n: int = 60, k: int = 4, d: int = 8, n_labeled: int = 10, s: int = 5,
                  dtype: Any = np.float64, n_targets: int = 12) -> dict[str, np.ndarray]:
    """Random but valid evidence of every array field, without ties.

    Parameters
    ----------
    seed : int
    n, k, d, n_labeled, s, n_targets : int
        Candidates N, classes K, embedding width d, labeled items L, MC samples S and target
        inputs T.
    dtype : numpy dtype, default float64
        Of every array (probabilities are renormalised after the cast, so rows sum to 1 in it).

    Returns
    -------
    dict with ``probs`` (N, K), ``embeddings`` (N, d), ``labeled_embeddings`` (L, d),
    ``mc_probs`` (S, N, K), ``labeled_probs`` (L, K), ``labels`` (L,) and ``target_mc_probs``
    (S, T, K). (The fields drawn before the later ones were added keep their values for a seed.)
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mc_logits = logits[None] + rng.normal(scale=1.0, size=(s, n, k))
    mc = np.exp(mc_logits) / np.exp(mc_logits).sum(2, keepdims=True)
    out = dict(probs=probs, embeddings=rng.normal(size=(n, d)),
               labeled_embeddings=rng.normal(size=(n_labeled, d)), mc_probs=mc)
    lab_logits = rng.normal(scale=2.0, size=(n_labeled, k))
    out["labeled_probs"] = np.exp(lab_logits) / np.exp(lab_logits).sum(1, keepdims=True)
    t_logits = rng.normal(scale=2.0, size=(n_targets, k))[None] + rng.normal(size=(s, n_targets, k))
    out["target_mc_probs"] = np.exp(t_logits) / np.exp(t_logits).sum(2, keepdims=True)
    out = {key: value.astype(dtype) for key, value in out.items()}
    out["labels"] = np.arange(n_labeled) % k   # every class labeled when L >= K
    for key, axis in (("probs", 1), ("mc_probs", 2), ("labeled_probs", 1), ("target_mc_probs", 2)):
        p = out[key].astype(np.float64)
        out[key] = (p / p.sum(axis=axis, keepdims=True)).astype(dtype)
    return out


def make_model_evidence(seed: int = 0, n: int = 60, n_labeled: int = 12, n_features: int = 5, k: int = 3,
                        dropout: float = 0.5, strategy: Any = None) -> tuple[Any, Any]:
    """A small trained :class:`~activebatch.learning.Learner` and its :class:`~activebatch.datasets.Pool`
    (Gaussian blobs, ``n_labeled`` labeled), for strategies that read the model itself.

    The model has dropout before its head, so its evidence has every field (``mc_probs`` too).
    With ``strategy``, the fit runs with its training callbacks
    (:meth:`~activebatch.strategies.Strategy.training_callbacks` of the pool), as the loop does.
    """

    import torch

    from ..datasets.pool import Pool
    from ..learning.learner import Learner
    from ..learning.models import MLP

    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(scale=3.0, size=(k, n_features))
    X = (centres[y] + rng.normal(size=(n, n_features))).astype(np.float32)
    pool = Pool(X, y, n_classes=k, name="check")
    pool.label(rng.choice(n, size=n_labeled, replace=False))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        learner = Learner(MLP(n_features, k, embedding_dim=16, dropout=dropout), lr=1e-2, max_epochs=30,
                          device="cpu", mc_samples=5)
    callbacks = None if strategy is None else strategy.training_callbacks(pool)
    learner.fit(*pool.labeled_data(), seed=seed, callbacks=callbacks)
    return learner, pool
