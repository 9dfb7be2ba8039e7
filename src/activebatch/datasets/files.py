"""Data sets from the user's own files: a table (CSV, TSV, Parquet), an ``.npz`` archive, or a
folder holding a train and a test file.

The split is documented and seeded: a single file is split into train and test by
:func:`~activebatch.datasets.splits.stratified_split` (``test_fraction`` of the rows, each class
in proportion, drawn with ``seed``); a folder with ``train.*`` and ``test.*`` files and an
``.npz`` with ``X_train``/``y_train``/``X_test``/``y_test`` arrays keep their own split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..utils.validation import check_features, check_labels, check_scalar
from .base import Dataset
from .readers.tables import frame_to_table
from .splits import stratified_split

__all__ = ["FILE_SUFFIXES", "is_data_file", "load_file"]

FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".npz")


def is_data_file(name: Any) -> bool:
    """Whether ``name`` is a path to a data file or a folder that :func:`load_file` reads."""
    if not isinstance(name, (str, Path)):
        return False
    p = Path(name)
    if p.is_dir():
        return any(_split_file(p, part) is not None for part in ("train",))
    return p.suffix.lower() in FILE_SUFFIXES and p.is_file()


def load_file(path: str | Path, *, label_column: str = "label", test_fraction: float = 0.2, seed: int = 0,
              name: str | None = None) -> Dataset:
    """A :class:`Dataset` from a table, an ``.npz`` archive or a train/test folder.

    Parameters
    ----------
    path : str or Path
        ``.csv``, ``.tsv`` or ``.parquet`` (one item per row; the other columns are the features:
        numbers as they are, text and categories as codes), ``.npz`` (arrays ``X`` and ``y``, or
        ``X_train``, ``y_train``, ``X_test``, ``y_test``), or a folder with ``train.<suffix>`` and
        ``test.<suffix>``.
    label_column : str, default "label"
        The tables' class column (its values, sorted, become classes 0..K-1).
    test_fraction : float, default 0.2
        Share of the rows held out for testing when the data come in one piece.
    seed : int, default 0
        Seeds the split.
    name : str, optional
        Recorded in results (default: the file's name).
    """
    p = Path(path)
    test_fraction = check_scalar(test_fraction, "test_fraction", float, min_val=0, max_val=1, include_min=False,
                                 include_max=False)
    seed = check_scalar(seed, "seed", int, min_val=0)
    if p.is_dir():
        train, test = _split_file(p, "train"), _split_file(p, "test")
        if train is None or test is None:
            raise ValueError(f"folder {str(p)!r} must hold train.<suffix> and test.<suffix> files "
                             f"({', '.join(FILE_SUFFIXES)})")
        X_tr, y_tr, classes = _read(train, label_column, None)
        X_te, y_te, _ = _read(test, label_column, classes)
    elif p.suffix.lower() == ".npz" and p.is_file():
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            if {"X_train", "y_train", "X_test", "y_test"} <= keys:
                X_tr, y_tr, X_te, y_te = (np.asarray(z[k]) for k in ("X_train", "y_train", "X_test", "y_test"))
            elif {"X", "y"} <= keys:
                X_tr, y_tr, X_te, y_te = _split(np.asarray(z["X"]), np.asarray(z["y"]), test_fraction, seed)
            else:
                raise ValueError(f"{str(p)!r} must hold arrays X and y, or X_train, y_train, X_test and y_test; "
                                 f"it holds {sorted(keys)}")
        classes = None
    elif p.suffix.lower() in FILE_SUFFIXES and p.is_file():
        X, y, classes = _read(p, label_column, None)
        X_tr, y_tr, X_te, y_te = _split(X, y, test_fraction, seed)
    else:
        raise ValueError(f"{str(p)!r} is not a data file: give a {', '.join(FILE_SUFFIXES)} file or a folder with "
                         "train and test files")
    y_tr, y_te = check_labels(y_tr, "training labels"), check_labels(y_te, "test labels")
    for X, what in ((X_tr, "training features"), (X_te, "test features")):
        check_features(X, what)
    n_classes = int(max(y_tr.max(initial=-1), y_te.max(initial=-1))) + 1
    kind = "image" if X_tr.ndim == 4 else "tabular"
    return Dataset(name or p.name, X_tr.astype(np.float32, copy=False), y_tr, X_te.astype(np.float32, copy=False),
                   y_te, n_classes, kind=kind, source=f"file {str(p.resolve())}",
                   class_names=None if classes is None else tuple(classes),
                   image_shape=tuple(X_tr.shape[1:]) if kind == "image" else None)


def _split_file(folder: Path, part: str) -> Path | None:
    for suffix in FILE_SUFFIXES[:3]:
        f = folder / f"{part}{suffix}"
        if f.is_file():
            return f
    return None


def _read(path: Path, label_column: str, classes: tuple[str, ...] | None):
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from ..utils.extras import require

        require("pyarrow", "parquet", "reading Parquet data sets")
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    if label_column not in frame.columns:
        raise ValueError(f"{str(path)!r} has no label column {label_column!r} (set label_column); columns: "
                         f"{', '.join(map(str, frame.columns))}")
    table = frame_to_table(frame, label_column, where=str(path))
    if classes is None:
        return table.X, table.y, table.class_names
    # the test file's classes, mapped to the training file's
    index = {c: k for k, c in enumerate(classes)}
    unknown = sorted(set(table.class_names) - set(index))
    if unknown:
        raise ValueError(f"{str(path)!r} has classes the training file lacks: {unknown[:5]}")
    remap = np.array([index[c] for c in table.class_names], dtype=np.int64)
    return table.X, remap[table.y], classes


def _split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    y = check_labels(y, "y", rows=int(X.shape[0]))
    train, test = stratified_split(y, test_fraction, seed)
    return X[train], y[train], X[test], y[test]
