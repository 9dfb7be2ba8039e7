"""Random poker hands in the layout of the UCI Poker Hand data set (OpenML #155).

Each row is a hand of 5 distinct cards drawn uniformly from a 52-card deck, as 10 features
S1, C1, ..., S5, C5: the suit (1..4: hearts, spades, diamonds, clubs) and the rank (1..13:
ace = 1, 2..10, jack = 11, queen = 12, king = 13) of each card. The class is the standard poker
hand ranking, exactly as that data set defines it:

====  ===============  =========================================  ===============
 y    name             rule                                       hands of 2,598,960
====  ===============  =========================================  ===============
 0    nothing          none of the below                          1,302,540
 1    one pair         one pair of equal ranks                    1,098,240
 2    two pairs        two pairs of equal ranks                   123,552
 3    three of a kind  three equal ranks                          54,912
 4    straight         five consecutive ranks, not all one suit   10,200
 5    flush            five cards of one suit, not a straight     5,108
 6    full house       a pair and three of a kind                 3,744
 7    four of a kind   four equal ranks                           624
 8    straight flush   straight and flush, not royal              36
 9    royal flush      {ace, king, queen, jack, ten} of one suit  4
====  ===============  =========================================  ===============

A straight may run ace-low (A-2-3-4-5) or ace-high (10-J-Q-K-A); it does not wrap around
(Q-K-A-2-3 is not a straight).

References
----------
R. Cattral and F. Oppacher (2007), UCI Machine Learning Repository: Poker Hand.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CLASS_NAMES", "HAND_COUNTS", "hand_class", "generate"]

CLASS_NAMES: tuple[str, ...] = ("nothing", "one pair", "two pairs", "three of a kind", "straight", "flush",
                                "full house", "four of a kind", "straight flush", "royal flush")

#: Number of the C(52, 5) = 2,598,960 hands in each class (exact probabilities times C(52, 5)).
HAND_COUNTS: tuple[int, ...] = (1302540, 1098240, 123552, 54912, 10200, 5108, 3744, 624, 36, 4)

_ROYAL = np.zeros(14, dtype=bool)
_ROYAL[[1, 10, 11, 12, 13]] = True


def hand_class(hands: np.ndarray) -> np.ndarray:
    """Poker hand class of each row.

    Parameters
    ----------
    hands : array of int, shape (n, 10)
        S1, C1, ..., S5, C5 with suits in 1..4 and ranks in 1..13 (ace = 1); the five cards of a
        row must be distinct.

    Returns
    -------
    ndarray of int64, shape (n,)
        Class 0..9 (see :data:`CLASS_NAMES`).
    """
    h = np.asarray(hands)
    if h.ndim != 2 or h.shape[1] != 10:
        raise ValueError(f"hands must have shape (n, 10), got {h.shape}")
    if not np.issubdtype(h.dtype, np.integer):
        if not np.all(np.mod(h, 1) == 0):
            raise ValueError("hands must hold integer suits and ranks")
        h = h.astype(np.int64)
    suits, ranks = h[:, 0::2].astype(np.int64), h[:, 1::2].astype(np.int64)
    if suits.size and (suits.min() < 1 or suits.max() > 4 or ranks.min() < 1 or ranks.max() > 13):
        raise ValueError("suits must lie in 1..4 and ranks in 1..13")
    cards = (suits - 1) * 13 + ranks - 1
    if np.any(np.diff(np.sort(cards, axis=1), axis=1) == 0):
        raise ValueError("every hand must hold 5 distinct cards")
    n = h.shape[0]
    rows = np.arange(n)
    counts = np.zeros((n, 14), dtype=np.int8)                  # counts[i, r] = cards of rank r
    for j in range(5):
        counts[rows, ranks[:, j]] += 1
    most = counts.max(axis=1)
    pairs = (counts == 2).sum(axis=1)
    flush = np.all(suits == suits[:, :1], axis=1)
    royal_ranks = np.all((counts > 0) == _ROYAL, axis=1)
    straight = (most == 1) & ((ranks.max(1) - ranks.min(1) == 4) | royal_ranks)
    y = np.zeros(n, dtype=np.int64)
    y[pairs == 1] = 1
    y[pairs == 2] = 2
    y[most == 3] = 3
    y[straight & ~flush] = 4
    y[flush & ~straight] = 5
    y[(most == 3) & (pairs == 1)] = 6
    y[most == 4] = 7
    y[straight & flush] = 8
    y[straight & flush & royal_ranks] = 9
    return y


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` uniformly random 5-card hands and their classes.

    Parameters
    ----------
    n : int
        Number of hands.
    seed : int
        Seed of the ``numpy.random.Generator`` that deals the cards.

    Returns
    -------
    X : ndarray of int8, shape (n, 10)
        S1, C1, ..., S5, C5 (suit 1..4, rank 1..13), cards in the order dealt.
    y : ndarray of int64, shape (n,)
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    # 5 distinct cards per hand: the first 5 of a uniform random permutation of the deck, dealt
    # by a partial Fisher-Yates shuffle vectorised over hands.
    deck = np.tile(np.arange(52, dtype=np.int64), (n, 1))
    rows = np.arange(n)
    for i in range(5):
        j = rng.integers(i, 52, size=n)
        deck[rows, i], deck[rows, j] = deck[rows, j], deck[rows, i].copy()
    cards = deck[:, :5]
    X = np.empty((n, 10), dtype=np.int8)
    X[:, 0::2] = cards // 13 + 1
    X[:, 1::2] = cards % 13 + 1
    return X, hand_class(X)
