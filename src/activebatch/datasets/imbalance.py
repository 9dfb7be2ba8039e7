"""Long-tailed pools: a class-imbalance transform applicable to any data set.

Active learning papers mostly benchmark on balanced pools; real pools are often long-tailed. This
module turns any :class:`~activebatch.datasets.Dataset` into a long-tailed one with the exponential
profile of Cui, Jia, Lin, Song & Belongie ("Class-Balanced Loss Based on Effective Number of
Samples", CVPR 2019), the profile of the long-tailed CIFAR benchmarks: class c (c = 0..K-1) keeps

    n_c = floor(n_max * ratio ** (-c / (K - 1)))

training items, so class 0 keeps n_max and class K-1 keeps n_max / ratio (the imbalance ratio is
n_max / n_min). n_max is the size of the smallest class of the training set, so every class can
supply its count. The test set is balanced (every class cut to the size of its smallest class), so
accuracy on it weighs every class equally.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..utils.validation import check_scalar
from .base import Dataset

__all__ = ["long_tail_counts", "long_tailed", "balanced_rows", "format_ratio", "parse_name"]


def long_tail_counts(n_max: int, n_classes: int, ratio: float) -> np.ndarray:
    """Training items kept per class: ``floor(n_max * ratio ** (-c / (K - 1)))`` for c = 0..K-1.

    Parameters
    ----------
    n_max : int
        Items of the largest (first) class, >= 1.
    n_classes : int
        K >= 2.
    ratio : float
        Imbalance ratio n_max / n_min, >= 1 (1 keeps every class at n_max).

    Returns
    -------
    ndarray of int64, shape (K,)
        Non-increasing counts, the first n_max; the last floor(n_max / ratio) but at least 1.
    """
    n_max = check_scalar(n_max, "n_max", int, min_val=1)
    n_classes = check_scalar(n_classes, "n_classes", int, min_val=2)
    ratio = check_scalar(ratio, "ratio", float, min_val=1.0)
    c = np.arange(n_classes, dtype=np.float64)
    # the exponent is exact at both ends (0 and -1), so the first class keeps n_max and the last
    # n_max / ratio; a tiny slack keeps floor() from losing an item to rounding (e.g. 500 * 10**-1)
    counts = np.floor(n_max * ratio ** (-c / (n_classes - 1)) * (1 + 1e-12))
    return np.maximum(counts, 1).astype(np.int64)


def balanced_rows(y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices keeping ``min_c count(c)`` rows of every class, drawn uniformly."""
    counts = np.bincount(y, minlength=n_classes)
    return _take_per_class(y, np.full(n_classes, counts.min()), rng)


def _take_per_class(y: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # a random key per row, then each class's smallest keys: a uniform draw without replacement
    # per class, vectorised (one sort instead of a loop over rows)
    key = rng.random(y.size)
    order = np.lexsort((key, y))
    y_sorted = y[order]
    first = np.searchsorted(y_sorted, np.arange(counts.size))
    rank = np.arange(y.size) - first[y_sorted]
    return np.sort(order[rank < counts[y_sorted]])


def long_tailed(data: Dataset, ratio: float, *, seed: int = 0, balance_test: bool = True) -> Dataset:
    """``data`` with a long-tailed training set of imbalance ratio ``ratio`` (see the module docstring).

    Parameters
    ----------
    data : Dataset
    ratio : float
        n_max / n_min >= 1; class 0 is the head, class K-1 the tail.
    seed : int, default 0
        Seeds which items of each class are kept. Fixed per setting (not per run), so every
        strategy and seed of a grid sees the same pool.
    balance_test : bool, default True
        Also cut the test set to the same count for every class.

    Returns
    -------
    Dataset
        Named ``"<name>@imbalance=<ratio>"``; its ``description`` gives the class counts.
    """
    ratio = check_scalar(ratio, "ratio", float, min_val=1.0)
    check_scalar(seed, "seed", int, min_val=0)
    K = int(data.n_classes)
    y = np.asarray(data.y_train, dtype=np.int64)
    available = np.bincount(y, minlength=K)
    if available.min() == 0:
        missing = np.flatnonzero(available == 0).tolist()
        raise ValueError(f"data set {data.name!r} has no training items of class(es) {missing}: a long-tailed "
                         "profile needs every class")
    counts = long_tail_counts(int(available.min()), K, ratio)
    rng = np.random.default_rng([int(seed), 0x1B])
    rows = _take_per_class(y, counts, rng)
    X_test, y_test = data.X_test, data.y_test
    if balance_test:
        test_rows = balanced_rows(np.asarray(y_test, dtype=np.int64), K, rng)
        X_test, y_test = X_test[test_rows], y_test[test_rows]
    name = f"{data.name}@imbalance={format_ratio(ratio)}"
    desc = (f"{data.description.rstrip('. ')}. Long-tailed (Cui et al., 2019) with imbalance ratio "
            f"{format_ratio(ratio)}: "
            f"{counts.sum()} training items, {counts[0]} in class 0 down to {counts[-1]} in class {K - 1}"
            + ("; balanced test set." if balance_test else ".")).strip()
    return replace(data, name=name, X_train=data.X_train[rows], y_train=y[rows], X_test=X_test, y_test=y_test,
                   description=desc)


def format_ratio(ratio: float) -> str:
    """``10`` for 10.0, ``2.5`` for 2.5: the ratio as it appears in data-set names."""
    return str(int(ratio)) if float(ratio).is_integer() else repr(float(ratio))


def parse_name(name: str) -> tuple[str, float | None]:
    """``("letter", 100.0)`` for ``"letter@imbalance=100"``; ``(name, None)`` for a plain name."""
    base, sep, rest = name.rpartition("@imbalance=")
    if not sep:
        return name, None
    try:
        ratio = float(rest)
    except ValueError:
        raise ValueError(f"data set {name!r}: the imbalance ratio after '@imbalance=' must be a number, "
                         f"got {rest!r}") from None
    if not math.isfinite(ratio) or ratio < 1:
        raise ValueError(f"data set {name!r}: the imbalance ratio must be >= 1, got {rest!r}")
    return base, ratio
