"""Tabular files: ARFF (Weka; the format OpenML serves), Parquet (OpenML's newer copies) and the
KEEL repository's ``.dat`` files.

All three become a :class:`Table`: float32 features (nominal attributes as the index of their
value in the declared order, missing values as NaN) and int64 class labels indexing
``class_names``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

__all__ = ["Table", "read_arff", "read_parquet", "read_keel_dat", "frame_to_table"]


@dataclass
class Table:
    """Features and class labels of a tabular data set.

    Attributes
    ----------
    X : ndarray of float32, shape (n, d)
    y : ndarray of int64, shape (n,)
        Index into ``class_names``.
    class_names : tuple of str
    feature_names : tuple of str
    """

    X: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]


def frame_to_table(frame: pd.DataFrame, target: Optional[str] = None, *, where: str = "table") -> Table:
    """Split a DataFrame into features and a class column and encode both.

    Categorical columns keep their declared category order; text columns are ordered by sorted
    value; numeric class columns by sorted value. Rows whose class is missing are dropped.
    """
    if frame.shape[1] < 2:
        raise ValueError(f"{where}: needs at least one feature and a class column")
    target = frame.columns[-1] if target is None else target
    if target not in frame.columns:
        raise ValueError(f"{where}: no column {target!r}; columns are {', '.join(map(str, frame.columns))}")
    cls = frame[target]
    keep = ~cls.isna().to_numpy()
    frame, cls = frame.loc[keep], cls.loc[keep]
    if isinstance(cls.dtype, pd.CategoricalDtype):
        cats = cls.cat.categories
        y = cls.cat.codes.to_numpy().astype(np.int64)
        names = tuple(str(c) for c in cats)
    else:
        uniq, y = np.unique(cls.to_numpy(), return_inverse=True)
        names = tuple(str(u) for u in uniq)
    feats = frame.drop(columns=[target])
    cols = []
    for name in feats.columns:
        col = feats[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(np.float32)
            codes[codes < 0] = np.nan
            cols.append(codes)
        elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            cols.append(col.to_numpy(dtype=np.float32, na_value=np.nan))
        else:
            values = col.astype("string")
            uniq = np.unique(values.dropna().to_numpy(dtype=str))
            codes = pd.Categorical(values, categories=uniq).codes.astype(np.float32)
            codes[codes < 0] = np.nan
            cols.append(codes)
    X = np.stack(cols, axis=1) if cols else np.empty((len(frame), 0), np.float32)
    return Table(X.astype(np.float32, copy=False), y.astype(np.int64), names,
                 tuple(str(c) for c in feats.columns))


def read_arff(path: "str | Path", target: Optional[str] = None) -> Table:
    """Read a dense ARFF file (numeric and nominal attributes).

    Parameters
    ----------
    path : str or Path
    target : str, optional
        The class attribute (default: the last one, as Weka assumes).

    Returns
    -------
    Table
    """
    from scipy.io import arff

    path = Path(path)
    try:
        data, meta = arff.loadarff(str(path))
    except Exception as exc:  # scipy raises its own ParseArffError and ValueErrors
        raise ValueError(f"{path}: cannot read ARFF ({exc})") from exc
    columns = {}
    for name in meta.names():
        kind, values = meta[name]
        col = data[name]
        if kind == "nominal":
            text = np.char.decode(col.astype(bytes), "utf-8") if col.dtype.kind == "S" else col.astype(str)
            text = np.where(text == "?", None, text)
            columns[name] = pd.Categorical(text, categories=list(values))
        else:
            columns[name] = col.astype(np.float64)
    return frame_to_table(pd.DataFrame(columns), target, where=str(path))


def read_parquet(path: "str | Path", target: Optional[str] = None) -> Table:
    """Read a Parquet table (as OpenML serves them); the class is ``target`` or the last column."""
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from exc
    except Exception as exc:
        raise ValueError(f"{path}: cannot read Parquet ({exc})") from exc
    return frame_to_table(frame, target, where=str(path))


def read_keel_dat(path: "str | Path", class_names: Optional[tuple[str, ...]] = None) -> Table:
    """Read a KEEL ``.dat`` file: an optional ``@``-header, then comma-separated rows, class last.

    Parameters
    ----------
    path : str or Path
    class_names : tuple of str, optional
        Class order; default: the sorted distinct class values.
    """
    path = Path(path)
    names: list[str] = []
    with open(path, encoding="utf-8") as fh:
        lines = [ln.strip() for ln in fh]
    for ln in lines:
        if ln.lower().startswith("@attribute"):
            names.append(ln.split()[1])
    rows = [ln for ln in lines if ln and not ln.startswith("@") and not ln.startswith("%")]
    if not rows:
        raise ValueError(f"{path}: no data rows")
    frame = pd.read_csv(pd.io.common.StringIO("\n".join(rows)), header=None, skipinitialspace=True,
                        na_values=["?", "<null>"])
    if names and len(names) == frame.shape[1]:
        frame.columns = names
    else:
        frame.columns = [f"x{i}" for i in range(frame.shape[1] - 1)] + ["class"]
    cls = frame.columns[-1]
    order = class_names if class_names is not None else tuple(sorted(frame[cls].astype(str).unique()))
    frame[cls] = pd.Categorical(frame[cls].astype(str), categories=list(order))
    if frame[cls].isna().any():
        raise ValueError(f"{path}: class values outside {order}")
    return frame_to_table(frame, cls, where=str(path))
