"""Core-set: exactly the plain greedy furthest-first traversal."""
import numpy as np
import torch

import activebatch as ab
from activebatch.kernels import kcenter_greedy, min_sqdist_to_centers


def plain_kcenter(x, n, labeled):
    """Sener & Savarese's k-Center-Greedy, written out with explicit loops."""
    centres = [c for c in labeled]
    chosen = []
    for _ in range(n):
        best, best_d = -1, -1.0
        for i in range(len(x)):
            if i in chosen:
                continue
            d = min(np.sum((x[i] - c) ** 2) for c in centres)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
        centres.append(x[best])
    return chosen


def test_identical_to_plain_greedy():
    rng = np.random.default_rng(0)
    for trial in range(4):
        x = rng.normal(size=(80, 5))
        lab = rng.normal(size=(7, 5))
        ours = ab.select("coreset", 20, embeddings=x, labeled_embeddings=lab, seed=trial)
        np.testing.assert_array_equal(ours, plain_kcenter(x, 20, lab))


def test_float32_inputs_agree_with_float64():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 16))
    lab = rng.normal(size=(30, 16))
    a = ab.select("coreset", 15, embeddings=x, labeled_embeddings=lab)
    b = ab.select("coreset", 15, embeddings=x.astype(np.float32), labeled_embeddings=lab.astype(np.float32))
    np.testing.assert_array_equal(a, b)


def test_known_answer_on_a_line():
    # points on a line, labeled point at 0: furthest-first goes 10, then 5, then 2 or 7 (tie: lowest index)
    x = np.array([[1.0], [2.0], [5.0], [7.0], [10.0]])
    idx = ab.select("coreset", 3, embeddings=x, labeled_embeddings=np.array([[0.0]]))
    # after 10 and 5 are chosen: 1 -> 1, 2 -> 4, 7 -> 4; the tie between 2 and 7 goes to index 1
    np.testing.assert_array_equal(idx, [4, 2, 1])


def test_cold_start_without_labeled_embeddings():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))
    idx = ab.select("coreset", 10, embeddings=x, seed=4)
    first = np.random.default_rng(4).integers(50)
    assert idx[0] == first
    expected = [first] + plain_kcenter(np.delete(x, first, 0), 9, [x[first]])
    expected = [expected[0]] + [i if i < first else i + 1 for i in expected[1:]]
    np.testing.assert_array_equal(idx, expected)


def test_min_sqdist_is_blocked_and_exact():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(40, 6)))
    c = torch.tensor(rng.normal(size=(25, 6)))
    ref = ((x[:, None, :] - c[None]) ** 2).sum(-1).min(1).values
    torch.testing.assert_close(min_sqdist_to_centers(x, c, block=4), ref)
    assert torch.isinf(min_sqdist_to_centers(x, c[:0])).all()


def test_duplicates_never_repeat():
    x = np.zeros((10, 2))
    idx = kcenter_greedy(torch.tensor(x), 10, centers=torch.zeros(1, 2))
    assert sorted(idx.tolist()) == list(range(10))


def test_lazy_evaluation_paths_identical_to_plain_greedy():
    import torch

    rng = np.random.default_rng(5)
    for n_pts, top, every in [(150, 1, 3), (150, 4, 1000), (300, 2, 7)]:
        x = rng.normal(size=(n_pts, 4))
        lab = rng.normal(size=(5, 4))
        ours = kcenter_greedy(torch.tensor(x), 25, centers=torch.tensor(lab), top=top, refresh_every=every)
        np.testing.assert_array_equal(ours, plain_kcenter(x, 25, lab))


def test_exact_ties_go_to_the_lowest_index_like_the_plain_algorithm():
    import torch

    rng = np.random.default_rng(6)
    x = rng.integers(0, 4, size=(120, 3)).astype(np.float64)  # a small grid: many exact ties
    lab = np.zeros((1, 3))
    for top in (1, 3, 64):
        ours = kcenter_greedy(torch.tensor(x), 40, centers=torch.tensor(lab), top=top, refresh_every=5)
        np.testing.assert_array_equal(ours, plain_kcenter(x, 40, lab))


