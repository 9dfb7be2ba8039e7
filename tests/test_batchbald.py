"""BatchBALD: the greedy joint mutual information against brute force and its known properties."""
import itertools
import math
import warnings

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels import (
    BatchBALDSaturationWarning,
    bald_scores,
    greedy_batchbald,
    joint_mutual_information,
)
from activebatch.kernels.batchbald import conditional_entropies


def _mc(seed, s, n, k, scale=2.0, noise=1.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=scale, size=(1, n, k)) + rng.normal(scale=noise, size=(s, n, k))
    return np.exp(logits) / np.exp(logits).sum(2, keepdims=True)


def _brute_joint_mi(mc, idx):
    """I(y_idx; w) = H(y_idx) - sum_i mean_s H[p_s(y_i)], enumerating every label configuration."""
    S, _, K = mc.shape
    h_joint = 0.0
    for conf in itertools.product(range(K), repeat=len(idx)):
        lik = np.ones(S)
        for i, c in zip(idx, conf):
            lik = lik * mc[:, i, c]
        p = lik.mean()
        if p > 0:
            h_joint -= p * math.log(p)
    aleatoric = sum(float(-(mc[:, i] * np.log(mc[:, i])).sum(1).mean()) for i in idx)
    return h_joint - aleatoric


def _brute_greedy(mc, b):
    chosen = []
    for _ in range(b):
        scores = [(_brute_joint_mi(mc, chosen + [j]), -j) for j in range(mc.shape[1]) if j not in chosen]
        chosen.append(-max(scores)[1])
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_regime_equals_brute_force_greedy(seed):
    mc = _mc(seed, s=6, n=12, k=3)
    res = greedy_batchbald(torch.tensor(mc), 5, np.random.default_rng(0))
    assert res.exact.all()                                   # 3^4 configurations <= 40,000
    brute = _brute_greedy(mc, 5)
    assert res.indices.tolist() == brute
    np.testing.assert_allclose(np.cumsum(res.gains), [_brute_joint_mi(mc, brute[:t + 1]) for t in range(5)],
                               rtol=1e-10, atol=1e-12)
    assert ab.select("batchbald", 5, mc_probs=mc, seed=0).tolist() == brute


