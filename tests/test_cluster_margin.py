"""Cluster-Margin (cluster_margin, Citovsky et al. 2021): the margin pre-filter, average-linkage HAC,
round-robin over the clusters smallest first, uniform picks within a cluster, the memory bound."""
import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.stats import chisquare

import activebatch as ab
from activebatch.strategies.cluster_margin import hac_labels, round_robin


def _probs_with_margins(margins):
    """Three-class probability rows whose top-two gap is exactly ``margins``."""
    m = np.asarray(margins, dtype=np.float64)
    p1 = (1 + m) / 2 - 0.01
    p2 = p1 - m
    return np.stack([p1, p2, 1 - p1 - p2], axis=1)


def _blobs(sizes, spread=0.1, gap=100.0, seed=0):
    """Well separated blobs of the given sizes on a line; returns (embeddings, blob of each row)."""
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(len(sizes)), sizes)
    Z = np.stack([blob * gap, np.zeros_like(blob, dtype=float)], axis=1) + rng.normal(scale=spread, size=(blob.size, 2))
    return Z, blob


def _same_partition(a, b):
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    return len(pairs) == np.unique(a).size == np.unique(b).size


def test_round_robin_takes_one_item_per_cluster_before_any_second():
    rng = np.random.default_rng(0)
    for trial in range(200):
        labels = rng.integers(0, rng.integers(1, 8), size=rng.integers(1, 40))
        n = int(rng.integers(0, labels.size + 1))
        picks = round_robin(labels, n, np.random.default_rng(trial))
        assert np.unique(picks).size == n and (n == 0 or picks.max() < labels.size)
        sizes = {c: int((labels == c).sum()) for c in np.unique(labels)}
        taken = {c: 0 for c in sizes}
        for p in picks:
            c = labels[p]
            # no cluster gives its (r+1)-th member while another that still has members gave fewer than r+1
            assert all(taken[o] >= taken[c] or taken[o] == sizes[o] for o in sizes), (labels, picks)
            taken[c] += 1
        # within each pass the clusters come smallest first
        passes = {}
        for k, p in enumerate(picks):
            r = int((labels[picks[:k]] == labels[p]).sum())
            passes.setdefault(r, []).append(sizes[labels[p]])
        assert all(np.all(np.diff(s) >= 0) for s in passes.values())


def test_strategy_visits_the_clusters_smallest_first_one_per_pass():
    Z, blob = _blobs([8, 2, 5, 3])                       # blob 1 is the smallest, then 3, 2, 0
    P = _probs_with_margins(np.linspace(0.0, 0.5, blob.size))
    for seed in range(5):
        # margin_factor large enough that all 18 items pass the pre-filter; epsilon separates the blobs
        idx = ab.select("cluster_margin", 18, probs=P, embeddings=Z, seed=seed, margin_factor=10, epsilon=10.0)
        assert blob[idx].tolist() == [1, 3, 2, 0, 1, 3, 2, 0, 3, 2, 0, 2, 0, 2, 0, 0, 0, 0]
        four = ab.select("cluster_margin", 4, probs=P, embeddings=Z, seed=seed, margin_factor=10, epsilon=10.0)
        assert blob[four].tolist() == [1, 3, 2, 0]
        # n_clusters cuts the same tree: the default (n clusters) finds the four blobs too
        assert blob[ab.select("cluster_margin", 4, probs=P, embeddings=Z, seed=seed, margin_factor=5)].tolist() \
            == [1, 3, 2, 0]


def test_only_the_lowest_margin_candidates_are_picked():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(200, 4))
    margins = rng.uniform(0, 0.9, size=200)
    P = _probs_with_margins(margins)
    order = np.argsort(margins, kind="stable")
    for seed in range(3):
        for factor in (1, 2, 10):
            sel = ab.strategies.get("cluster_margin", margin_factor=factor).query(
                ab.Evidence.from_arrays(probs=P, embeddings=Z), 6, np.random.default_rng(seed))
            assert set(sel.indices.tolist()) <= set(order[:6 * factor].tolist())
            np.testing.assert_allclose(sel.scores, margins[sel.indices], atol=1e-12)
            np.testing.assert_allclose(sel.candidate_scores, margins, atol=1e-12)
        # margin_factor = 1 is margin sampling (in round-robin order)
        idx = ab.select("cluster_margin", 6, probs=P, embeddings=Z, seed=seed, margin_factor=1)
        assert set(idx.tolist()) == set(order[:6].tolist())


