"""Core-set: screening the labeled set by spatial groups never changes the picks.

Where the groups' triangle-inequality bounds close enough of the labeled set, points are screened
group by group and whole groups are closed without forming their distances. These tests force
that path (and each way of forming its products) on inputs built to break it: ties, duplicates,
points on group boundaries, float16/32/64, and compare with the plain traversal.
"""
import numpy as np
import pytest
import torch

import activebatch.kernels.kcenter as kc
from activebatch.kernels import kcenter_greedy


def _plain(x, lab, n):
    """The plain furthest-first traversal on float64 copies: picks and their squared values."""
    x64 = np.asarray(x, dtype=np.float64)
    lab64 = np.asarray(lab, dtype=np.float64).reshape(-1, x64.shape[1])
    mind = np.min([((x64 - c) ** 2).sum(1) for c in lab64], axis=0)
    out, vals = [], []
    for _ in range(n):
        i = int(mind.argmax())
        out.append(i)
        vals.append(float(mind[i]))
        mind = np.minimum(mind, ((x64 - x64[i]) ** 2).sum(1))
        mind[i] = -1.0
    return out, vals


def _clusters(rng, n, L, d, k=8, covered=2, dtype=np.float32, spread=0.3):
    """A pool in ``k`` tight clusters and a labeled set in the first ``covered`` of them."""
    means = rng.normal(scale=6.0, size=(k, d))
    x = means[rng.integers(k, size=n)] + spread * rng.normal(size=(n, d))
    lab = means[rng.integers(covered, size=L)] + spread * rng.normal(size=(L, d))
    return x.astype(dtype), lab.astype(dtype)


def _traversal(x, lab, n, **kw):
    kw = dict(dict(top=256, refresh_every=None, bound_centers=4), **kw)
    t = kc._Traversal(torch.as_tensor(x), n, torch.as_tensor(lab), None, kw["top"], kw["refresh_every"],
                      kw["bound_centers"], False)
    t.run()
    return t


def _count_screened(monkeypatch):
    """Count the distances formed by group screens (not the pivots')."""
    seen = {"distances": 0}
    screen = kc._Traversal._screen_pairs

    def counting(self, u, xq, r, g):
        seen["distances"] += int(self.g_size[g].sum())
        return screen(self, u, xq, r, g)

    monkeypatch.setattr(kc._Traversal, "_screen_pairs", counting)
    return seen


def test_clustered_data_take_the_grouped_path_and_skip_most_groups(monkeypatch):
    rng = np.random.default_rng(0)
    x, lab = _clusters(rng, 3000, 800, 32, covered=5)
    seen = _count_screened(monkeypatch)
    t = _traversal(x, lab, 150)
    expected, _ = _plain(x, lab, 150)
    assert t.grouped
    assert t.order == expected
    # every point was screened against at most a fraction of the labeled set: the groups of the
    # other clusters were closed by their bounds without forming a distance
    assert seen["distances"] < 0.25 * x.shape[0] * lab.shape[0]
    full = int(t.bits.sum())
    assert int((t.mask == full).sum()) > 0


def test_isotropic_data_keep_the_prefix_screens():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 128)).astype(np.float32)
    lab = rng.normal(size=(600, 128)).astype(np.float32)
    t = _traversal(x, lab, 100)
    assert not t.grouped
    assert t.order == _plain(x, lab, 100)[0]


