"""Suggestive annotation (suggestive_annotation, Yang et al. 2017): committee variance, the top-K
uncertain candidates, and the exact greedy for the representativeness F(S_a, S_u)."""
import itertools
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels.maxcover import greedy_max_cover, representativeness
from activebatch.kernels.scores import mean_variance_scores
from activebatch.learning.committee import Committee
from activebatch.learning.models import MLP


def _cos(Z):
    U = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-300)
    return U @ U.T


def _F(cos, chosen):
    """F(S_a, S_u) = sum_u max_{s in S_a} cos(s, u), with F(empty) = 0."""
    return float(cos[list(chosen)].max(axis=0).sum()) if len(chosen) else 0.0


def _plain_greedy(Z, candidates, n):
    """The textbook greedy on the full cosine matrix: add the candidate of largest F(S + c) - F(S)."""
    cos = _cos(Z)
    chosen, gains = [], []
    for _ in range(n):
        base = _F(cos, [candidates[i] for i in chosen])
        g = np.array([-np.inf if j in chosen else _F(cos, [candidates[i] for i in chosen] + [c]) - base
                      for j, c in enumerate(candidates)])
        best = int(np.flatnonzero(g >= g.max() - 1e-12 * len(Z))[0])        # ties (to rounding): lowest position
        chosen.append(best)
        gains.append(g[best])
    return np.array(chosen), np.array(gains)


@pytest.mark.parametrize("block_rows, cached", [(None, True), (None, False), (1, True), (5, False)])
def test_greedy_equals_the_plain_greedy(block_rows, cached):
    rng = np.random.default_rng(0)
    for _ in range(25):
        N, d = int(rng.integers(2, 15)), int(rng.integers(1, 5))
        Z = rng.normal(size=(N, d))
        cand = rng.choice(N, size=int(rng.integers(1, N + 1)), replace=False)
        n = int(rng.integers(1, cand.size + 1))
        pos, gains = greedy_max_cover(torch.from_numpy(Z), cand, n, block_rows=block_rows,
                                      max_cached_values=10**6 if cached else 0)
        ref_pos, ref_gains = _plain_greedy(Z, cand, n)
        np.testing.assert_array_equal(pos, ref_pos)
        np.testing.assert_allclose(gains, ref_gains, atol=1e-9)
        assert representativeness(Z, cand[pos]) == pytest.approx(gains.sum(), abs=1e-9)


def test_greedy_against_brute_force_over_all_subsets():
    rng = np.random.default_rng(1)
    for _ in range(20):
        Z = np.abs(rng.normal(size=(10, 3)))          # non-negative descriptors, as after a ReLU (cosines >= 0)
        cos = _cos(Z)
        cand = rng.choice(10, size=7, replace=False)
        best_one = max(cand, key=lambda c: (_F(cos, [c]), -list(cand).index(c)))
        assert cand[greedy_max_cover(Z, cand, 1)[0][0]] == best_one           # n = 1: the exact optimum
        for n in (2, 3):
            pos, _ = greedy_max_cover(Z, cand, n)
            opt = max(_F(cos, s) for s in itertools.combinations(cand, n))
            assert _F(cos, cand[pos]) >= (1 - 1 / math.e) * opt - 1e-12
            assert _F(cos, cand[pos]) <= opt + 1e-12


def test_mean_variance_by_hand():
    mc = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]])    # 2 members, 2 items, 2 classes
    np.testing.assert_allclose(mean_variance_scores(torch.from_numpy(mc)), [0.04, 0.0], atol=1e-15)
    rng = np.random.default_rng(2)
    mc = rng.dirichlet(np.ones(4), size=(5, 30))
    np.testing.assert_allclose(mean_variance_scores(torch.from_numpy(mc)), mc.var(axis=0).mean(axis=1), rtol=1e-12)