def test_float32_inputs_decide_on_float64_distances():
    """In high dimension many distances agree to float32 precision; every pick must still be the
    float64 furthest point (the bulk passes in float32 only give widened upper bounds)."""
    import torch

    rng = np.random.default_rng(8)
    x = rng.normal(size=(3000, 256)).astype(np.float32)
    lab = rng.normal(size=(100, 256)).astype(np.float32)
    ours = kcenter_greedy(torch.from_numpy(x), 300, centers=torch.from_numpy(lab), refresh_every=16)
    x64, lab64 = x.astype(np.float64), lab.astype(np.float64)
    mind = ((x64[:, None, :] - lab64[None]) ** 2).sum(-1).min(1)
    expected = []
    for _ in range(300):
        i = int(mind.argmax())
        expected.append(i)
        mind = np.minimum(mind, ((x64 - x64[i]) ** 2).sum(1))
        mind[i] = -1.0
    np.testing.assert_array_equal(ours, expected)


def _plain_float64(x, lab, n):
    """The plain algorithm on float64 copies, with squared distances written out directly."""
    x64, lab64 = np.asarray(x, dtype=np.float64), np.asarray(lab, dtype=np.float64)
    mind = ((x64[:, None, :] - lab64[None]) ** 2).sum(-1).min(1)
    expected = []
    for _ in range(n):
        i = int(mind.argmax())
        expected.append(i)
        mind = np.minimum(mind, ((x64 - x64[i]) ** 2).sum(1))
        mind[i] = -1.0
    return expected


def test_bounds_from_a_subset_of_the_labeled_set_give_the_same_picks():
    """Many labeled centres: the initial bounds use a random subset (grown while it pays), and
    visited points get their distance to every centre; picks equal the plain algorithm's."""
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64):
        x = rng.normal(size=(600, 24)).astype(dtype)
        lab = rng.normal(size=(400, 24)).astype(dtype)
        for size, top in ((8, 4), (32, 64)):
            ours = kcenter_greedy(torch.from_numpy(x), 120, centers=torch.from_numpy(lab), bound_centers=size,
                                  top=top, refresh_every=50)
            np.testing.assert_array_equal(ours, _plain_float64(x, lab, 120))


def test_clustered_labeled_set_with_subset_bounds():
    # Labeled points in tight clusters and candidates near them: a subset misses whole clusters, so
    # its bounds are loose by far more than rounding; every pick must still be exact.
    rng = np.random.default_rng(12)
    means = rng.normal(scale=5.0, size=(40, 8))
    lab = (means[rng.integers(40, size=300)] + 0.05 * rng.normal(size=(300, 8))).astype(np.float32)
    x = (means[rng.integers(40, size=500)] + 0.5 * rng.normal(size=(500, 8))).astype(np.float32)
    ours = kcenter_greedy(torch.from_numpy(x), 60, centers=torch.from_numpy(lab), bound_centers=16, top=2)
    np.testing.assert_array_equal(ours, _plain_float64(x, lab, 60))


def test_float16_inputs_are_widened_and_decided_in_float64():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(500, 64)).astype(np.float16)
    lab = rng.normal(size=(50, 64)).astype(np.float16)
    ours = kcenter_greedy(torch.from_numpy(x), 80, centers=torch.from_numpy(lab))
    np.testing.assert_array_equal(ours, _plain_float64(x, lab, 80))


def test_frontier_pruning_and_refreshes_keep_the_plain_picks():
    # top=1 makes the frontier grow one visit at a time, so it is pruned (re-sorted) often;
    # refresh_every=3 folds picks into all bounds many times during the traversal.
    rng = np.random.default_rng(14)
    x = rng.normal(size=(400, 3)).astype(np.float32)  # low dimension: picks lower many neighbours
    lab = rng.normal(size=(4, 3)).astype(np.float32)
    for every in (3, 10_000):
        ours = kcenter_greedy(torch.from_numpy(x), 150, centers=torch.from_numpy(lab), top=1, refresh_every=every)
        np.testing.assert_array_equal(ours, _plain_float64(x, lab, 150))


