"""TypiClust: exact typicality, the reference code's cluster visits, cold starts, the public checks."""
import numpy as np
import pytest

import activebatch as ab
from activebatch.kernels import neighbors
from activebatch.strategies import typiclust as tc
from activebatch.testing import check_strategy


def brute_sqdist(X):
    X = np.asarray(X, dtype=np.float64)
    return ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)


def brute_typicality(X, k):
    D = np.sqrt(brute_sqdist(X))
    np.fill_diagonal(D, np.inf)
    return 1.0 / np.sort(D, axis=1)[:, :k].mean(axis=1)


@pytest.fixture(params=[None, 5, 64], ids=["tiles-default", "tiles-5", "tiles-64"])
def tiles(request, monkeypatch):
    if request.param is not None:
        monkeypatch.setattr(neighbors, "TILE_SIDE", request.param)
        monkeypatch.setattr(neighbors, "TILE_COLUMNS", request.param)
    return request.param


# The exact k nearest neighbours ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_knn_equals_brute_force(dtype, tiles):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(150, 6)) * 2 + 50).astype(dtype)      # offset: the centring matters
    X[7] = X[3]                                                  # a duplicate: distance 0
    D = brute_sqdist(X)
    np.fill_diagonal(D, np.inf)
    for k in (1, 5, 20):
        sqd, idx = neighbors.knn_sqdist(X, k)
        order = np.argsort(D, axis=1, kind="stable")[:, :k]      # ties: the lowest position
        np.testing.assert_array_equal(sqd, np.take_along_axis(D, order, 1))
        np.testing.assert_array_equal(np.take_along_axis(D, idx, 1), sqd)
    assert neighbors.knn_sqdist(X, 1)[0][7, 0] == 0.0


def test_knn_with_many_ties(tiles):
    # integer points: many equal distances, so rows whose k + 3 smallest are all candidates occur
    X = np.random.default_rng(1).integers(0, 3, size=(200, 4)).astype(np.float32)
    D = brute_sqdist(X)
    np.fill_diagonal(D, np.inf)
    sqd, idx = neighbors.knn_sqdist(X, 6)
    np.testing.assert_array_equal(sqd, np.sort(D, axis=1)[:, :6])
    np.testing.assert_array_equal(idx, np.argsort(D, axis=1, kind="stable")[:, :6])


def test_knn_refuses_bad_k():
    with pytest.raises(ValueError, match="k must be between 1 and N - 1"):
        neighbors.knn_sqdist(np.zeros((4, 2)), 4)


def test_typicality_equals_brute_force():
    rng = np.random.default_rng(2)
    for dtype in (np.float64, np.float32):
        X = rng.normal(size=(120, 5)).astype(dtype)
        for k in (1, 7, 20):
            np.testing.assert_allclose(tc.typicality(X, k), brute_typicality(X, k), rtol=1e-13)
    dup = np.zeros((4, 3))
    assert np.isinf(tc.typicality(dup, 2)).all()