def _mc_with_variances(v, k=3, s=4):
    """Committee outputs whose mean (over classes) variance increases with ``v`` (s members)."""
    v = np.asarray(v, dtype=np.float64)
    signs = np.array([1.0, -1.0] * (s // 2))[:, None]
    p0 = 0.5 + signs * v[None, :]                       # member-wise p(class 0) = 0.5 +- v
    p1 = (1 - p0) * 0.8
    return np.stack([p0, p1, 1 - p0 - p1], axis=2)[:, :, :k]


def test_only_the_most_uncertain_are_offered_and_representativeness_chooses():
    rng = np.random.default_rng(3)
    # 30 items in one tight group (the bulk of the pool) and 10 scattered ones.
    Z = np.concatenate([np.array([5.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(30, 3)), rng.normal(size=(10, 3))])
    v = rng.uniform(0.0, 0.1, size=40)
    v[[30, 31, 32]] = [0.45, 0.44, 0.43]                # three scattered items are the most uncertain ...
    v[0] = 0.40                                         # ... and one of the group is the fourth
    mc = _mc_with_variances(v)
    order = np.argsort(-mean_variance_scores(torch.from_numpy(mc)).numpy(), kind="stable")
    assert order[:4].tolist() == [30, 31, 32, 0]
    sel = ab.strategies.get("suggestive_annotation").query(ab.Evidence.from_arrays(mc_probs=mc, embeddings=Z), 2,
                                                           np.random.default_rng(0))
    assert set(sel.indices.tolist()) <= {30, 31, 32, 0}        # K = 2 n = 4 most uncertain
    assert sel.indices[0] == 0                                  # the group's item represents the pool best
    np.testing.assert_allclose(sel.scores, greedy_max_cover(Z, order[:4], 2)[1])
    assert sel.score_name.startswith("increase of the representativeness")
    # uncertain_factor = 1: the n most uncertain, nothing left to choose
    one = ab.select("suggestive_annotation", 3, mc_probs=mc, embeddings=Z, uncertain_factor=1)
    assert sorted(one.tolist()) == [30, 31, 32]
    # K = N: the greedy over the whole pool
    allk = ab.select("suggestive_annotation", 4, mc_probs=mc, embeddings=Z, uncertain_factor=10)
    np.testing.assert_array_equal(allk, order[greedy_max_cover(Z, order, 4)[0]])


def test_memory_maps_blocks_and_cache_give_the_same_picks(tmp_path):
    arrays = ab.testing.make_evidence(n=60)
    np.save(tmp_path / "z.npy", arrays["embeddings"])
    Z = np.load(tmp_path / "z.npy", mmap_mode="r")
    ref = ab.select("suggestive_annotation", 9, mc_probs=arrays["mc_probs"], embeddings=arrays["embeddings"])
    for options in ({}, {"max_cached_values": 0}):
        np.testing.assert_array_equal(
            ab.select("suggestive_annotation", 9, mc_probs=arrays["mc_probs"], embeddings=Z, **options), ref)


def test_with_a_bootstrap_committee():
    data = ab.datasets.load("digits")
    pool = ab.Pool(data.X_train[:200], data.y_train[:200], n_classes=10)
    pool.label(np.arange(60))
    com = Committee(MLP(64, 10, embedding_dim=16), n_members=4, bootstrap=True, lr=1e-2, device="cpu", max_epochs=5)
    com.fit(*pool.labeled_data(), seed=0)
    ev = com.evidence(pool)
    sel = ab.strategies.get("suggestive_annotation").query(ev, 10, np.random.default_rng(0))
    assert np.unique(sel.indices).size == 10 and sel.indices.max() < 140
    u = mean_variance_scores(ev.mc_probs).numpy()
    assert set(sel.indices.tolist()) <= set(np.argsort(-u, kind="stable")[:20].tolist())
    assert np.all(np.diff(sel.scores[1:]) <= 1e-9)               # submodular: gains never grow


def test_options_are_checked():
    for bad in (dict(uncertain_factor=0), dict(uncertain_factor=1.5), dict(max_cached_values=-1)):
        with pytest.raises(ValueError):
            ab.strategies.get("suggestive_annotation", **bad)
