"""BALD, variation ratios, mean STD and the MC-averaged uncertainty strategies: known answers."""
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels import bald_scores, expected_entropy, predictive_entropy
from activebatch.kernels.scores import mc_mean, mean_std_scores, var_ratio_scores

MC_ONLY = ["bald", "batchbald", "var_ratio", "mean_std", "least_confidence_dropout", "margin_dropout",
           "entropy_dropout"]

# Two MC samples, two classes, four candidates. By hand (nats):
#   0: samples (1, 0) and (0, 1): H[mean] = log 2, mean H = 0           -> BALD log 2
#   1: (0.5, 0.5) twice:           H[mean] = log 2, mean H = log 2       -> BALD 0
#   2: (0.9, 0.1) and (0.1, 0.9): H[mean] = log 2, mean H = h(0.1)      -> BALD log 2 - h(0.1)
#   3: (0.8, 0.2) twice:           H[mean] = mean H = h(0.2)             -> BALD 0
MC = np.array([
    [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1], [0.8, 0.2]],
    [[0.0, 1.0], [0.5, 0.5], [0.1, 0.9], [0.8, 0.2]],
])


def _h(p):
    p = np.asarray(p, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_bald_closed_form_on_hand_computed_samples():
    expected = [math.log(2), 0.0, math.log(2) - _h([0.1, 0.9]), 0.0]
    np.testing.assert_allclose(bald_scores(torch.tensor(MC)).numpy(), expected, atol=1e-15)
    np.testing.assert_allclose(predictive_entropy(torch.tensor(MC)).numpy(),
                               [math.log(2), math.log(2), math.log(2), _h([0.8, 0.2])])
    np.testing.assert_allclose(expected_entropy(torch.tensor(MC)).numpy(),
                               [0.0, math.log(2), _h([0.1, 0.9]), _h([0.8, 0.2])])
    # ties (rows 1 and 3, both exactly 0) go to the lowest index
    np.testing.assert_array_equal(ab.select("bald", 4, mc_probs=MC), [0, 2, 1, 3])


def test_bald_matches_numpy_reference_and_is_non_negative():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=2, size=(1, 200, 6)) + rng.normal(size=(30, 200, 6))
    mc = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    mean = mc.mean(0)
    ref = -(mean * np.log(mean)).sum(1) - (-(mc * np.log(mc)).sum(2)).mean(0)
    got = bald_scores(torch.tensor(mc)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert (got >= -1e-12).all()
    np.testing.assert_array_equal(ab.select("bald", 15, mc_probs=mc), np.argsort(-ref, kind="stable")[:15])
    # samples that all agree carry no information about the parameters
    same = np.repeat(mc[:1], 5, axis=0)
    np.testing.assert_allclose(bald_scores(torch.tensor(same)).numpy(), 0.0, atol=1e-12)


def test_var_ratio_and_mean_std_hand_computed():
    # var ratio = 1 - max of the averaged probabilities: 0.5, 0.5, 0.5, 0.2
    np.testing.assert_allclose(var_ratio_scores(torch.tensor(MC)).numpy(), [0.5, 0.5, 0.5, 0.2])
    # mean std: row 0 has std 0.5 in both classes, row 2 std 0.4, rows 1 and 3 std 0
    np.testing.assert_allclose(mean_std_scores(torch.tensor(MC)).numpy(), [0.5, 0.0, 0.4, 0.0], atol=1e-15)
    np.testing.assert_array_equal(ab.select("mean_std", 4, mc_probs=MC), [0, 2, 1, 3])
    np.testing.assert_array_equal(ab.select("var_ratio", 4, mc_probs=MC), [0, 1, 2, 3])


def test_mean_std_matches_numpy_population_std():
    rng = np.random.default_rng(5)
    mc = rng.dirichlet(np.ones(4), size=(7, 50))
    np.testing.assert_allclose(mean_std_scores(torch.tensor(mc)).numpy(), mc.std(axis=0).mean(axis=1), rtol=1e-10)


@pytest.mark.parametrize("name,plain", [("least_confidence_dropout", "least_confidence"),
                                        ("margin_dropout", "margin"), ("entropy_dropout", "entropy")])
def test_dropout_variants_are_the_classic_scores_on_the_mc_average(name, plain):
    rng = np.random.default_rng(11)
    mc = rng.dirichlet(np.ones(5) * 0.7, size=(9, 80))
    mean = mc_mean(torch.tensor(mc)).numpy()
    np.testing.assert_allclose(mean, mc.mean(0))
    for n in (1, 10, 80):
        np.testing.assert_array_equal(ab.select(name, n, mc_probs=mc), ab.select(plain, n, probs=mean))


def test_var_ratio_ranks_like_least_confidence_dropout():
    rng = np.random.default_rng(2)
    mc = rng.dirichlet(np.ones(3), size=(6, 40))
    np.testing.assert_array_equal(ab.select("var_ratio", 40, mc_probs=mc),
                                  ab.select("least_confidence_dropout", 40, mc_probs=mc))


@pytest.mark.parametrize("name", MC_ONLY)
def test_needs_mc_probs_only(name, evidence_arrays):
    cls = ab.strategies.strategy_class(name)
    assert cls.needs == frozenset({"mc_probs"})
    with pytest.raises(ValueError, match="mc_probs"):
        ab.select(name, 3, probs=evidence_arrays["probs"])
    with pytest.raises(ValueError, match=r"\(S, N, K\)"):
        ab.select(name, 3, mc_probs=evidence_arrays["probs"])
    with pytest.raises(ValueError, match="sum to 1"):
        ab.select(name, 3, mc_probs=evidence_arrays["mc_probs"] * 1.5)


def test_float32_and_float64_inputs_agree():
    rng = np.random.default_rng(8)
    mc = rng.dirichlet(np.ones(4), size=(10, 100))
    for name in MC_ONLY:
        a = ab.select(name, 5, mc_probs=mc, seed=0)
        b = ab.select(name, 5, mc_probs=mc.astype(np.float32), seed=0)
        assert len(set(a) & set(b)) >= 4, name