def test_all_tied_pool_is_taken_in_index_order():
    # every candidate is at the same distance: each pick must look at the whole pool (the frontier
    # grows past its initial capacity) and ties go to the lowest index
    x = torch.ones((700, 3), dtype=torch.float32)
    idx = kcenter_greedy(x, 700, centers=torch.zeros(1, 3))
    np.testing.assert_array_equal(idx, np.arange(700))


def test_cold_start_needs_an_rng():
    import pytest

    with pytest.raises(ValueError, match="rng"):
        kcenter_greedy(torch.zeros(5, 2), 2)


def test_memory_mapped_float16_pool_is_read_in_blocks_with_the_same_picks(tmp_path, monkeypatch):
    import activebatch.kernels.kcenter as kc

    rng = np.random.default_rng(15)
    path = tmp_path / "emb.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(3000, 16))
    mm[:] = rng.normal(size=(3000, 16))
    mm.flush()
    lab = rng.normal(size=(40, 16)).astype(np.float32)
    pool = np.load(path, mmap_mode="r")
    monkeypatch.setattr(kc, "_ROWS", 512)  # several row blocks per pass
    ours = ab.select("coreset", 50, embeddings=pool, labeled_embeddings=lab)
    np.testing.assert_array_equal(ours, _plain_float64(np.asarray(pool), lab, 50))
    np.testing.assert_array_equal(ours, kcenter_greedy(torch.from_numpy(np.asarray(pool)), 50,
                                                      centers=torch.from_numpy(lab)))
    # cold start from a map, and a lazy row selection (exclude=) of one
    cold = ab.select("coreset", 20, embeddings=pool, seed=3)
    np.testing.assert_array_equal(cold, ab.select("coreset", 20, embeddings=np.asarray(pool), seed=3))
    excl = ab.select("coreset", 20, embeddings=pool, labeled_embeddings=lab, exclude=np.arange(0, 3000, 7))
    np.testing.assert_array_equal(excl, ab.select("coreset", 20, embeddings=np.asarray(pool),
                                                  labeled_embeddings=lab, exclude=np.arange(0, 3000, 7)))



def test_picks_that_lower_whole_clusters_keep_the_plain_picks():
    # Tight clusters far from the only labeled point: one pick per cluster makes every other bound
    # in it stale by orders of magnitude, so whole clusters are visited and pruned from the frontier.
    rng = np.random.default_rng(16)
    means = rng.normal(scale=10.0, size=(30, 4))
    x = (means[np.repeat(np.arange(30), 60)] + 0.1 * rng.normal(size=(1800, 4))).astype(np.float32)
    lab = np.zeros((1, 4), dtype=np.float32)
    for top in (1, 64):
        ours = kcenter_greedy(torch.from_numpy(x), 200, centers=torch.from_numpy(lab), top=top)
        np.testing.assert_array_equal(ours, _plain_float64(x, lab, 200))


def test_randomised_configurations_against_the_plain_algorithm():
    # Many small pools that exercise every path of the lazy traversal together: subset bounds of
    # several sizes, block-wise screening with passed-over points resumed later, frontier pruning,
    # explicit refreshes, float16/32/64 inputs, clustered and spread data, cold starts.
    rng = np.random.default_rng(17)
    for trial in range(14):
        n_pts, n_lab, dim = int(rng.integers(200, 700)), int(rng.integers(0, 500)), int(rng.choice([2, 5, 16, 40]))
        dtype = [np.float16, np.float32, np.float64][trial % 3]
        if trial % 2:
            means = rng.normal(scale=4.0, size=(12, dim))
            centre = means[rng.integers(12, size=n_pts)]       # drawn in the same order as before
            x = centre + rng.gamma(1.0, 0.3, size=(n_pts, 1)) * rng.normal(size=(n_pts, dim))
        else:
            x = rng.normal(size=(n_pts, dim))
        lab = rng.normal(size=(n_lab, dim))
        x, lab = x.astype(dtype), lab.astype(dtype)
        n = int(rng.integers(20, 150))
        kw = dict(top=int(rng.choice([1, 7, 64])), bound_centers=int(rng.choice([4, 16, 64])),
                  refresh_every=[None, 9][trial % 4 == 3])
        if n_lab:
            ours = kcenter_greedy(torch.from_numpy(x), n, centers=torch.from_numpy(lab), **kw)
            np.testing.assert_array_equal(ours, _plain_float64(x, lab, n), err_msg=f"trial {trial}")
        else:
            ours = kcenter_greedy(torch.from_numpy(x), n, rng=np.random.default_rng(trial), **kw)
            first = int(np.random.default_rng(trial).integers(n_pts))
            rest = _plain_float64(x, x[[first]], n - 1)
            np.testing.assert_array_equal(ours, [first] + rest, err_msg=f"trial {trial}")


