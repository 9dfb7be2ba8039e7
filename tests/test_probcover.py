"""ProbCover: exact ball graphs in tiles, greedy coverage, the purity rule for delta, cold starts."""
import numpy as np
import pytest

import activebatch as ab
from activebatch.kernels import neighbors
from activebatch.strategies import probcover as pc
from activebatch.testing import check_strategy


def brute_sqdist(X, Y=None):
    X = np.asarray(X, dtype=np.float64)
    Y = X if Y is None else np.asarray(Y, dtype=np.float64)
    return ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)


def plain_greedy(A, n, covered=None, order=None):
    """Greedy max coverage on a dense 0/1 adjacency A (A[x, y]: x's ball holds y), ties to the
    earliest in ``order``; once nothing is left to cover, the unpicked rows in ``order``."""
    N = A.shape[0]
    order = np.arange(N) if order is None else np.asarray(order)
    cov = np.zeros(N, bool) if covered is None else covered.copy()
    picks, gains = [], []
    while len(picks) < n:
        gain = A[:, ~cov].sum(axis=1)
        best = gain.max()
        if best == 0:
            break
        p = next(int(i) for i in order if gain[i] == best)
        picks.append(p)
        gains.append(int(best))
        cov |= A[p]
    rest = [int(i) for i in order if i not in picks]
    return picks + rest[:n - len(picks)], gains + [0] * (n - len(picks))


def dense(indptr, indices):
    N = indptr.size - 1
    A = np.zeros((N, N), bool)
    A[np.repeat(np.arange(N), np.diff(indptr)), indices] = True
    return A


@pytest.fixture(params=[None, 6, 64], ids=["tiles-default", "tiles-6", "tiles-64"])
def tiles(request, monkeypatch):
    if request.param is not None:
        monkeypatch.setattr(neighbors, "TILE_SIDE", request.param)
        monkeypatch.setattr(neighbors, "TILE_COLUMNS", request.param)
    return request.param


# Kernels ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_radius_graph_equals_brute_force(dtype, tiles):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(130, 5)) + 20).astype(dtype)
    X[9] = X[4]
    D = brute_sqdist(X)
    off = np.sort(D[~np.eye(130, dtype=bool)])
    # radii at pair distances exactly (the strict inequality decides), between them, 0 and infinity
    for rsq in (off[0], off[50], off[3000], float(np.median(off)), 0.5 * (off[10] + off[11]), 0.0, np.inf):
        indptr, indices = neighbors.radius_graph(X, rsq)
        A = dense(indptr, indices)
        np.testing.assert_array_equal(A, D < rsq)
        assert np.array_equal(A, A.T) and indptr[-1] == indices.size
        assert indices.dtype == np.int32


def test_small_buffers_grow(monkeypatch):
    monkeypatch.setattr(neighbors._Pairs, "CAPACITY", 3)
    monkeypatch.setattr(neighbors, "TILE_SIDE", 16)
    X = np.random.default_rng(12).normal(size=(90, 3))
    D = brute_sqdist(X)
    np.testing.assert_array_equal(dense(*neighbors.radius_graph(X, 1.0)), D < 1.0)
    labels = np.arange(90) % 3
    D[labels[:, None] == labels[None, :]] = np.inf
    np.testing.assert_array_equal(neighbors.nearest_other_sqdist(X, labels), D.min(axis=1))


def test_radius_graph_ties_on_integer_points(tiles):
    X = np.random.default_rng(1).integers(0, 3, size=(150, 3)).astype(np.float32)
    D = brute_sqdist(X)
    for rsq in (1.0, 2.0, 3.0, 4.5):
        np.testing.assert_array_equal(dense(*neighbors.radius_graph(X, rsq)), D < rsq)


def test_radius_graph_edge_bound_is_reported():
    X = np.random.default_rng(2).normal(size=(200, 3))
    with pytest.raises(neighbors.EdgeLimitError, match=r"more than max_edges = 1,000 edges"):
        neighbors.radius_graph(X, 4.0, max_edges=1000)
    indptr, indices = neighbors.radius_graph(X, 4.0, max_edges=200 * 200)
    assert indices.size == (brute_sqdist(X) < 4.0).sum()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nearest_other_label_equals_brute_force(dtype, tiles):
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(140, 4)) * 3).astype(dtype)
    for labels in (rng.integers(0, 4, 140), np.repeat([2, 0, 1], [70, 50, 20])):
        D = brute_sqdist(X)
        D[labels[:, None] == labels[None, :]] = np.inf
        np.testing.assert_array_equal(neighbors.nearest_other_sqdist(X, labels), D.min(axis=1))
    assert np.isinf(neighbors.nearest_other_sqdist(X, np.zeros(140, int))).all()