def test_joint_mutual_information_equals_brute_force():
    mc = _mc(4, s=5, n=6, k=4)
    for idx in ([0], [1, 3], [0, 2, 5], [5, 4, 3, 2]):
        assert joint_mutual_information(torch.tensor(mc[:, idx])) == pytest.approx(_brute_joint_mi(mc, idx),
                                                                                   rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_batch_of_one_is_balds_top_choice(seed):
    mc = _mc(seed, s=10, n=300, k=5)
    res = greedy_batchbald(torch.tensor(mc), 1, np.random.default_rng(seed))
    bald = bald_scores(torch.tensor(mc))
    assert res.indices[0] == ab.select("bald", 1, mc_probs=mc)[0] == int(bald.argmax())
    assert res.gains[0] == pytest.approx(float(bald.max()), rel=1e-12)


def test_joint_mi_is_non_decreasing_and_bounded_by_the_sum_of_bald_scores():
    mc = _mc(7, s=8, n=80, k=4)
    for max_exact in (None, 1):                              # exact, then Monte-Carlo from the second pick
        res = greedy_batchbald(torch.tensor(mc), 12, np.random.default_rng(1), max_exact_configs=max_exact,
                               num_samples=8000)
        joint = np.cumsum(res.gains)
        bald = bald_scores(torch.tensor(mc)).numpy()[res.indices]
        tol = 1e-12 if max_exact is None else 1e-2
        assert (res.gains >= -tol).all()                     # I(y_x; w | y_A) >= 0: the joint MI never falls
        assert (np.diff(joint) >= -tol).all()
        assert (joint <= np.cumsum(bald) + tol).all()        # submodularity: gain <= the BALD score
        assert (res.gains <= bald + tol).all()
        assert joint[-1] <= math.log(8) + tol                # I(y; w) <= H(w) = log S
    exact = greedy_batchbald(torch.tensor(mc), 5, np.random.default_rng(0))
    assert np.cumsum(exact.gains)[-1] == pytest.approx(joint_mutual_information(torch.tensor(mc[:, exact.indices])),
                                                       rel=1e-10)


def test_lazy_evaluation_selects_what_full_evaluation_selects():
    mc = torch.tensor(_mc(3, s=12, n=400, k=6))
    lazy = greedy_batchbald(mc, 7, np.random.default_rng(0))
    full = greedy_batchbald(mc, 7, np.random.default_rng(0), lazy=False)
    assert lazy.exact[:6].all()
    np.testing.assert_array_equal(lazy.indices, full.indices)
    np.testing.assert_allclose(lazy.gains, full.gains, rtol=1e-9)
    # sampled regime from the third pick: the same configurations are drawn either way
    lazy = greedy_batchbald(mc, 10, np.random.default_rng(5), max_exact_configs=6, num_samples=12000)
    full = greedy_batchbald(mc, 10, np.random.default_rng(5), max_exact_configs=6, num_samples=12000, lazy=False)
    assert not lazy.exact[2:].any()
    np.testing.assert_array_equal(lazy.indices, full.indices)


def test_sampled_joint_entropies_estimate_the_exact_ones():
    mc = _mc(9, s=10, n=40, k=3)
    exact = greedy_batchbald(torch.tensor(mc), 6, np.random.default_rng(0))
    sampled = greedy_batchbald(torch.tensor(mc), 6, np.random.default_rng(0), max_exact_configs=1,
                               num_samples=40000)
    assert exact.exact.all() and not sampled.exact[1:].any()
    # the estimated gains of the exact batch's picks, when those picks win, are close to the exact ones
    assert sampled.indices[0] == exact.indices[0]
    truth = joint_mutual_information(torch.tensor(mc[:, sampled.indices]))
    assert np.cumsum(sampled.gains)[-1] == pytest.approx(truth, abs=0.01)
    assert np.cumsum(sampled.gains)[-1] == pytest.approx(np.cumsum(exact.gains)[-1], abs=0.03)


def test_conditional_entropies_with_the_empty_batch_is_the_predictive_entropy():
    mc = torch.tensor(_mc(1, s=4, n=9, k=3))
    h = conditional_entropies(torch.full((1, 4), 0.25, dtype=torch.float64), torch.ones(1, dtype=torch.float64), mc)
    p = mc.mean(0)
    np.testing.assert_allclose(h.numpy(), (-(p * p.log()).sum(1)).numpy(), rtol=1e-12)


def test_seeded_and_reproducible_in_the_sampled_regime():
    mc = _mc(2, s=6, n=120, k=5)
    a = ab.select("batchbald", 12, mc_probs=mc, seed=4, max_exact_configs=10)
    b = ab.select("batchbald", 12, mc_probs=mc, seed=4, max_exact_configs=10)
    np.testing.assert_array_equal(a, b)
    c = ab.select("batchbald", 12, mc_probs=mc.astype(np.float32), seed=4, max_exact_configs=10)
    assert len(set(a) & set(c)) >= 10


def test_zero_probabilities_and_identical_candidates():
    # hard (one-hot) predictions: most label configurations have probability zero
    rng = np.random.default_rng(0)
    hard = np.eye(3)[rng.integers(3, size=(5, 30))]
    res = greedy_batchbald(torch.tensor(hard), 10, np.random.default_rng(0))
    assert np.isfinite(res.gains).all() and (res.gains >= -1e-12).all()
    assert np.cumsum(res.gains)[-1] <= math.log(5) + 1e-12
    # with certain samples, the label of an exact copy of a chosen item is known: gain 0, so the
    # copy comes after every candidate that still carries information
    top = int(bald_scores(torch.tensor(hard)).argmax())
    twin = np.concatenate([hard, hard[:, [top]]], axis=1)                 # candidate 30 copies `top`
    with pytest.warns(BatchBALDSaturationWarning):   # 5 certain samples are told apart long before 31 picks
        res = greedy_batchbald(torch.tensor(twin), 31, np.random.default_rng(0))
    assert res.indices[0] == top
    pos = res.indices.tolist().index(30)
    assert res.gains[pos] == pytest.approx(0.0, abs=1e-12)
    assert (res.gains[pos:] <= 1e-9).all()                  # greedy gains of a submodular function only fall
    assert (np.diff(res.gains[res.exact]) <= 1e-12).all()


def test_options_are_validated(evidence_arrays):
    mc = evidence_arrays["mc_probs"]
    with pytest.raises(ValueError, match="num_samples"):
        ab.select("batchbald", 3, mc_probs=mc, num_samples=0)
    with pytest.raises(ValueError, match="max_exact_configs"):
        ab.select("batchbald", 3, mc_probs=mc, max_exact_configs=-1)
    with pytest.raises(ValueError, match="between 1"):
        greedy_batchbald(torch.tensor(mc), 61, np.random.default_rng(0))
    assert repr(ab.strategies.get("batchbald", num_samples=1000)) == \
        "BatchBALD(num_samples=1000, max_exact_configs=None, lazy=True, ties='random')"
    with pytest.raises(ValueError, match="ties"):
        ab.select("batchbald", 3, mc_probs=mc, ties="first")
    with pytest.raises(ValueError, match="ties"):
        greedy_batchbald(torch.tensor(mc), 3, np.random.default_rng(0), ties="first")


def _identifying(n, seed=0):
    """S = 2 samples; candidate 0's label tells them apart (one-hot, opposite), the other n - 1
    disagree only softly. Picking candidate 0 first saturates the batch: I(y_0; w) = ln 2 = H(w)."""
    mc = _mc(seed, s=2, n=n, k=2, noise=0.3)
    mc[:, 0] = [[1.0, 0.0], [0.0, 1.0]]
    return mc


def test_saturation_ties_are_uniformly_random_or_lowest_index():
    from scipy import stats

    n = 9
    mc = torch.tensor(_identifying(n))
    # the first step is exact (one configuration); from the second, configurations are sampled and
    # each is a point mass on the sample it was drawn from: every gain estimate is exactly zero
    with pytest.warns(BatchBALDSaturationWarning, match="after 1 of 4 picks"):
        res = greedy_batchbald(mc, 4, np.random.default_rng(0), num_samples=200, max_exact_configs=1,
                               ties="lowest")
    assert res.saturated_at == 1 and res.indices.tolist() == [0, 1, 2, 3]
    assert res.gains[0] == pytest.approx(math.log(2)) and (res.gains[1:] == 0.0).all()
    # ties="random": the second pick is uniform over the 8 remaining candidates (chi-square test
    # against the exact distribution), and the whole batch is a uniformly random order of them
    seconds = []
    with pytest.warns(BatchBALDSaturationWarning):
        for seed in range(800):
            r = greedy_batchbald(mc, n, np.random.default_rng(seed), num_samples=200, max_exact_configs=1)
            assert r.indices[0] == 0 and sorted(r.indices[1:]) == list(range(1, n))
            seconds.append(int(r.indices[1]))
    counts = np.bincount(seconds, minlength=n)[1:]
    assert stats.chisquare(counts).pvalue > 1e-3
    # without saturation (the exact regime throughout) nothing is a tie and no warning is raised
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchBALDSaturationWarning)
        assert greedy_batchbald(mc, 3, np.random.default_rng(0)).saturated_at is None


def test_strategy_reports_saturation_in_its_notes():
    mc = _identifying(9)
    strategy = ab.strategies.get("batchbald", num_samples=200, max_exact_configs=1)
    evidence = ab.Evidence.from_arrays(mc_probs=mc)
    with pytest.warns(BatchBALDSaturationWarning):
        sel = strategy.query(evidence, 5, np.random.default_rng(0))
    assert len(sel.notes) == 1 and "saturated after 1 of 5 picks" in sel.notes[0]
    assert "drawn uniformly at random" in sel.notes[0]