@pytest.mark.parametrize("call", [0, 10 ** 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grouped_path_on_adversarial_inputs(monkeypatch, call, dtype):
    # groups always (whatever their bounds close), products per group (call 0: only where one
    # product over all rows costs no more distances) or one masked product per round
    monkeypatch.setattr(kc, "_GROUPS_PAY", 0.0)
    monkeypatch.setattr(kc, "_CALL", call)
    rng = np.random.default_rng(3)
    # duplicates of labeled centres and of each other, exact ties on an integer grid
    lab = rng.integers(0, 3, size=(60, 4)).astype(dtype)
    x = np.concatenate([rng.integers(-2, 5, size=(200, 4)), lab[:10], lab[:10]]).astype(dtype)
    t = _traversal(x, lab, 80, bound_centers=2, top=3)
    assert t.grouped
    assert t.order == _plain(x, lab, 80)[0]
    # points on group boundaries: midpoints of pairs of centres, equidistant from both
    lab = rng.normal(size=(90, 8)).astype(dtype)
    mid = 0.5 * (lab[rng.integers(90, size=100)] + lab[rng.integers(90, size=100)])
    x = np.concatenate([mid, rng.normal(scale=2.0, size=(200, 8)).astype(dtype)])
    assert _traversal(x, lab, 60, bound_centers=4).order == _plain(x, lab, 60)[0]
    # rounding: high dimension, clustered, distances that agree to float32 precision
    x, lab = _clusters(rng, 700, 160, 256, covered=3, dtype=dtype, spread=1.0)
    assert _traversal(x, lab, 90, bound_centers=8, top=7).order == _plain(x, lab, 90)[0]


def test_grouped_path_with_float16_pool_and_float64_centres(monkeypatch):
    monkeypatch.setattr(kc, "_GROUPS_PAY", 0.0)
    rng = np.random.default_rng(4)
    x, lab = _clusters(rng, 600, 120, 16, covered=3, dtype=np.float64)
    x = x.astype(np.float16)
    ours = kcenter_greedy(torch.from_numpy(x), 70, centers=torch.from_numpy(lab), bound_centers=4)
    np.testing.assert_array_equal(ours, _plain(x, lab, 70)[0])
    # the same pool as a memory-mapped-like numpy array, read in row blocks
    ours = kcenter_greedy(x, 70, centers=lab, bound_centers=4)
    np.testing.assert_array_equal(ours, _plain(x, lab, 70)[0])


def test_grouped_path_in_small_blocks(monkeypatch):
    # several row blocks in the first pass and products split into row chunks
    monkeypatch.setattr(kc, "_GROUPS_PAY", 0.0)
    monkeypatch.setattr(kc, "_ROWS", 256)
    monkeypatch.setattr(kc, "_SCREEN", 2048)
    rng = np.random.default_rng(5)
    x, lab = _clusters(rng, 1500, 300, 24, covered=4)
    for refresh in (None, 5):
        t = _traversal(x, lab, 120, bound_centers=4, refresh_every=refresh)
        assert t.order == _plain(x, lab, 120)[0]


def test_grouped_path_random_configurations_and_distances(monkeypatch):
    monkeypatch.setattr(kc, "_GROUPS_PAY", 0.0)
    rng = np.random.default_rng(6)
    for trial in range(12):
        d = int(rng.choice([2, 5, 16, 64]))
        k = int(rng.integers(2, 9))
        dtype = np.float32 if trial % 2 else np.float64
        x, lab = _clusters(rng, int(rng.integers(200, 900)), int(rng.integers(40, 300)), d, k=k,
                           covered=int(rng.integers(1, k + 1)), dtype=dtype, spread=float(rng.choice([0.1, 1.0, 4.0])))
        if trial % 3 == 0:  # duplicated pool rows: ties between points
            x = np.concatenate([x, x[:50]])
        n = int(rng.integers(20, 120))
        expected, vals = _plain(x, lab, n)
        kw = dict(top=int(rng.choice([1, 7, 64])), bound_centers=int(rng.choice([2, 4, 16])))
        idx, dist = kcenter_greedy(torch.from_numpy(x), n, centers=torch.from_numpy(lab), return_distances=True, **kw)
        np.testing.assert_array_equal(idx, expected, err_msg=f"trial {trial} {kw}")
        np.testing.assert_allclose(dist ** 2, vals, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_bounds_never_exceed_any_members_distance(dtype):
    rng = np.random.default_rng(7)
    x, lab = _clusters(rng, 400, 300, 48, covered=5, dtype=dtype)
    x = np.concatenate([x, lab[:20], 0.5 * (lab[20:40] + lab[40:60])]).astype(dtype)  # copies, midpoints
    t = kc._Traversal(torch.from_numpy(x), 10, torch.from_numpy(lab), None, 256, None, 4, False)
    assert t.k >= 2
    xt = torch.from_numpy(x)
    lb = t.piv.bounds(t.piv.screen(xt, t.x_sqn), t.slack).numpy()
    c64 = t.lab.cw.double().numpy() if t.lab.c64 is None else t.lab.c64.numpy()
    true = ((x.astype(np.float64)[:, None] - c64[None]) ** 2).sum(-1)
    g_of = t.g_of.numpy()
    for g in range(t.k):
        assert np.all(lb[:, g] <= true[:, g_of == g].min(1))
    # the copies of centres have a zero bound on their own group
    assert np.all(lb[400:420].min(1) == 0.0)