def test_within_radius_equals_brute_force(tiles):
    rng = np.random.default_rng(4)
    X, C = rng.normal(size=(120, 3)), rng.normal(size=(9, 3))
    D = brute_sqdist(X, C)
    for rsq in (np.sort(D.ravel())[40], 0.3, 0.0):
        np.testing.assert_array_equal(neighbors.within_radius(X, C, rsq), (D < rsq).any(axis=1))
    assert not neighbors.within_radius(X, C[:0], 1.0).any()


def test_greedy_max_coverage_equals_plain_greedy():
    rng = np.random.default_rng(5)
    for trial in range(20):
        X = rng.normal(size=(40, 2))
        rsq = float(rng.uniform(0.05, 1.5))
        indptr, indices = neighbors.radius_graph(X, rsq)
        A = dense(indptr, indices)
        covered = rng.random(40) < 0.2 if trial % 2 else None
        order = rng.permutation(40) if trial % 3 else None
        for n in (1, 5, 40):
            picks, gains = neighbors.greedy_max_coverage(indptr, indices, n, covered=covered, order=order)
            ref_p, ref_g = plain_greedy(A, n, None if covered is None else covered, order)
            assert picks.tolist() == ref_p and gains.tolist() == ref_g


# The strategy --------------------------------------------------------------------------------------------
def test_picks_equal_plain_greedy_on_the_ball_graph():
    rng = np.random.default_rng(6)
    Z, lab = rng.normal(size=(70, 3)), rng.normal(size=(6, 3))
    delta = 0.9
    A = brute_sqdist(Z) < delta ** 2
    covered = (brute_sqdist(Z, lab) < delta ** 2).any(axis=1)
    for seed in range(3):
        for ties in ("lowest", "random"):
            sel = ab.strategies.get("probcover", delta=delta, ties=ties).query(
                ab.Evidence.from_arrays(embeddings=Z, labeled_embeddings=lab), 12, np.random.default_rng(seed))
            order = np.random.default_rng(seed).permutation(70) if ties == "random" else None
            picks, gains = plain_greedy(A, 12, covered, order)
            assert sel.indices.tolist() == picks and sel.scores.tolist() == gains
    # without labeled items nothing is covered at the start
    sel = ab.strategies.get("probcover", delta=delta, ties="lowest").query(
        ab.Evidence.from_arrays(embeddings=Z), 5, np.random.default_rng(0))
    assert sel.indices.tolist() == plain_greedy(A, 5)[0]


def test_labeled_balls_are_excluded():
    rng = np.random.default_rng(7)
    big = rng.normal(scale=0.1, size=(50, 2))                 # a blob of 50 around the origin
    small = rng.normal(scale=0.1, size=(20, 2)) + 10          # and one of 20 far away
    Z = np.concatenate([big, small])
    sel = ab.strategies.get("probcover", delta=1.0).query(ab.Evidence.from_arrays(embeddings=Z), 2,
                                                           np.random.default_rng(0))
    assert sel.indices[0] < 50 and sel.scores.tolist() == [50, 20]
    # a labeled item in the big blob covers it: the first pick covers the small blob
    sel = ab.strategies.get("probcover", delta=1.0).query(
        ab.Evidence.from_arrays(embeddings=Z, labeled_embeddings=np.zeros((1, 2))), 2, np.random.default_rng(0))
    assert sel.indices[0] >= 50 and sel.scores.tolist() == [20, 0]
    assert any("covered 50 of 70" in note for note in sel.notes)


def brute_purity(D, labels, rsq):
    inside = D < rsq
    impure = (inside & (labels[:, None] != labels[None, :])).any(axis=1)
    return 1 - impure.mean()


@pytest.mark.parametrize("alpha", [0.95, 0.8, 1.0])
def test_delta_is_the_largest_radius_with_pure_balls(alpha):
    rng = np.random.default_rng(8)
    X = np.concatenate([rng.normal(size=(60, 2)), rng.normal(size=(40, 2)) + 2.5])
    labels = (X[:, 0] + X[:, 1] > 2.5).astype(int)            # a boundary through the overlap
    D = brute_sqdist(X)
    delta_sq, purity = pc.purity_delta(X, labels, alpha)
    # brute force: every pair distance is a candidate radius; purity only changes there
    values = np.unique(D[~np.eye(100, dtype=bool)])
    good = [v for v in values if brute_purity(D, labels, v) >= alpha]
    assert delta_sq == max(good)
    assert purity == brute_purity(D, labels, delta_sq) >= alpha
    above = values[values > delta_sq]
    assert above.size == 0 or brute_purity(D, labels, above[0]) < alpha