# The cluster visits -------------------------------------------------------------------------------------
def reference_visits(Z, assign_cand, assign_lab, n, k_nn=20, min_size=5):
    """A plain loop of the reference code's selection (deep-al/pycls/al/typiclust.py), with Euclidean
    typicality by brute force, passing over emptied clusters and then visiting the small ones."""
    assign = np.concatenate([assign_cand, assign_lab])
    ids = np.unique(assign)
    rows = [(int(c), int((assign == c).sum()), int((assign_lab == c).sum())) for c in ids]
    big = sorted([r for r in rows if r[1] > min_size], key=lambda r: (r[2], -r[1], r[0]))
    small = sorted([r for r in rows if r[1] <= min_size], key=lambda r: (r[2], -r[1], r[0]))
    taken, picks, scores = set(), [], []
    for tier in (big, small):
        while len(picks) < n:
            before = len(picks)
            for c, _, _ in tier:
                if len(picks) == n:
                    break
                rem = [i for i in range(len(Z)) if assign_cand[i] == c and i not in taken]
                if not rem:
                    continue
                k = min(k_nn, len(rem) // 2)
                typ = brute_typicality(Z[rem], k) if k else np.zeros(1)
                j = int(np.argmax(typ))
                picks.append(rem[j])
                scores.append(typ[j])
                taken.add(rem[j])
            if len(picks) == before:
                break
    return picks, scores


def blobs(sizes, seed=0, d=2, spread=30.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(len(sizes), d))
    X = np.concatenate([c + rng.normal(size=(s, d)) for c, s in zip(centres, sizes)])
    y = np.repeat(np.arange(len(sizes)), sizes)
    return X, y


def test_picks_follow_the_largest_uncovered_clusters(monkeypatch):
    X, y = blobs([40, 30, 25, 12, 8, 4])
    lab_pos = np.array([0, 1])                   # two labeled items in the largest blob
    cand = np.setdiff1d(np.arange(len(X)), lab_pos)
    monkeypatch.setattr(tc, "kmeans_labels", lambda x, k, rng, **kw: np.concatenate([y[cand], y[lab_pos]]))
    sel = ab.strategies.get("typiclust").query(
        ab.Evidence.from_arrays(embeddings=X[cand], labeled_embeddings=X[lab_pos]), 5, np.random.default_rng(0))
    blob = y[cand][sel.indices]
    # uncovered first, largest first (30, 25, 12, 8), then the covered one (40), the small (4) last
    assert blob.tolist() == [1, 2, 3, 4, 0]
    picks, scores = reference_visits(X[cand], y[cand], y[lab_pos], 5)
    assert sel.indices.tolist() == picks
    np.testing.assert_allclose(sel.scores, scores, rtol=1e-13)
    for b, p in zip(blob, sel.indices):          # each the most typical of its blob
        members = np.flatnonzero(y[cand] == b)
        typ = brute_typicality(X[cand][members], min(20, members.size // 2))
        assert p == members[np.argmax(typ)]


def test_rounds_when_n_exceeds_the_clusters(monkeypatch):
    X, y = blobs([20, 15, 9, 5, 3], seed=3)
    monkeypatch.setattr(tc, "kmeans_labels", lambda x, k, rng, **kw: y.copy())
    sel = ab.strategies.get("typiclust").query(ab.Evidence.from_arrays(embeddings=X), 52, np.random.default_rng(0))
    picks, scores = reference_visits(X, y, np.zeros(0, dtype=int), 52)
    assert sel.indices.tolist() == picks
    np.testing.assert_allclose(sel.scores, scores, rtol=1e-13)
    # one pick per large cluster per round, the small clusters only once the large ones are empty
    assert y[sel.indices[:6]].tolist() == [0, 1, 2, 0, 1, 2]
    assert set(y[sel.indices[:44]]) == {0, 1, 2} and set(y[sel.indices[44:]]) == {3, 4}
    assert sorted(sel.indices.tolist()) == list(range(52))
    assert sel.scores[-1] == 0.0                 # a cluster's last candidate has no neighbour left


def test_real_kmeans_on_blobs_and_the_cluster_count():
    X, y = blobs([60, 45, 30, 20], seed=5, d=3)
    seen = {}

    def spy(x, k, rng, **kw):
        seen["k"], seen["rows"] = k, x.shape[0]
        return orig(x, k, rng, **kw)

    orig = tc.kmeans_labels
    tc.kmeans_labels = spy
    try:
        lab = np.array([0])                       # blob 0 covered
        cand = np.arange(1, len(X))
        idx = ab.select("typiclust", 3, embeddings=X[cand], labeled_embeddings=X[lab], seed=0, n_init=5)
    finally:
        tc.kmeans_labels = orig
    assert seen == {"k": 4, "rows": len(X)}      # |L| + n clusters of candidates and labeled items
    assert y[cand][idx].tolist() == [1, 2, 3]


def test_cluster_cap_and_minibatch(monkeypatch):
    seen = []
    monkeypatch.setattr(tc, "kmeans_labels",
                        lambda x, k, rng, **kw: seen.append(k) or np.arange(x.shape[0]) % k)
    Z = np.random.default_rng(0).normal(size=(300, 3))
    ab.select("typiclust", 250, embeddings=Z, seed=0)
    ab.select("typiclust", 250, embeddings=Z, seed=0, max_clusters=40)
    assert seen == [250, 40]
    assert tc.FULL_KMEANS_UP_TO == 50


def test_kmeans_kinds():
    Z = np.random.default_rng(0).normal(size=(400, 3))
    a = tc.kmeans_labels(Z, 3, np.random.default_rng(0))
    b = tc.kmeans_labels(Z, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert set(a) == {0, 1, 2}
    m = tc.kmeans_labels(Z, 60, np.random.default_rng(0))   # MiniBatchKMeans beyond 50
    assert m.max() < 60 and m.shape == (400,)


def test_memmap_and_float32(tmp_path):
    X, _ = blobs([30, 20, 10], seed=2)
    path = tmp_path / "z.npy"
    np.save(path, X.astype(np.float32))
    mm = np.load(path, mmap_mode="r")
    a = ab.select("typiclust", 4, embeddings=mm, seed=3)
    b = ab.select("typiclust", 4, embeddings=X.astype(np.float32), seed=3)
    np.testing.assert_array_equal(a, b)


def test_options_are_checked():
    for bad in ({"k_neighbors": 0}, {"max_clusters": 0}, {"min_cluster_size": -1}, {"n_init": 0},
                {"k_neighbors": 2.5}):
        with pytest.raises(ValueError):
            ab.strategies.get("typiclust", **bad)


def test_public_checks():
    check_strategy("typiclust")


def test_workspace_cold_start_runs_typiclust(tmp_path):
    from activebatch.workspace import Workspace
    from workspace_fixtures import make_table

    items, truth = make_table(tmp_path, n=60)
    ws = Workspace.create(tmp_path / "ws", items, ["a", "b", "c"])
    res = ws.query(6, "typiclust")
    assert res.strategy == "typiclust" and len(res.positions) == 6 and "features" in res.note
    X = ws.store.features()
    # the same picks as the strategy on the items' features (no labels yet), with the round's seed
    rng = np.random.default_rng(np.random.SeedSequence([ws.config.seed, 1]))
    sel = ab.strategies.get("typiclust").query(ab.Evidence.from_arrays(embeddings=X), 6, rng)
    assert res.positions == sel.indices.tolist()
    rounds = ws.store.rounds()
    assert rounds["strategy"].tolist() == ["typiclust"]
    # a strategy that needs a model still falls back to random
    res2 = ws.query(4, "badge")
    assert res2.strategy == "random" and not set(res2.positions) & set(res.positions)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"typiclust strategy .*pip install 'activebatch\[clustering\]'"):
        ab.select("typiclust", 2, embeddings=np.random.default_rng(0).normal(size=(10, 2)))


def test_small_passes_run_on_one_thread_and_restore_the_count(monkeypatch):
    import torch

    seen = []
    real = neighbors._k_smallest
    monkeypatch.setattr(neighbors, "_k_smallest",
                        lambda *a, **kw: seen.append(torch.get_num_threads()) or real(*a, **kw))
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X = np.random.default_rng(0).normal(size=(50, 3))
        sqd, _ = neighbors.knn_sqdist(X, 3)
        assert torch.get_num_threads() == 2 and seen == [1]
        monkeypatch.setattr(neighbors, "PARALLEL_WORK", 1)
        neighbors.knn_sqdist(X, 3)
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(old)
    D = brute_sqdist(X)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_array_equal(sqd, np.sort(D, axis=1)[:, :3])
