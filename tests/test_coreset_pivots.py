"""Core-set: lower bounds from pivot groups of the labeled set never change the picks."""
import numpy as np
import pytest
import torch

import activebatch.kernels.kcenter as kc
from activebatch.kernels import kcenter_greedy


def _plain(x, lab, n):
    """The plain furthest-first traversal on float64 copies, squared distances from differences."""
    x64 = np.asarray(x, dtype=np.float64)
    lab64 = np.asarray(lab, dtype=np.float64).reshape(-1, x64.shape[1])
    mind = ((x64[:, None, :] - lab64[None]) ** 2).sum(-1).min(1)
    out = []
    for _ in range(n):
        i = int(mind.argmax())
        out.append(i)
        mind = np.minimum(mind, ((x64 - x64[i]) ** 2).sum(1))
        mind[i] = -1.0
    return out


def _pivots(lab, k):
    lab = torch.as_tensor(lab)
    return kc._Pivots(kc._Labeled(lab, lab.device, kc._work_dtype(lab.dtype)), k)


@pytest.mark.parametrize("k", [1, 3, 16, 200])
def test_pivot_lower_bound_never_exceeds_the_float64_distance(k):
    rng = np.random.default_rng(0)
    means = rng.normal(scale=4.0, size=(5, 12))
    lab = (means[rng.integers(5, size=150)] + 0.3 * rng.normal(size=(150, 12))).astype(np.float32)
    # pool: clustered points, exact copies of centres (bound must be 0), points midway between
    # two centres (on group boundaries) and far points
    x = np.concatenate([means[rng.integers(5, size=100)] + 0.3 * rng.normal(size=(100, 12)), lab[:20],
                        0.5 * (lab[20:40] + lab[40:60]), 30 * rng.normal(size=(10, 12))]).astype(np.float32)
    piv = _pivots(lab, k)
    x64 = torch.from_numpy(x).double()
    lb = piv.lower_sq(x64, (x64 * x64).sum(1)).numpy()
    true = ((x.astype(np.float64)[:, None] - lab.astype(np.float64)[None]) ** 2).sum(-1).min(1)
    assert np.all(lb <= true)
    assert np.all(lb[100:120] == 0.0)  # copies of centres
    # the radii cover every member: with k = L every group is a single centre and the bound is
    # the exact distance up to the rounding margin
    if k >= 150:
        np.testing.assert_allclose(lb, true, rtol=1e-9, atol=1e-9)
    # far points get a bound that is not vacuous
    assert np.all(lb[-10:] > 0.25 * true[-10:])


def test_pivots_radii_bound_their_groups_in_float64():
    rng = np.random.default_rng(1)
    lab = rng.normal(size=(300, 40))
    piv = _pivots(lab, 7)
    # every centre lies within some pivot's radius of that pivot (its own group's)
    d = np.sqrt(((lab[:, None] - piv.p64.numpy()[None]) ** 2).sum(-1))
    assert np.all((d <= piv.r.numpy()[None] + 1e-12).any(1))
    assert piv.p64.shape == (7, 40)


def test_picks_covering_clusters_far_from_the_labeled_set(monkeypatch):
    # the labeled set covers two of eight tight clusters: once a cluster has a pick, its other
    # points are provably nearer that pick than any labeled centre and skip the screen
    monkeypatch.setattr(kc, "_PIVOTS", 16)
    rng = np.random.default_rng(2)
    means = rng.normal(scale=6.0, size=(8, 32))
    x = (means[rng.integers(8, size=1500)] + 0.3 * rng.normal(size=(1500, 32))).astype(np.float32)
    lab = (means[rng.integers(2, size=400)] + 0.3 * rng.normal(size=(400, 32))).astype(np.float32)
    expected = _plain(x, lab, 120)
    for bc in (4, 64):
        ours = kcenter_greedy(torch.from_numpy(x), 120, centers=torch.from_numpy(lab), bound_centers=bc)
        np.testing.assert_array_equal(ours, expected)
    t = kc._Traversal(torch.from_numpy(x), 120, torch.from_numpy(lab), None, 256, None, 4, False)
    t.run()
    assert t.order == expected
    # many points became exact without being screened against the whole labeled set (some of
    # its groups neither screened nor closed)
    full = int(t.bits.sum())
    assert int((t.exact & (t.mask != full)).sum()) > 100


@pytest.mark.parametrize("pivots", [1, 2, 5, 40])
def test_pivot_path_on_adversarial_inputs(monkeypatch, pivots):
    monkeypatch.setattr(kc, "_PIVOTS", pivots)
    rng = np.random.default_rng(3 + pivots)
    # duplicates of labeled centres and of each other, exact ties on an integer grid
    lab = rng.integers(0, 3, size=(60, 4)).astype(np.float64)
    x = np.concatenate([rng.integers(-2, 5, size=(200, 4)), lab[:10], lab[:10]]).astype(np.float64)
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 80, centers=torch.from_numpy(lab),
                                                 bound_centers=2, top=3), _plain(x, lab, 80))
    # points on group boundaries: midpoints of pairs of centres, equidistant from both
    lab = rng.normal(size=(50, 8))
    mid = 0.5 * (lab[rng.integers(50, size=100)] + lab[rng.integers(50, size=100)])
    x = np.concatenate([mid, rng.normal(scale=2.0, size=(200, 8))])
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 60, centers=torch.from_numpy(lab),
                                                 bound_centers=4), _plain(x, lab, 60))
    # float32 rounding: high dimension, distances agree to float32 precision
    x = rng.normal(size=(600, 256)).astype(np.float32)
    lab = rng.normal(size=(120, 256)).astype(np.float32)
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 90, centers=torch.from_numpy(lab),
                                                 bound_centers=8), _plain(x, lab, 90))
    # float16 pool with float64 centres
    x = rng.normal(size=(400, 16)).astype(np.float16)
    lab = rng.normal(size=(90, 16))
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 50, centers=torch.from_numpy(lab),
                                                 bound_centers=4), _plain(x, lab, 50))


def test_no_pivots_for_small_labeled_sets_and_cold_starts(monkeypatch):
    monkeypatch.setattr(kc, "_PIVOTS", 1)
    rng = np.random.default_rng(9)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    # L = 1: fewer centres than pivots plus one, no groups
    lab = rng.normal(size=(1, 6)).astype(np.float32)
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 40, centers=torch.from_numpy(lab)),
                                  _plain(x, lab, 40))
    # L = 2: one pivot, one group of both centres
    lab = rng.normal(size=(2, 6)).astype(np.float32)
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 40, centers=torch.from_numpy(lab)),
                                  _plain(x, lab, 40))
    # L = 0: a cold start
    ours = kcenter_greedy(torch.from_numpy(x), 30, rng=np.random.default_rng(4))
    first = int(np.random.default_rng(4).integers(300))
    np.testing.assert_array_equal(ours, [first] + _plain(x, x[[first]], 29))


def test_default_pivots_on_a_labeled_set_larger_than_the_groups():
    # the default path (64 pivots, subset bounds from 64 centres) on clustered data with a
    # labeled set concentrated in a few clusters
    rng = np.random.default_rng(10)
    means = rng.normal(size=(10, 48))
    x = (means[rng.integers(10, size=3000)] + 0.5 * rng.normal(size=(3000, 48))).astype(np.float32)
    lab = (means[rng.integers(3, size=700)] + 0.5 * rng.normal(size=(700, 48))).astype(np.float32)
    np.testing.assert_array_equal(kcenter_greedy(torch.from_numpy(x), 150, centers=torch.from_numpy(lab)),
                                  _plain(x, lab, 150))
