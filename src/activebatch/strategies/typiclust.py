"""TypiClust: the most typical item of each of the largest uncovered clusters (low budgets, cold starts)."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

from ..kernels.neighbors import knn_sqdist
from ..learning.evidence import Evidence
from .base import Selection, Strategy, register

__all__ = ["TypiClust", "as_rows", "kmeans_labels", "typicality"]

#: Up to this many clusters k-means is scikit-learn's KMeans, beyond it MiniBatchKMeans with batches of
#: 5,000 rows (as in the reference code, ``deep-al/pycls/al/typiclust.py``).
FULL_KMEANS_UP_TO = 50
#: Inputs with fewer values than this are clustered on one thread (scikit-learn's OpenMP start-up
#: costs more than the work on small inputs, as in strategies/clue.py).
_ONE_THREAD_VALUES = 1 << 16


def as_rows(evidence: Evidence, name: str) -> np.ndarray:
    """Evidence field ``name`` as an in-memory float32/float64 numpy array (a memory map is read
    once; a CPU tensor is viewed, not copied; float16 becomes float32). Never written to."""
    value = evidence.stream(name)
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float32)


def kmeans_labels(x: np.ndarray, n_clusters: int, rng: np.random.Generator, *, n_init: int = 1,
                  feature: str = "k-means") -> np.ndarray:
    """Cluster labels of the rows of ``x`` by scikit-learn's k-means (k-means++ start, seeded from
    ``rng``) on their float64 values: ``KMeans`` up to :data:`FULL_KMEANS_UP_TO` clusters,
    ``MiniBatchKMeans`` (batches of 5,000) beyond."""
    from ..utils.extras import require

    require("sklearn", "clustering", feature)
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    seed = int(rng.integers(2**31 - 1))
    if n_clusters <= FULL_KMEANS_UP_TO:
        # copy_x=False: the float64 rows below are a private copy, centred in place
        km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed, copy_x=False)
    else:
        km = MiniBatchKMeans(n_clusters=n_clusters, batch_size=5000, n_init=n_init, random_state=seed)
    limit: contextlib.AbstractContextManager = contextlib.nullcontext()
    if x.size < _ONE_THREAD_VALUES:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

        limit = threadpool_limits(limits=1)
    with limit, warnings.catch_warnings():
        # duplicate rows can leave fewer distinct clusters than asked for: some are then empty
        warnings.simplefilter("ignore", ConvergenceWarning)
        # float64: scikit-learn's k-means++ on float32 rows widens every block of distances
        # (about 6x slower for 100 clusters of 20,000 x 512 rows)
        return np.asarray(km.fit_predict(np.array(x, dtype=np.float64)), dtype=np.int64)


def typicality(x: np.ndarray, k: int) -> np.ndarray:
    """1 / (mean Euclidean distance to the k nearest other rows) of every row of ``x`` (exact
    neighbours, :func:`~activebatch.kernels.neighbors.knn_sqdist`; +inf for a mean of 0)."""
    sqd, _ = knn_sqdist(x, k)
    mean = np.sqrt(sqd).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 1.0 / mean


@register
class TypiClust(Strategy):
    """TypiClust (Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies Suit
    High and Low Budgets", ICML 2022, Algorithm 1), for low budgets and cold starts.

    The candidates and the labeled items are clustered by k-means into ``|L| + n`` clusters (at
    most ``max_clusters``); each pick is the most *typical* candidate of the largest cluster that
    holds no labeled item and no earlier pick, where typicality(x) = 1 / (mean Euclidean distance
    to its K nearest neighbours), K = 20. Works on raw or pretrained features given as
    ``embeddings``, with no labels and no trained model.

    As the authors' code (``deep-al/pycls/al/typiclust.py``, TypiClust repository):

    * k-means is scikit-learn's ``KMeans`` for up to 50 clusters and ``MiniBatchKMeans`` (batches
      of 5,000) beyond, and the number of clusters is capped at ``max_clusters = 500``;
    * clusters are visited by (number of labeled items, largest first); clusters of at most
      ``min_cluster_size = 5`` items are left out; when n exceeds the clusters visited, the
      visits go round again in the same order, one pick per cluster per round;
    * typicality is computed among the cluster's *remaining* candidates (neither labeled nor
      picked), with K = min(20, m // 2) neighbours for m of them, afresh at each visit.

    Differences, on purpose: typicality uses Euclidean distances, as the paper defines it (the
    code's faiss ``IndexFlatL2`` returns squared ones, and adds 1e-5 to the mean); a cluster with
    no candidate left is passed over, and the small clusters are visited (in the same order) once
    the others have none left, so that any n is served (the code stops there); a cluster's last
    candidate (m = 1) has no neighbour and typicality 0. The k-nearest-neighbour search is exact
    and runs in tiles (never an m x m matrix). Labeled items (``labeled_embeddings``) are
    clustered with the candidates; they mark their clusters as covered and are never picked.

    Parameters
    ----------
    k_neighbors : int, default 20
        K of the typicality.
    max_clusters : int, default 500
        Cap on the number of clusters.
    min_cluster_size : int, default 5
        Clusters of at most this many items (labeled and candidates) are visited last.
    n_init : int, default 1
        k-means restarts (the best inertia is kept).
    """

    name = "typiclust"
    needs = frozenset({"embeddings"})
    optional = frozenset({"labeled_embeddings"})
    randomized = True
    score_name = ("typicality of the pick among its cluster's remaining candidates when picked: 1 / mean "
                  "distance to its K nearest neighbours (larger = more typical)")

    def __init__(self, k_neighbors: int = 20, max_clusters: int = 500, min_cluster_size: int = 5,
                 n_init: int = 1) -> None:
        from ..utils.validation import check_scalar

        self.k_neighbors = check_scalar(k_neighbors, "k_neighbors", int, min_val=1)
        self.max_clusters = check_scalar(max_clusters, "max_clusters", int, min_val=1)
        self.min_cluster_size = check_scalar(min_cluster_size, "min_cluster_size", int, min_val=0)
        self.n_init = check_scalar(n_init, "n_init", int, min_val=1)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        z = as_rows(evidence, "embeddings")
        lab = as_rows(evidence, "labeled_embeddings") if evidence.has("labeled_embeddings") else None
        N, L = z.shape[0], 0 if lab is None else lab.shape[0]
        X = z if not L else np.concatenate([z, lab.astype(np.result_type(z, lab), copy=False)])
        k = min(L + n, self.max_clusters)
        assign = kmeans_labels(X, k, rng, n_init=self.n_init, feature="the typiclust strategy (k-means)")
        order, sizes, n_labeled = cluster_order(assign, N, self.min_cluster_size)
        small = sizes[order] <= self.min_cluster_size
        picks, scores = self._visit(z, assign[:N], order, small, n)
        kind = "k-means" if k <= FULL_KMEANS_UP_TO else "mini-batch k-means"
        note = (f"{k} clusters ({kind}) of {N} candidates and {L} labeled items; {int((n_labeled > 0).sum())} held "
                f"labeled items, {int(small.sum())} had at most "
                f"{self.min_cluster_size} items")
        return Selection(np.asarray(picks, dtype=np.int64), scores=np.asarray(scores), notes=(note,))

    def _visit(self, z: np.ndarray, cand_cluster: np.ndarray, order: np.ndarray, small: np.ndarray,
               n: int) -> tuple[list[int], list[float]]:
        """Visits of the clusters in ``order``, round after round, one pick per visit (the most typical
        remaining candidate), first among the clusters not ``small``, then among the small ones."""
        srt = np.argsort(cand_cluster, kind="stable")
        bounds = np.searchsorted(cand_cluster[srt], np.arange(int(order.max(initial=-1)) + 2))
        members = {int(c): srt[bounds[c]:bounds[c + 1]] for c in order}
        available = np.ones(z.shape[0], dtype=bool)
        picks: list[int] = []
        scores: list[float] = []
        for tier in (order[~small], order[small]):
            progressed = True
            while len(picks) < n and progressed:
                progressed = False
                for c in tier:
                    rem = members[int(c)][available[members[int(c)]]]
                    if rem.size == 0:
                        continue
                    j, typ = _most_typical(z, rem, self.k_neighbors)
                    picks.append(int(rem[j]))
                    scores.append(typ)
                    available[rem[j]] = False
                    progressed = True
                    if len(picks) == n:
                        break
        return picks, scores


def cluster_order(assign: np.ndarray, n_candidates: int, min_cluster_size: int) -> tuple[np.ndarray, ...]:
    """The non-empty clusters in visiting order: those of more than ``min_cluster_size`` items
    first, each group by (labeled items, largest first, cluster id); and every cluster's size and
    number of labeled items (the rows of ``assign`` after the first ``n_candidates``)."""
    k = int(assign.max(initial=-1)) + 1
    sizes = np.bincount(assign, minlength=k)
    n_labeled = np.bincount(assign[n_candidates:], minlength=k)
    ids = np.flatnonzero(sizes)
    small = sizes[ids] <= min_cluster_size
    order = ids[np.lexsort((ids, -sizes[ids], n_labeled[ids], small))]
    return order, sizes, n_labeled


def _most_typical(z: np.ndarray, rem: np.ndarray, k_neighbors: int) -> tuple[int, float]:
    """Position in ``rem`` of its most typical row (ties: the first) and that typicality."""
    k = min(k_neighbors, rem.size // 2)
    if k == 0:
        return 0, 0.0
    typ = typicality(z[rem], k)
    j = int(np.argmax(typ))
    return j, float(typ[j])

