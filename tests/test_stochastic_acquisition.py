"""Stochastic batch acquisition (Kirsch et al., TMLR 2023): the exact without-replacement law."""
import itertools

import numpy as np
import pytest
from scipy.stats import chisquare

import activebatch as ab
from activebatch.kernels.scores import sample_without_replacement, sampling_log_weights
from activebatch.testing import check_strategy, make_evidence, parametrize_with_checks

W = np.array([0.5, 1.0, 2.0, 4.0, 0.25])


def _ordered_pair_law(w):
    """P(first = i, second = j) of successive sampling without replacement, exactly."""
    total = w.sum()
    return {(i, j): w[i] / total * w[j] / (total - w[i]) for i, j in itertools.permutations(range(len(w)), 2)}


def test_first_and_second_picks_follow_successive_sampling():
    rng = np.random.default_rng(0)
    draws = 40_000
    pairs = [tuple(sample_without_replacement(np.log(W), 2, rng)) for _ in range(draws)]
    law = _ordered_pair_law(W)
    keys = sorted(law)
    observed = np.array([sum(1 for p in pairs if p == k) for k in keys])   # noqa: B023
    expected = np.array([law[k] for k in keys]) * draws
    assert chisquare(observed, expected).pvalue > 1e-3
    first = np.bincount([p[0] for p in pairs], minlength=len(W))
    assert chisquare(first, W / W.sum() * draws).pvalue > 1e-3


@pytest.mark.parametrize("sampling, expected", [
    ("power", W ** 2 / (W ** 2).sum()),
    ("softmax", np.exp(2 * W) / np.exp(2 * W).sum()),
    ("softrank", (1 / np.array([4, 3, 2, 1, 5], dtype=float) ** 2) / (1 / np.array([4, 3, 2, 1, 5.0]) ** 2).sum()),
])
def test_first_pick_frequencies_match_each_rule(sampling, expected):
    rng = np.random.default_rng(1)
    log_w = sampling_log_weights(W, sampling, beta=2.0)
    first = np.bincount([sample_without_replacement(log_w, 1, rng)[0] for _ in range(30_000)], minlength=len(W))
    assert chisquare(first, expected * 30_000).pvalue > 1e-3


def test_zero_weights_come_last_in_random_order_and_negative_power_is_refused():
    rng = np.random.default_rng(2)
    a = np.array([0.0, 3.0, 0.0, 1.0, 0.0])
    log_w = sampling_log_weights(a, "power", 1.0)
    tails = set()
    for _ in range(200):
        order = sample_without_replacement(log_w, 5, rng)
        assert set(order[:2]) == {1, 3}
        tails.add(tuple(order[2:]))
    assert len(tails) == 6                                     # every order of the three zero-weight items
    with pytest.raises(ValueError, match="non-negative"):
        sampling_log_weights(np.array([0.5, -0.1]), "power", 1.0)


def test_every_score_strategy_accepts_the_rules():
    ev = make_evidence()
    for name in ("margin", "least_confidence", "entropy", "bald", "egl", "vote_entropy", "var_ratio"):
        for sampling in ("power", "softmax", "softrank"):
            res = ab.select(name, 10, seed=3, sampling=sampling, beta=1.0, return_result=True, **ev)
            assert len(set(res.indices.tolist())) == 10 and res.scores is not None
            again = ab.select(name, 10, seed=3, sampling=sampling, beta=1.0, **ev)
            np.testing.assert_array_equal(res.indices, again)
    # top-k is the default and is the ranking
    np.testing.assert_array_equal(ab.select("entropy", 5, probs=ev["probs"]),
                                  ab.select("entropy", 5, probs=ev["probs"], sampling="topk", seed=9))
    with pytest.raises(ValueError, match="sampling must be one of 'topk', 'power', 'softmax', 'softrank'"):
        ab.strategies.get("margin", sampling="gibbs")
    with pytest.raises(ValueError, match="beta must be a number > 0"):
        ab.strategies.get("margin", beta=0)


def test_power_margin_favours_small_margins():
    """For margin (smaller = more uncertain) the acquisition score is 1 - margin."""
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.99, 0.01]])   # margins 0, 0.8, 0.98
    strat = ab.strategies.get("margin", sampling="power", beta=1.0)
    assert np.allclose(strat.informativeness(np.array([0.0, 0.8, 0.98])), [1.0, 0.2, 0.02])
    rng = np.random.default_rng(0)
    first = np.bincount([ab.select(strat, 1, probs=p, seed=rng)[0] for _ in range(6000)], minlength=3)
    expected = np.array([1.0, 0.2, 0.02]) / 1.22 * 6000
    assert chisquare(first, expected).pvalue > 1e-3


@parametrize_with_checks([ab.strategies.get("bald", sampling="power"), ab.strategies.get("margin", sampling="softmax"),
                          ab.strategies.get("entropy", sampling="softrank", beta=2.0)])
def test_stochastic_variants_pass_the_checks(strategy, check):
    check(strategy)


def test_stochastic_variants_are_randomized():
    assert ab.strategies.get("bald", sampling="power").randomized
    assert not ab.strategies.get("bald").randomized
    check_strategy(ab.strategies.get("egl", sampling="power", bias=True))
