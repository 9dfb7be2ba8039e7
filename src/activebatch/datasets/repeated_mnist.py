"""Repeated MNIST: every training digit three times, each copy with its own Gaussian noise.

The data set of Kirsch, van Amersfoort & Gal (BatchBALD, NeurIPS 2019, section 5.1), built to
show what independent top-n acquisition does with redundant pools: BALD scores the copies of an
informative digit almost equally and takes them together, BatchBALD takes one. The noise
(isotropic, standard deviation 0.1 on images normalised to unit pixel standard deviation, as in
the authors' code) keeps the copies from being exact duplicates.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils.validation import check_scalar
from .download import MissingFilesError
from .registry import Dataset, info, load, register

__all__ = ["repeat_with_noise"]


def repeat_with_noise(X: np.ndarray, y: np.ndarray, *, repetitions: int = 3, noise_std: float = 0.1,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack ``repetitions`` copies of (X, y) and add N(0, (noise_std * sigma)^2) to every value.

    Parameters
    ----------
    X : array of shape (n, ...)
        Base images (any numeric dtype; the result is float32).
    y : array of shape (n,)
    repetitions : int, default 3
    noise_std : float, default 0.1
        Noise standard deviation in units of the pixel standard deviation sigma of ``X`` (the
        paper's 0.1 on normalised images; for MNIST in [0, 1], sigma = 0.3081).
    seed : int, default 0

    Returns
    -------
    X_rep : float32 array of shape (repetitions * n, ...)
        Row i is a noisy copy of base row ``i % n``.
    y_rep : int64 array of shape (repetitions * n,)
    base : int64 array of shape (repetitions * n,)
        The base row of every row (``i % n``).
    """
    repetitions = check_scalar(repetitions, "repetitions", int, min_val=1)
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    X = np.asarray(X, dtype=np.float32)
    n = X.shape[0]
    sigma = float(X.std(dtype=np.float64)) if X.size else 0.0
    rng = np.random.default_rng(seed)
    X_rep = np.tile(X, (repetitions,) + (1,) * (X.ndim - 1))
    if noise_std > 0:
        for start in range(0, X_rep.shape[0], 8192):   # float32 noise, block by block
            block = X_rep[start:start + 8192]
            block += rng.standard_normal(block.shape, dtype=np.float32) * np.float32(noise_std * sigma)
    base = np.tile(np.arange(n, dtype=np.int64), repetitions)
    return X_rep, np.asarray(y, dtype=np.int64)[base], base


def _base_mnist(root: Path | None, download: bool, base: str | None) -> Dataset:
    """Full MNIST when its files are present (or may be downloaded), else the bundled mnist-5k."""
    if base not in (None, "mnist", "mnist-5k"):
        raise ValueError(f"base must be 'mnist', 'mnist-5k' or None (automatic), got {base!r}")
    if base == "mnist-5k":
        return load("mnist-5k")
    if base == "mnist" or download or info("mnist", root).offline:
        try:
            return load("mnist", root=root, download=download)
        except MissingFilesError:
            if base == "mnist":
                raise
    return load("mnist-5k")


def _as_unit_float(X: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1], flattened to (n, H W): uint8 files are scaled by 1/255."""
    X = np.asarray(X)
    out = X.astype(np.float32) / np.float32(255.0) if X.dtype == np.uint8 else X.astype(np.float32, copy=False)
    return out.reshape(X.shape[0], -1)


@register("repeated-mnist", source="MNIST (IDX files) or mnist-5k, repeated with noise", kind="image",
          n_classes=10)
def _repeated_mnist(root: Path | None = None, download: bool = False, *, repetitions: int = 3,
                    noise_std: float = 0.1, seed: int = 0, base: str | None = None) -> Dataset:
    """MNIST training digits repeated 3 times with Gaussian noise (Kirsch et al., BatchBALD, 2019).

    Built from full MNIST when its files are in ``root`` (or ``download=True``), else from the
    bundled mnist-5k (4,000 training digits -> 12,000). Images are float32 in [0, 1], flattened
    to 784 values; the test set is the base test set without noise. Row i of the training set is
    a copy of base digit ``i % (n_train // repetitions)``. Options: ``repetitions`` (3),
    ``noise_std`` (0.1, in units of the pixel standard deviation), ``seed`` (0) and ``base``
    ("mnist", "mnist-5k" or None for automatic).
    """
    src = _base_mnist(root, download, base)
    X_tr, y_tr, _ = repeat_with_noise(_as_unit_float(src.X_train), src.y_train, repetitions=repetitions,
                                      noise_std=noise_std, seed=seed)
    X_te = _as_unit_float(src.X_test)
    mean = np.array([X_tr.mean(dtype=np.float64)], dtype=np.float32)
    std = np.array([X_tr.std(dtype=np.float64)], dtype=np.float32)
    return Dataset("repeated-mnist", X_tr, y_tr, X_te, np.asarray(src.y_test, dtype=np.int64), n_classes=10,
                   kind="image", image_shape=(1, 28, 28), source=f"{src.name}, repeated {repetitions} times",
                   class_names=tuple(str(i) for i in range(10)), mean=mean, std=std,
                   description=f"{src.name} training digits x{repetitions} with N(0, ({noise_std} sigma)^2) "
                               f"noise, 28x28 in [0, 1]")