def test_pool_scope_sorts_the_clusters_by_their_pre_filtered_members():
    # Blob 0 is large in the pool (30 items) but only 2 of them have small margins; blob 1 has 4 of 5.
    Z, blob = _blobs([30, 5])
    margins = np.full(35, 0.9)
    low = np.r_[[0, 1], [30, 31, 32, 33]]
    margins[low] = np.linspace(0.01, 0.06, 6)
    P = _probs_with_margins(margins)
    for seed in range(5):
        idx = ab.select("cluster_margin", 3, probs=P, embeddings=Z, seed=seed, margin_factor=2, scope="pool",
                        n_clusters=2)
        assert set(idx.tolist()) <= set(low.tolist())
        assert blob[idx].tolist() == [0, 1, 0]           # |C_0 ∩ M| = 2 < |C_1 ∩ M| = 4


def test_members_of_a_cluster_are_drawn_uniformly():
    Z, _ = _blobs([5])
    P = _probs_with_margins(np.linspace(0.0, 0.2, 5))
    first = [ab.select("cluster_margin", 1, probs=P, embeddings=Z, seed=s, n_clusters=1)[0] for s in range(500)]
    counts = np.bincount(first, minlength=5)
    assert counts.min() > 0 and chisquare(counts).pvalue > 1e-3, counts


def test_hac_is_average_linkage_with_the_papers_distance_threshold():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(loc=c, size=(15, 3)) for c in (0.0, 4.0, 9.0)])
    tree = linkage(X, method="average", metric="euclidean")
    for eps in (0.5, 2.0, 5.0, 50.0):
        ours = hac_labels(X, epsilon=eps)
        merged_below = np.searchsorted(np.sort(tree[:, 2]), eps)          # merges at distance < eps
        assert np.unique(ours).size == X.shape[0] - merged_below
        assert _same_partition(ours, fcluster(tree, t=eps, criterion="distance"))
    for k in (1, 3, 7, 45, 60):
        ours = hac_labels(X, n_clusters=k)
        assert np.unique(ours).size == min(k, 45)
        assert _same_partition(ours, fcluster(tree, t=min(k, 45), criterion="maxclust"))
    assert hac_labels(X[:1], n_clusters=3).tolist() == [0]


def test_memory_bound_is_refused_with_a_clear_message():
    arrays = ab.testing.make_evidence(n=60)
    args = dict(probs=arrays["probs"], embeddings=arrays["embeddings"])
    with pytest.raises(ValueError, match=r"cluster 60 pre-filtered candidates.*max_cluster_items=50.*margin_factor"):
        ab.select("cluster_margin", 6, seed=0, max_cluster_items=50, **args)
    assert ab.select("cluster_margin", 5, seed=0, max_cluster_items=50, **args).size == 5     # 50 items: allowed
    with pytest.raises(ValueError, match=r"60 candidates \(scope='pool'\).*scope='candidates'"):
        ab.select("cluster_margin", 2, seed=0, max_cluster_items=50, scope="pool", **args)


def test_memory_mapped_embeddings_give_the_same_picks(tmp_path):
    arrays = ab.testing.make_evidence(n=60)
    np.save(tmp_path / "z.npy", arrays["embeddings"].astype(np.float32))
    Z = np.load(tmp_path / "z.npy", mmap_mode="r")
    for scope in ("candidates", "pool"):
        a = ab.select("cluster_margin", 7, probs=arrays["probs"], embeddings=Z, seed=3, scope=scope)
        b = ab.select("cluster_margin", 7, probs=arrays["probs"], embeddings=np.array(Z), seed=3, scope=scope)
        np.testing.assert_array_equal(a, b)


def test_options_are_checked():
    for bad in (dict(margin_factor=0), dict(margin_factor=1.5), dict(epsilon=0.0), dict(epsilon=-1),
                dict(n_clusters=0), dict(scope="all"), dict(max_cluster_items=1), dict(epsilon=1.0, n_clusters=3)):
        with pytest.raises(ValueError):
            ab.strategies.get("cluster_margin", **bad)
