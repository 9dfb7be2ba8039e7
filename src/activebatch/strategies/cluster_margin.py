"""Cluster-Margin: the lowest-margin candidates, sampled round-robin over hierarchical clusters."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..kernels.rowblocks import is_row_source
from ..kernels.scores import margin_scores, top_n
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import Selection, Strategy, register

__all__ = ["ClusterMargin", "FORMER_OPTIONS", "RENAMED", "current_name", "hac_bytes", "hac_labels", "round_robin"]

_SCOPES = ("candidates", "pool")

#: Options of Zhdanov's diverse mini-batch (:class:`~activebatch.strategies.diverse_minibatch.DiverseMiniBatch`),
#: which was registered as ``cluster_margin`` until that name was given to Citovsky et al.'s method.
FORMER_OPTIONS = frozenset({"beta", "measure", "n_init"})
#: What Zhdanov's method is called now.
FORMER_NAME_NOW = "diverse_minibatch"
#: The rename, in words, for messages and notes.
RENAMED = ("Zhdanov's diverse mini-batch (2019) was registered as 'cluster_margin' until it was renamed "
           "'diverse_minibatch'; 'cluster_margin' now means Citovsky et al.'s Cluster-Margin (NeurIPS 2021)")


def current_name(strategy: str, options: Mapping[str, Any] | None) -> str:
    """The name a recorded strategy goes by now.

    A record of ``cluster_margin`` whose options include Zhdanov's (``beta``, ``measure``,
    ``n_init``: every such record made before the rename has them, as its options were recorded
    whole) ran Zhdanov's diverse mini-batch, now ``diverse_minibatch``; any other record keeps its
    name.
    """
    if strategy == ClusterMargin.name and options and FORMER_OPTIONS.intersection(options):
        return FORMER_NAME_NOW
    return strategy


def hac_bytes(m: int) -> int:
    """Bytes of the m (m - 1) / 2 float64 pairwise distances average-linkage HAC holds for m items."""
    return 8 * (int(m) * (int(m) - 1) // 2)


def hac_labels(X: np.ndarray, *, n_clusters: int | None = None, epsilon: float | None = None) -> np.ndarray:
    """Average-linkage agglomerative clustering of the rows of ``X`` (Euclidean distances).

    Exactly one of ``n_clusters`` (cut the tree into that many clusters, at most the number of
    rows) or ``epsilon`` (merge while the closest pair of clusters has an average-linkage distance
    below ``epsilon``, scikit-learn's ``distance_threshold``) is given. Returns one label per row,
    int64. Uses scikit-learn's ``AgglomerativeClustering``, which holds the m (m - 1) / 2 pairwise
    distances (:func:`hac_bytes`).
    """
    from ..utils.extras import require

    require("sklearn", "clustering", "the cluster_margin strategy (hierarchical clustering)")
    from sklearn.cluster import AgglomerativeClustering

    if (n_clusters is None) == (epsilon is None):
        raise ValueError("give exactly one of n_clusters or epsilon")
    m = int(X.shape[0])
    if m < 2:
        return np.zeros(m, dtype=np.int64)
    if n_clusters is not None:
        k = min(int(n_clusters), m)
        if k == m:
            return np.arange(m, dtype=np.int64)
        if k == 1:
            return np.zeros(m, dtype=np.int64)
        hac = AgglomerativeClustering(n_clusters=k, linkage="average", metric="euclidean")
    else:
        hac = AgglomerativeClustering(n_clusters=None, distance_threshold=float(epsilon), linkage="average",
                                      metric="euclidean", compute_full_tree=True)
    return hac.fit_predict(X).astype(np.int64)


def round_robin(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Citovsky et al.'s round-robin sampling: ``n`` positions of ``labels``, one cluster at a time.

    The clusters (the distinct values of ``labels``) are sorted by size, smallest first (clusters
    of equal size in random order); each pass visits them in that order and takes from each one
    member not yet taken, drawn uniformly at random, skipping the clusters already used up, until
    ``n`` are taken. So no cluster gives a second member before every cluster gave one.

    Returns the positions (into ``labels``) in the order they were taken.
    """
    labels = np.asarray(labels)
    m = labels.size
    if not 0 <= n <= m:
        raise ValueError(f"cannot take {n} of {m} items")
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # The clusters' visiting order: by size, smallest first, ties in random order.
    visit = np.lexsort((rng.permutation(sizes.size), sizes))
    rank = np.empty(sizes.size, dtype=np.int64)
    rank[visit] = np.arange(sizes.size)
    # Each member's turn within its cluster: a uniformly random order of the cluster's members.
    shuffled = rng.permutation(m)
    by_cluster = shuffled[np.argsort(inverse[shuffled], kind="stable")]
    turn = np.empty(m, dtype=np.int64)
    turn[by_cluster] = np.arange(m) - (np.cumsum(sizes) - sizes)[inverse[by_cluster]]
    # Pass r takes the member of turn r of every cluster that has one, the clusters in visiting order.
    taken = np.lexsort((rank[inverse], turn))
    return taken[:n].astype(np.int64)


def _rows(evidence: Evidence, name: str, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of a candidate field as float64 numpy, reading only those rows of a memory map."""
    src = evidence.stream(name)
    if is_row_source(src):
        order = np.argsort(rows, kind="stable")
        out = np.empty((rows.size,) + tuple(src.shape[1:]), dtype=np.float64)
        out[order] = np.asarray(src[rows[order]], dtype=np.float64)   # ascending rows: sequential reads
        return out
    t = src if isinstance(src, torch.Tensor) else torch.as_tensor(src)
    return t.index_select(0, torch.as_tensor(rows, device=t.device)).detach().to("cpu", torch.float64).numpy()


@register
class ClusterMargin(Strategy):
    """Cluster-Margin (Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh & Kumar,
    "Batch Active Learning at Scale", NeurIPS 2021, Algorithm 1).

    1. Margin pre-filter: the k_m = ``margin_factor`` * n candidates of smallest margin
       p_(1) - p_(2) (ties to the lowest position).
    2. Hierarchical agglomerative clustering with average linkage of the embeddings (Euclidean
       distances): into ``n_clusters`` clusters (default n, the batch size), or, as in the paper,
       merging until the closest pair of clusters is ``epsilon`` or more apart.
    3. Round-robin over the clusters of the k_m candidates (each restricted to its members among
       them), sorted by that size, smallest first: each pass takes one member drawn uniformly at
       random from every cluster not yet used up, until n are taken (:func:`round_robin`).

    The paper clusters once, before the first round, on the embeddings of a model trained on the
    seed set, and reuses those clusters in every round. Here the embeddings come from the model
    retrained for each selection, so the clustering is redone on each selection: by default of the
    k_m pre-filtered candidates only (``scope="candidates"``; memory O(k_m^2)), or, with
    ``scope="pool"``, of every candidate as the paper does (restricted to the k_m afterwards).

    Memory: average-linkage HAC (scikit-learn's ``AgglomerativeClustering``) holds the
    m (m - 1) / 2 float64 pairwise distances of the m items it clusters, about 4 m^2 bytes
    (400 MB for 10,000 items). More than ``max_cluster_items`` items are refused with a
    ``ValueError`` that says so; no subsample is clustered in their place.

    Each pick's score is its margin (``candidate_scores``: every candidate's margin).

    Until this name was given to Citovsky et al.'s method it was Zhdanov's diverse mini-batch,
    now ``diverse_minibatch``. Zhdanov's options (``beta``, ``measure``, ``n_init``) given with
    ``cluster_margin`` are refused with a ``TypeError`` saying so (``ab.strategies.get``, grid
    specs, ``Workspace.query``). Workspace rounds recorded as ``cluster_margin`` with those options
    (all rounds recorded before the rename: a round records every option) are shown as
    ``diverse_minibatch``, with a note, by ``activebatch status``; the store keeps what was
    recorded (:func:`current_name`). A results store that held ``cluster_margin`` runs when this
    version first opened it names them ``diverse_minibatch`` in its frames (and so in reports), and
    refuses a grid that would add Citovsky et al.'s runs under the same name
    (:data:`activebatch.experiments.store.CLUSTER_MARGIN_KEY`).

    Parameters
    ----------
    margin_factor : int, default 10
        k_m = min(margin_factor * n, N) candidates of smallest margin are kept (k_m >= k_t = n
        in the paper; margin_factor = 1 is margin sampling).
    epsilon : float, optional
        The paper's stopping rule: clusters closer than ``epsilon`` (average-linkage Euclidean
        distance) are merged. Its scale is that of the embeddings; the paper chooses it per data
        set. Exclusive with ``n_clusters``.
    n_clusters : int, optional
        Cut the cluster tree into this many clusters (at most the number of items clustered).
        Default (with ``epsilon`` None): the batch size n.
    scope : {"candidates", "pool"}, default "candidates"
        What is clustered: the k_m pre-filtered candidates, or every candidate (the unlabeled
        pool, as in the paper).
    max_cluster_items : int, default 10000
        The most items clustered at once (the memory bound above).
    """

    name = "cluster_margin"
    randomized = True
    needs = frozenset({"probs", "embeddings"})
    score_name = "margin p_(1) - p_(2) (smaller = more uncertain)"

    def __init__(self, margin_factor: int = 10, epsilon: float | None = None, n_clusters: int | None = None,
                 scope: str = "candidates", max_cluster_items: int = 10_000) -> None:
        self.margin_factor = check_scalar(margin_factor, "margin_factor", int, min_val=1)
        self.epsilon = check_scalar(epsilon, "epsilon", float, min_val=0, include_min=False, allow_none=True)
        self.n_clusters = check_scalar(n_clusters, "n_clusters", int, min_val=1, allow_none=True)
        if self.epsilon is not None and self.n_clusters is not None:
            raise ValueError("give at most one of epsilon (the paper's distance threshold) or n_clusters")
        self.scope = check_choice(scope, "scope", _SCOPES)
        self.max_cluster_items = check_scalar(max_cluster_items, "max_cluster_items", int, min_val=2)

    @classmethod
    def option_hint(cls, unknown: list[str]) -> str:
        """Options of the former ``cluster_margin`` get a pointer to ``diverse_minibatch``."""
        former = sorted(FORMER_OPTIONS.intersection(unknown))
        if not former:
            return ""
        return (f"; {', '.join(former)} {'is an option' if len(former) == 1 else 'are options'} of Zhdanov's "
                f"method, strategy '{FORMER_NAME_NOW}': {RENAMED}")

    def _check_size(self, m: int, what: str) -> None:
        if m > self.max_cluster_items:
            raise ValueError(
                f"cluster_margin would cluster {m} {what}: average-linkage clustering holds their {m}*{m - 1}/2 "
                f"pairwise distances ({hac_bytes(m) / 2**20:,.0f} MiB), above max_cluster_items="
                f"{self.max_cluster_items} ({hac_bytes(self.max_cluster_items) / 2**20:,.0f} MiB); "
                + ("use scope='candidates' (clusters the margin_factor * n pre-filtered candidates only), "
                   if self.scope == "pool" else "lower margin_factor or the batch size, ")
                + "or raise max_cluster_items if the memory is there")

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        margins = evidence.rowwise(margin_scores, "probs")
        margins = margins.detach().to("cpu", torch.float64).numpy() if isinstance(margins, torch.Tensor) \
            else np.asarray(margins, dtype=np.float64)
        N = evidence.n_candidates
        m = min(self.margin_factor * n, N)
        top = top_n(margins, m, largest=False)             # the k_m smallest margins, ties to the lowest position
        options: dict[str, Any] = ({"epsilon": self.epsilon} if self.epsilon is not None
                                   else {"n_clusters": self.n_clusters or n})
        if self.scope == "candidates":
            self._check_size(m, "pre-filtered candidates")
            labels = hac_labels(_rows(evidence, "embeddings", top), **options)
        else:
            self._check_size(N, "candidates (scope='pool')")
            labels = hac_labels(_rows(evidence, "embeddings", np.arange(N)), **options)[top]
        picks = top[round_robin(labels, n, rng)]
        return Selection(picks, scores=margins[picks], candidate_scores=margins)