def test_float64_centres_with_a_float32_pool_are_not_rounded():
    # decisions use the centres as given (float64), though the screens run in the pool's float32
    rng = np.random.default_rng(18)
    x = rng.normal(size=(400, 32)).astype(np.float32)
    lab = rng.normal(size=(300, 32)) + 1e-9 * rng.normal(size=(300, 32))
    for size in (8, 1024):
        ours = kcenter_greedy(torch.from_numpy(x), 60, centers=torch.from_numpy(lab), bound_centers=size)
        np.testing.assert_array_equal(ours, _plain_float64(x, lab, 60))


def _greedy_from(values, x64, n):
    """Plain furthest-first over rows x64 from the current values (a frontier's view)."""
    v = np.array(values, dtype=np.float64)
    out = []
    for _ in range(n):
        i = int(v.argmax())
        out.append(i)
        v = np.minimum(v, ((x64 - x64[i]) ** 2).sum(1))
        v[i] = -np.inf
    return out


def test_batched_picks_from_the_frontier_leaders_follow_the_sequential_greedy():
    from activebatch.kernels.kcenter import _leaders

    rng = np.random.default_rng(21)
    for dim, width in ((64, 8), (3, 8), (64, 64)):
        x64 = rng.normal(size=(300, dim))
        lab = rng.normal(size=(5, dim))
        E = ((x64[:, None] - lab[None]) ** 2).sum(-1).min(1)
        ids = torch.arange(300)
        first = int(E.argmax())
        pos = _leaders(ids, torch.tensor(x64), torch.tensor((x64 ** 2).sum(1)), torch.tensor(E), first,
                       float("-inf"), 50, width=width).tolist()
        # a prefix of the sequential greedy, as long as the batch could be proven exact
        assert pos == _greedy_from(E, x64, len(pos))
        assert 1 <= len(pos) <= width
        if dim == 64:  # in high dimension a pick hardly lowers the others: the table is used
            assert len(pos) >= width // 2
        # a bound outside the frontier above the second value stops the batch after one pick
        tau = float(np.sort(E)[-2]) + 1e-9
        one = _leaders(ids, torch.tensor(x64), torch.tensor((x64 ** 2).sum(1)), torch.tensor(E), first, tau, 50,
                       width=width)
        assert one.tolist() == [first]


def test_ties_reaching_past_the_leaders_table_go_to_the_lowest_index():
    # 200 points at distance 1 from the only centre, none lowered by another's pick (they are
    # +-e_i, at least sqrt(2) apart): every pick is a tie broken by index, across many tables
    dim = 100
    x = np.concatenate([np.eye(dim), -np.eye(dim)])[np.random.default_rng(22).permutation(2 * dim)]
    x = np.concatenate([x, 0.5 * np.eye(dim)[:50]])  # and some nearer points
    ours = kcenter_greedy(torch.tensor(x), 180, centers=torch.zeros(1, dim))
    np.testing.assert_array_equal(ours, _plain_float64(x, np.zeros((1, dim)), 180))
    assert list(ours[:5]) == sorted(ours[:5])  # the ties came out in index order


def test_centre_order_changes_the_work_never_the_picks():
    """More than 8 x bound_centers labeled points: the centres are reordered by the sample of exact
    values before the first bounds; any subset size and any order give the plain picks."""
    rng = np.random.default_rng(23)
    means = rng.normal(scale=3.0, size=(6, 16))
    x = (means[rng.integers(6, size=900)] + rng.normal(size=(900, 16))).astype(np.float32)
    lab = (means[rng.integers(2, size=700)] + rng.normal(size=(700, 16))).astype(np.float32)  # two clusters only
    expected = _plain_float64(x, lab, 90)
    for size in (2, 8, 64, 1024):
        ours = kcenter_greedy(torch.from_numpy(x), 90, centers=torch.from_numpy(lab), bound_centers=size)
        np.testing.assert_array_equal(ours, expected, err_msg=f"bound_centers={size}")