def test_the_strategy_uses_the_purity_rule(monkeypatch):
    rng = np.random.default_rng(9)
    Z, lab = rng.normal(size=(50, 2)), rng.normal(size=(5, 2))
    pseudo = (np.concatenate([Z, lab])[:, 0] > 0).astype(int)
    seen = {}

    def fake_kmeans(x, k, rng_, **kw):
        seen["k"], seen["rows"] = k, x.shape[0]
        return pseudo

    monkeypatch.setattr(pc, "kmeans_labels", fake_kmeans)
    sel = ab.strategies.get("probcover", n_classes=2, ties="lowest").query(
        ab.Evidence.from_arrays(embeddings=Z, labeled_embeddings=lab), 6, np.random.default_rng(0))
    assert seen == {"k": 2, "rows": 55}                        # candidates and labeled items
    X = np.concatenate([Z, lab])
    D = brute_sqdist(X)
    values = np.unique(D[~np.eye(55, dtype=bool)])
    delta_sq = max(v for v in values if brute_purity(D, pseudo, v) >= 0.95)
    covered = (brute_sqdist(Z, lab) < delta_sq).any(axis=1)
    picks, gains = plain_greedy(brute_sqdist(Z) < delta_sq, 6, covered)
    assert sel.indices.tolist() == picks and sel.scores.tolist() == gains
    assert sel.notes[0].startswith(f"delta = {np.sqrt(delta_sq):.6g}: the largest radius")


def test_classes_from_probs_or_options(monkeypatch):
    arrays = ab.testing.make_evidence()
    ks = []
    monkeypatch.setattr(pc, "kmeans_labels", lambda x, k, rng, **kw: ks.append(k) or np.arange(x.shape[0]) % k)
    ab.select("probcover", 3, embeddings=arrays["embeddings"], probs=arrays["probs"], seed=0)
    ab.select("probcover", 3, embeddings=arrays["embeddings"], probs=arrays["probs"], seed=0, n_classes=7)
    ab.select("probcover", 3, embeddings=arrays["embeddings"], seed=0, delta=0.5)     # no k-means
    assert ks == [arrays["probs"].shape[1], 7]
    with pytest.raises(ValueError, match="pass n_classes="):
        ab.select("probcover", 3, embeddings=arrays["embeddings"], seed=0)


def test_after_full_coverage_the_rest_follow_the_order():
    Z = np.concatenate([np.zeros((10, 2)), np.ones((10, 2)) * 5])
    sel = ab.strategies.get("probcover", delta=1.0, ties="lowest").query(
        ab.Evidence.from_arrays(embeddings=Z), 6, np.random.default_rng(0))
    assert sel.indices.tolist() == [0, 10, 1, 2, 3, 4] and sel.scores.tolist() == [10, 10, 0, 0, 0, 0]
    assert any("no ball held an uncovered candidate" in note for note in sel.notes)
    draws = {tuple(ab.select("probcover", 6, embeddings=Z, seed=s, delta=1.0)[2:]) for s in range(5)}
    assert len(draws) > 1                                      # random once all is covered


def test_memmap_and_float32(tmp_path):
    Z = np.random.default_rng(10).normal(size=(80, 4)).astype(np.float32)
    np.save(tmp_path / "z.npy", Z)
    mm = np.load(tmp_path / "z.npy", mmap_mode="r")
    np.testing.assert_array_equal(ab.select("probcover", 5, embeddings=mm, seed=1, n_classes=3),
                                  ab.select("probcover", 5, embeddings=Z, seed=1, n_classes=3))


def test_edge_bound_through_the_strategy():
    Z = np.random.default_rng(11).normal(size=(100, 2))
    with pytest.raises(ValueError, match="max_edges"):
        ab.select("probcover", 3, embeddings=Z, delta=10.0, max_edges=500)


def test_options_are_checked():
    for bad in ({"delta": 0.0}, {"delta": -1.0}, {"alpha": 0.0}, {"alpha": 1.5}, {"n_classes": 0},
                {"ties": "first"}, {"max_edges": 0}, {"n_init": 0}):
        with pytest.raises(ValueError):
            ab.strategies.get("probcover", **bad)


def test_public_checks():
    check_strategy("probcover")


def test_workspace_cold_start_runs_probcover(tmp_path):
    from activebatch.workspace import Workspace
    from workspace_fixtures import make_table

    items, truth = make_table(tmp_path, n=60)
    ws = Workspace.create(tmp_path / "ws", items, ["a", "b", "c"])
    res = ws.query(5, "probcover")
    assert res.strategy == "probcover" and len(res.positions) == 5
    options = ws.store.rounds()["options"].tolist()[0]
    assert "n_classes" in str(options) and "3" in str(options)  # the workspace's classes
    X = ws.store.features()
    rng = np.random.default_rng(np.random.SeedSequence([ws.config.seed, 1]))
    sel = ab.strategies.get("probcover", n_classes=3).query(ab.Evidence.from_arrays(embeddings=X), 5, rng)
    assert res.positions == sel.indices.tolist()
