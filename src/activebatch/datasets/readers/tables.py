"""Tabular files: ARFF (Weka; the format OpenML serves), Parquet (OpenML's newer copies) and the
KEEL repository's ``.dat`` files.

All three become a :class:`Table`: float32 features (nominal attributes as the index of their
value in the declared order, missing values as NaN) and int64 class labels indexing
``class_names``.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...utils.extras import require

if TYPE_CHECKING:  # pandas is imported when a table is read, not with the package
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


def frame_to_table(frame: pd.DataFrame, target: str | None = None, *, where: str = "table") -> Table:
    """Split a DataFrame into features and a class column and encode both.

    Categorical columns keep their declared category order; text columns are ordered by sorted
    value; numeric class columns by sorted value. Rows whose class is missing are dropped.
    """
    import pandas as pd

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


_ATTR = re.compile(r"""^@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s+(.+?)\s*$""", re.IGNORECASE)


def _unquote(text: str) -> str:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1].replace("\\" + t[0], t[0])
    return t


def _parse_attributes(header: list[str], where: str) -> list[tuple[str, list[str] | None]]:
    """``[(name, nominal values or None for numeric)]`` from the ARFF header lines."""
    attrs: list[tuple[str, list[str] | None]] = []
    for line in header:
        if not line.lower().startswith("@attribute"):
            continue
        m = _ATTR.match(line)
        if m is None:
            raise ValueError(f"{where}: cannot parse ARFF attribute line {line!r}")
        name, kind = _unquote(m.group(1)), m.group(2).strip()
        if kind.startswith("{"):
            if not kind.endswith("}"):
                raise ValueError(f"{where}: unterminated nominal value list in {line!r}")
            values = next(csv.reader([kind[1:-1]], quotechar="'", skipinitialspace=True, escapechar="\\"), [])
            attrs.append((name, [_unquote(v) for v in values]))
        elif kind.split()[0].lower() in ("numeric", "real", "integer"):
            attrs.append((name, None))
        else:
            raise ValueError(f"{where}: attribute {name!r} has type {kind.split()[0]!r}; only numeric and "
                             f"nominal attributes are supported")
    return attrs


def read_arff(path: str | Path, target: str | None = None) -> Table:
    """Read a dense ARFF file (numeric and nominal attributes), gzipped or not.

    The format is Weka's (Witten & Frank, *Data Mining*, appendix "ARFF"): ``@relation``, one
    ``@attribute name type`` per column (``numeric``/``real``/``integer`` or a ``{v1, v2, ...}``
    list of nominal values, names and values optionally quoted), then ``@data`` with one
    comma-separated row per line, ``?`` for a missing value and ``%`` starting a comment.

    Parameters
    ----------
    path : str or Path
    target : str, optional
        The class attribute (default: the last one, as Weka assumes).

    Returns
    -------
    Table
    """
    import pandas as pd

    path = Path(path)
    with open(path, "rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().lower().startswith("@data")), None)
    if start is None:
        raise ValueError(f"{path}: not an ARFF file (no @data section)")
    attrs = _parse_attributes([ln.strip() for ln in lines[:start]], str(path))
    if not attrs:
        raise ValueError(f"{path}: no @attribute lines")
    body = [ln for ln in lines[start + 1:] if ln.strip() and not ln.lstrip().startswith("%")]
    if body and body[0].lstrip().startswith("{"):
        raise ValueError(f"{path}: sparse ARFF is not supported")
    names = [a for a, _ in attrs]
    raw = pd.read_csv(io.StringIO("\n".join(body)), header=None, names=names, quotechar="'", escapechar="\\",
                      skipinitialspace=True, dtype=str, keep_default_na=False)
    if raw.shape[1] != len(names):
        raise ValueError(f"{path}: rows have {raw.shape[1]} values, the header declares {len(names)}")
    columns = {}
    for name, values in attrs:
        col = raw[name].str.strip().map(lambda v: _unquote(v) if isinstance(v, str) else v)
        col = col.where(col != "?", None)
        if values is None:
            columns[name] = pd.to_numeric(col, errors="raise")
        else:
            cat = pd.Categorical(col, categories=values)
            unknown = col.notna().to_numpy() & (cat.codes < 0)
            if unknown.any():
                raise ValueError(f"{path}: attribute {name!r} has value {col[unknown].iloc[0]!r} outside its "
                                 f"declared values")
            columns[name] = cat
    return frame_to_table(pd.DataFrame(columns), target, where=str(path))


def read_parquet(path: str | Path, target: str | None = None) -> Table:
    """Read a Parquet table (as OpenML serves them); the class is ``target`` or the last column."""
    import pandas as pd

    require("pyarrow", "parquet", "reading Parquet files")
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read Parquet ({exc})") from exc
    return frame_to_table(frame, target, where=str(path))


def read_keel_dat(path: str | Path, class_names: tuple[str, ...] | None = None) -> Table:
    """Read a KEEL ``.dat`` file: an optional ``@``-header, then comma-separated rows, class last.

    Parameters
    ----------
    path : str or Path
    class_names : tuple of str, optional
        Class order; default: the sorted distinct class values.
    """
    import pandas as pd

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
    frame = pd.read_csv(io.StringIO("\n".join(rows)), header=None, skipinitialspace=True,
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
