"""CLUE: Clustering Uncertainty-weighted Embeddings (Prabhu et al., ICCV 2021)."""
from __future__ import annotations

import numpy as np

from ..kernels.clue import nearest_to_centres, tempered_entropy
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register

__all__ = ["CLUE", "weighted_kmeans"]

#: Inputs with fewer values than this are clustered on one thread: scikit-learn's OpenMP start-up
#: costs more than the work (a k-means of 30 points took 40 ms on two busy cores, 1 ms on one).
_ONE_THREAD_VALUES = 1 << 16


def weighted_kmeans(X: np.ndarray, n: int, weights: np.ndarray | None, *, n_init: int, max_iter: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``KMeans`` (k-means++ start) on X (float64) with ``sample_weight``.

    Returns the centres (n, d) and each row's cluster (N,).
    """
    import contextlib

    from ..utils.extras import require

    require("sklearn", "clustering", "k-means clustering")
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n, init="k-means++", n_init=n_init, max_iter=max_iter, random_state=seed)
    limit: contextlib.AbstractContextManager = contextlib.nullcontext()
    if X.size < _ONE_THREAD_VALUES:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

        limit = threadpool_limits(limits=1)
    with limit:
        km.fit(X, sample_weight=weights)
    return km.cluster_centers_, km.labels_


@register
class CLUE(Strategy):
    """CLUE (Prabhu, Chandrasekaran, Saenko & Hoffman, "Active Domain Adaptation via Clustering
    Uncertainty-weighted Embeddings", ICCV 2021: its sampling rule, an entropy-weighted k-means
    objective over the target embeddings).

    CLUE minimises an uncertainty-weighted clustering objective: candidates are clustered into
    n clusters by k-means on their embeddings, each weighted by its predictive entropy
    H(Y | x) (of the softmax at temperature T), and the batch is, for every cluster, the
    candidate nearest its centre. Here scikit-learn's ``KMeans`` with ``sample_weight`` (k-means++
    start; its ``random_state`` drawn from the rng), as in the authors' code; the nearest
    candidates by Euclidean distance, a block of rows at a time
    (:func:`~activebatch.kernels.clue.nearest_to_centres`). When two centres share their nearest
    candidate, the closer centre keeps it and the other takes its nearest free candidate.

    The picks are ordered by the uncertainty mass of their cluster (the sum of its members'
    entropies), largest first (ties: the lower centre index), which is also each pick's score.
    When every entropy is zero (a fully confident model) the clustering is unweighted.

    Parameters
    ----------
    temperature : float, default 1.0
        Softmax temperature T of the entropy weights, applied as p^(1/T) renormalised (the
        authors' code: 1.0 by default; their DomainNet configuration uses 0.1).
    n_init : int, default 10
        k-means restarts, the best weighted inertia kept (scikit-learn's ``KMeans`` default in
        the version the authors used).
    max_iter : int, default 300
        Lloyd iterations per restart (idem).

    Needs scikit-learn (``pip install 'activebatch[clustering]'``).
    """

    name = "clue"
    randomized = True
    needs = frozenset({"probs", "embeddings"})
    score_name = "uncertainty mass of the pick's cluster: sum of its members' entropies, nats (larger first)"

    def __init__(self, temperature: float = 1.0, n_init: int = 10, max_iter: int = 300) -> None:
        self.temperature = check_scalar(temperature, "temperature", float, min_val=0.0, include_min=False)
        self.n_init = check_scalar(n_init, "n_init", int, min_val=1)
        self.max_iter = check_scalar(max_iter, "max_iter", int, min_val=1)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        from ..utils.extras import require

        require("sklearn", "clustering", "the clue strategy (weighted k-means)")
        w = evidence.rowwise(lambda p: tempered_entropy(p, self.temperature), "probs").cpu().numpy()
        z = evidence.embeddings
        X = z.detach().to("cpu").double().numpy()
        centres, labels = weighted_kmeans(X, n, w if w.sum() > 0 else None, n_init=self.n_init,
                                          max_iter=self.max_iter, seed=int(rng.integers(2**31 - 1)))
        picks, _ = nearest_to_centres(X, centres)
        mass = np.bincount(labels, weights=w, minlength=n)
        order = np.lexsort((np.arange(n), -mass))
        return Selection(picks[order], scores=mass[order])
