"""The SVHN cropped-digit files ``train_32x32.mat`` / ``test_32x32.mat`` (Netzer et al., 2011).

Each is a MATLAB (v5) file with ``X``, a (32, 32, 3, n) uint8 array (height, width, channel,
image), and ``y``, an (n, 1) array of labels 1..10, where 10 stands for the digit 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_svhn"]


def read_svhn(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one SVHN ``*_32x32.mat`` file.

    Returns
    -------
    X : ndarray of uint8, shape (n, 3, 32, 32)
    y : ndarray of int64, shape (n,)
        Digits 0..9 (the file's label 10 becomes 0).
    """
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(path)
    except Exception as exc:
        raise ValueError(f"{path}: not a MATLAB file ({exc})") from exc
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path}: an SVHN file holds variables 'X' and 'y'")
    X, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[2] != 3 or X.shape[3] != y.shape[0]:
        raise ValueError(f"{path}: expected X of shape (H, W, 3, n) and n labels, got {X.shape}, {y.shape}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise ValueError(f"{path}: SVHN labels must lie in 1..10")
    y[y == 10] = 0
    return np.ascontiguousarray(X.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False), y