def test_labeled_set_covering_few_clusters_keeps_the_plain_picks():
    # the labeled points sit in a few of the pool's clusters: picks fall below the sampled
    # estimate of the last pick's value (each covers its cluster), which is then re-estimated
    # from their decline; that changes the work only
    rng = np.random.default_rng(24)
    means = rng.normal(size=(12, 32))
    x = (means[rng.integers(12, size=2500)] + 0.4 * rng.normal(size=(2500, 32))).astype(np.float32)
    lab = (means[rng.integers(3, size=1500)] + 0.4 * rng.normal(size=(1500, 32))).astype(np.float32)
    ours = kcenter_greedy(torch.from_numpy(x), 250, centers=torch.from_numpy(lab), bound_centers=32)
    np.testing.assert_array_equal(ours, _plain_float64(x, lab, 250))


def _pick_distances(x, lab, picks):
    """Each pick's float64 Euclidean distance to the nearest labeled point or earlier pick, when
    it was picked, recomputed from differences one pick at a time (+inf with nothing before it)."""
    x64 = np.asarray(x, dtype=np.float64)
    centres = np.asarray(lab, dtype=np.float64).reshape(-1, x64.shape[1])
    out = []
    for i in picks:
        out.append(np.sqrt(((centres - x64[i]) ** 2).sum(1)).min() if len(centres) else np.inf)
        centres = np.vstack([centres, x64[i]])
    return np.array(out)


def _check_distances(x, lab, n, **kw):
    """Picks and distances of kcenter_greedy on (x, lab) against the plain algorithm and the
    recomputation; the picks are the same with and without ``return_distances``."""
    centers = None if lab is None or not len(lab) else torch.from_numpy(np.asarray(lab))
    pool = x if isinstance(x, np.memmap) else torch.from_numpy(x)  # a map is passed as it is
    seed = kw.pop("seed", None)

    def call(**extra):
        rng = None if seed is None else np.random.default_rng(seed)
        return kcenter_greedy(pool, n, centers=centers, rng=rng, **kw, **extra)

    idx, dist = call(return_distances=True)
    np.testing.assert_array_equal(idx, call())
    assert dist.dtype == np.float64 and dist.shape == (n,)
    ref = _pick_distances(x, np.zeros((0, x.shape[1])) if centers is None else lab, idx)
    np.testing.assert_array_equal(np.isinf(dist), np.isinf(ref))
    fin = np.isfinite(ref)
    # the kernel's float64 squared distances come from ||x||^2 - 2 x.c + ||c||^2: they agree with
    # the differences to float64 rounding of the squared norms (float32 would err ~1e-7 of them)
    x64 = np.asarray(x, dtype=np.float64)
    scale = (x64 ** 2).sum(1).max() + (0.0 if centers is None else (np.asarray(lab, np.float64) ** 2).sum(1).max())
    np.testing.assert_array_less(np.abs(dist[fin] ** 2 - ref[fin] ** 2), 1e-12 * scale + 1e-300)
    assert np.all(np.diff(dist) <= 0), "pick distances increased"
    return idx, dist


def test_pick_distances_agree_with_a_recomputation_on_random_configurations():
    rng = np.random.default_rng(31)
    for trial in range(12):
        n_pts, n_lab, dim = int(rng.integers(200, 700)), int(rng.integers(0, 500)), int(rng.choice([2, 5, 16, 40]))
        dtype = [np.float16, np.float32, np.float64][trial % 3]
        if trial % 2:
            means = rng.normal(scale=4.0, size=(12, dim))
            which = rng.integers(12, size=n_pts)
            x = means[which] + rng.gamma(1.0, 0.3, size=(n_pts, 1)) * rng.normal(size=(n_pts, dim))
        else:
            x = rng.normal(size=(n_pts, dim))
        lab = rng.normal(size=(n_lab, dim)).astype(dtype)
        x = x.astype(dtype)
        n = int(rng.integers(20, 150))
        kw = dict(top=int(rng.choice([1, 7, 64])), bound_centers=int(rng.choice([4, 16, 64])),
                  refresh_every=[None, 9][trial % 4 == 3])
        if not n_lab:
            kw["seed"] = trial
        idx, dist = _check_distances(x, lab, n, **kw)
        if n_lab:
            np.testing.assert_array_equal(idx, _plain_float64(x, lab, n), err_msg=f"trial {trial}")
        else:
            assert dist[0] == np.inf and np.isfinite(dist[1:]).all()


