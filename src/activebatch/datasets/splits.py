"""Fixed train/test splits and per-channel statistics."""
from __future__ import annotations

import numpy as np

__all__ = ["stratified_split", "channel_stats"]


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into train and test with each class represented in proportion.

    The test set holds ``round(test_fraction * n)`` items, shared among the classes by largest
    remainders of ``test_fraction * count`` (ties to the smaller class label), drawn uniformly
    within each class.

    Parameters
    ----------
    y : array of int, shape (n,)
    test_fraction : float in (0, 1)
    seed : int
        Seeds the permutation within each class.

    Returns
    -------
    train_idx, test_idx : ndarray of int64, sorted
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    share = test_fraction * counts
    k = np.floor(share).astype(np.int64)
    extra = int(round(test_fraction * y.shape[0])) - int(k.sum())
    if extra > 0:
        k[np.argsort(-(share - k), kind="stable")[:extra]] += 1
    rng = np.random.default_rng(seed)
    test = [rng.permutation(np.flatnonzero(y == c))[:kc] for c, kc in zip(classes, k)]
    test_idx = np.sort(np.concatenate(test)).astype(np.int64) if test else np.empty(0, np.int64)
    mask = np.ones(y.shape[0], dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def channel_stats(X: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of images X (N, C, ...), computed in row blocks
    with float64 accumulators (no full-size float copy of a uint8 array).

    Returns
    -------
    mean, std : ndarray of float32, shape (C,)
    """
    n, c = X.shape[0], X.shape[1]
    s = np.zeros(c)
    s2 = np.zeros(c)
    count = 0
    for start in range(0, n, block):
        xb = np.asarray(X[start:start + block], dtype=np.float64).reshape(-1, c, int(np.prod(X.shape[2:])))
        s += xb.sum(axis=(0, 2))
        s2 += np.square(xb).sum(axis=(0, 2))
        count += xb.shape[0] * xb.shape[2]
    mean = s / max(count, 1)
    var = np.maximum(s2 / max(count, 1) - mean ** 2, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)
