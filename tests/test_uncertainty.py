"""Least confidence, margin and entropy on a hand-computable pool."""
import numpy as np
import pytest

import activebatch as ab

# Five candidates, three classes. By hand:
#   max p:   0.5, 0.9, 0.4, 0.34, 0.6        -> least confidence order 3, 2, 0, 4, 1
#   margin:  0.1, 0.85, 0.0, 0.01, 0.2      -> margin order 2, 3, 0, 4, 1
#   entropy: row 3 (near uniform) > row 2 (0.4, 0.4, 0.2) > row 0 (0.5, 0.4, 0.1) > row 4 > row 1
P = np.array([
    [0.5, 0.4, 0.1],
    [0.9, 0.05, 0.05],
    [0.4, 0.4, 0.2],
    [0.34, 0.33, 0.33],
    [0.6, 0.4, 0.0],
])


def _entropy(p):
    p = p[p > 0]
    return -(p * np.log(p)).sum()


def test_least_confidence_hand_computed():
    np.testing.assert_array_equal(ab.select("least_confidence", 5, probs=P), [3, 2, 0, 4, 1])
    np.testing.assert_array_equal(ab.select("least_confidence", 2, probs=P), [3, 2])


def test_margin_hand_computed():
    np.testing.assert_array_equal(ab.select("margin", 5, probs=P), [2, 3, 0, 4, 1])
    np.testing.assert_array_equal(ab.select("margin", 1, probs=P), [2])


def test_entropy_hand_computed():
    expected = np.argsort([-_entropy(row) for row in P], kind="stable")
    np.testing.assert_array_equal(expected, [3, 2, 0, 4, 1])
    np.testing.assert_array_equal(ab.select("entropy", 5, probs=P), expected)
    # 0 log 0 = 0: the row with a zero probability has a finite entropy
    import torch

    from activebatch.kernels.scores import entropy_scores

    scores = entropy_scores(torch.tensor(P))
    assert np.isfinite(scores.numpy()).all()
    np.testing.assert_allclose(scores.numpy(), [_entropy(r) for r in P])


def test_ties_go_to_the_lowest_index():
    flat = np.full((6, 2), 0.5)
    for name in ("least_confidence", "margin", "entropy"):
        np.testing.assert_array_equal(ab.select(name, 4, probs=flat), [0, 1, 2, 3])


@pytest.mark.parametrize("name,score", [
    ("least_confidence", lambda p: p.max(1)),
    ("margin", lambda p: np.diff(np.sort(p, 1)[:, -2:], axis=1)[:, 0]),
    ("entropy", lambda p: (p * np.log(p)).sum(1)),
])
def test_matches_numpy_reference_on_random_pool(name, score):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(6), size=500)
    expected = np.argsort(score(p), kind="stable")[:50]
    np.testing.assert_array_equal(ab.select(name, 50, probs=p), expected)