def test_pick_distances_on_a_line_are_the_greedy_values():
    x = np.array([[1.0], [2.0], [5.0], [7.0], [10.0]])
    idx, dist = kcenter_greedy(torch.tensor(x), 3, centers=torch.zeros(1, 1), return_distances=True)
    np.testing.assert_array_equal(idx, [4, 2, 1])
    np.testing.assert_array_equal(dist, [10.0, 5.0, 2.0])


def test_pick_distances_with_exact_ties_are_exact():
    # integer coordinates: every squared distance is exact in float64, so the distances must be
    # exactly the square roots of the recomputed ones, ties included
    rng = np.random.default_rng(32)
    x = rng.integers(0, 4, size=(120, 3)).astype(np.float64)
    lab = np.zeros((1, 3))
    for top, every in ((1, 5), (64, None)):
        idx, dist = _check_distances(x, lab, 40, top=top, refresh_every=every)
        np.testing.assert_array_equal(dist, _pick_distances(x, lab, idx))
    # an all-tied pool: sqrt(3) for the first pick, then duplicates at distance 0
    idx, dist = kcenter_greedy(torch.ones((700, 3), dtype=torch.float32), 700, centers=torch.zeros(1, 3),
                               return_distances=True)
    np.testing.assert_array_equal(idx, np.arange(700))
    np.testing.assert_array_equal(dist, [np.sqrt(3.0)] + [0.0] * 699)


def test_pick_distances_with_clusters_and_subset_bounds():
    # the labeled set covers a few of the clusters: picks lower whole clusters, bounds come from
    # a subset of the labeled set and points are passed over and resumed
    rng = np.random.default_rng(33)
    means = rng.normal(size=(12, 32))
    x = (means[rng.integers(12, size=1500)] + 0.4 * rng.normal(size=(1500, 32))).astype(np.float32)
    lab = (means[rng.integers(3, size=900)] + 0.4 * rng.normal(size=(900, 32))).astype(np.float32)
    idx, dist = _check_distances(x, lab, 150, bound_centers=32)
    np.testing.assert_array_equal(idx, _plain_float64(x, lab, 150))
    # tight clusters far apart: picks between clusters, then far smaller ones within them
    means = rng.normal(scale=10.0, size=(30, 4))
    x = (means[np.repeat(np.arange(30), 60)] + 0.1 * rng.normal(size=(1800, 4))).astype(np.float32)
    idx, dist = _check_distances(x, np.zeros((1, 4), dtype=np.float32), 200, top=1)
    assert dist[0] > 10 * dist[-1]


def test_pick_distances_from_memory_mapped_pools(tmp_path):
    rng = np.random.default_rng(34)
    for dtype in (np.float16, np.float32):
        path = tmp_path / f"emb_{np.dtype(dtype).name}.npy"
        np.save(path, rng.normal(size=(2000, 24)).astype(dtype))
        pool = np.load(path, mmap_mode="r")
        lab = rng.normal(size=(300, 24)).astype(np.float32)
        idx, dist = _check_distances(pool, lab, 80, bound_centers=16)
        np.testing.assert_array_equal(idx, _plain_float64(np.asarray(pool), lab, 80))
        idx, dist = _check_distances(pool, None, 30, seed=5)  # cold start from the map
        assert idx[0] == np.random.default_rng(5).integers(2000)


def test_pick_distances_on_a_cold_start():
    rng = np.random.default_rng(35)
    x = rng.normal(size=(300, 6))
    idx, dist = _check_distances(x, None, 40, seed=7)
    assert dist[0] == np.inf and np.isfinite(dist[1:]).all()
    first = np.random.default_rng(7).integers(300)
    np.testing.assert_array_equal(idx, [first] + _plain_float64(x, x[[first]], 39))
