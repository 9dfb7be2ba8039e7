"""Reading arrays, id lists and tables from the files people bring.

Every reader raises :class:`InputFileError` (a ``ValueError``) whose message names the file and
what is wrong with it, so the command line can print it as is.

Supported files
---------------
- ``.npy``: one array.
- ``.npz``: several named arrays; a field is found under its own name (``probs``, ``embeddings``,
  ...), or the archive's only array is used.
- ``.csv``, ``.parquet``: a feature table, one row per item; an id column (``id`` by default) is
  set aside as the item ids and every other column must be numeric.
- id lists: ``.csv`` / ``.parquet`` (the ``id`` column, or the only column), ``.txt`` (one id per
  line), ``.npy`` (a 1-D array).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.extras import require

__all__ = ["InputFileError", "TABLE_SUFFIXES", "ARRAY_SUFFIXES", "read_array", "read_ids", "read_table",
           "check_unique_ids", "write_table"]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
ARRAY_SUFFIXES = (".npy", ".npz") + TABLE_SUFFIXES


class InputFileError(ValueError):
    """A file given on the command line (or to the workspace API) cannot be used."""


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{what} file {str(p)!r} does not exist")
    if p.is_dir():
        raise InputFileError(f"{what} {str(p)!r} is a folder, expected a file")
    return p


def read_table(path: str | Path, *, what: str = "table", id_column: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table; the id column (when named) is read as text.

    Parameters
    ----------
    path : str or Path
        ``.csv``, ``.parquet`` or ``.pq`` file.
    what : str
        How the file is named in error messages.
    id_column : str, optional
        Column read as strings (so ids such as ``007`` keep their leading zeros).

    Returns
    -------
    pandas.DataFrame
    """
    p = _existing(path, what)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            dtype = {id_column: str} if id_column else None
            frame = pd.read_csv(p, dtype=dtype, keep_default_na=True)
        elif suffix in (".parquet", ".pq"):
            require("pyarrow", "parquet", "reading Parquet tables")
            frame = pd.read_parquet(p)
        else:
            raise InputFileError(f"{what} file {str(p)!r}: expected .csv or .parquet, got {suffix or 'no suffix'!r}")
    except InputFileError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputFileError(f"{what} file {str(p)!r} is not a readable {suffix[1:]} table: {exc}") from exc
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise InputFileError(f"{what} file {str(p)!r} has repeated column names")
    return frame


def _ids_from_series(values: pd.Series | np.ndarray | Sequence, where: str) -> np.ndarray:
    arr = pd.Series(values)
    if arr.isna().any():
        row = int(np.flatnonzero(arr.isna().to_numpy())[0])
        raise InputFileError(f"{where}: id missing in row {row}")
    out = np.array([_id_text(v) for v in arr], dtype=object)
    empty = [i for i, v in enumerate(out) if v == ""]
    if empty:
        raise InputFileError(f"{where}: empty id in row {empty[0]}")
    return out


def _id_text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, (float, np.floating)):
        if np.isfinite(value) and float(value).is_integer():
            return str(int(value))
    return str(value).strip()


def check_unique_ids(ids: np.ndarray, where: str) -> None:
    """Raise :class:`InputFileError` naming the first repeated ids."""
    uniq, counts = np.unique(np.asarray(ids, dtype=str), return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        shown = ", ".join(repr(str(d)) for d in dup[:5])
        more = f" and {dup.size - 5} more" if dup.size > 5 else ""
        raise InputFileError(f"{where}: duplicate ids {shown}{more}; every item needs its own id")


def read_ids(path: str | Path, *, column: str | None = None, what: str = "ids") -> np.ndarray:
    """Read a list of item ids (strings), checking that they are unique and non-empty.

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.parquet`` (column ``column``, else ``id``, else the only column), ``.txt`` (one
        id per line) or ``.npy`` (a 1-D array).
    column : str, optional
        Column holding the ids in a table.
    what : str
        How the file is named in error messages.

    Returns
    -------
    ndarray of str (object dtype), shape (N,)
    """
    p = _existing(path, what)
    suffix = p.suffix.lower()
    where = f"{what} file {str(p)!r}"
    if suffix == ".txt":
        lines = p.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        ids = _ids_from_series(lines, where)
    elif suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise InputFileError(f"{where} is not a readable .npy array: {exc}") from exc
        if arr.ndim != 1:
            raise InputFileError(f"{where}: ids must be a 1-D array, got shape {arr.shape}")
        ids = _ids_from_series(arr.tolist(), where)
    elif suffix in TABLE_SUFFIXES:
        frame = read_table(p, what=what, id_column=column or "id")
        if column is not None:
            if column not in frame.columns:
                raise InputFileError(f"{where} has no column {column!r}; columns: {', '.join(frame.columns)}")
            col = column
        elif "id" in frame.columns:
            col = "id"
        elif frame.shape[1] == 1:
            col = frame.columns[0]
        else:
            raise InputFileError(f"{where} has several columns and none is called 'id'; "
                                 f"columns: {', '.join(frame.columns)}")
        ids = _ids_from_series(frame[col], where)
    else:
        raise InputFileError(f"{where}: expected .csv, .parquet, .txt or .npy, got {suffix or 'no suffix'!r}")
    check_unique_ids(ids, where)
    return ids


def read_array(path: str | Path, name: str, *, key: str | None = None, ndim: int | None = None,
               id_column: str = "id", with_ids: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one numeric array (model outputs or features) and the ids stored with it, if any.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.npz``, ``.csv`` or ``.parquet``.
    name : str
        The field it is read for (``probs``, ``embeddings``, ...); the key looked up in an
        ``.npz`` archive, and how the file is named in error messages.
    key : str, optional
        Array name inside an ``.npz`` archive (default: ``name``, or the only array).
    ndim : int, optional
        Required number of dimensions.
    id_column : str, default "id"
        Column of a table holding item ids (set aside, not read as a feature).
    with_ids : bool, default True
        Read the ids of an ``.npz`` archive with the array (False for arrays whose rows are not
        the items the ids name, such as the labelled items' embeddings).

    Returns
    -------
    array : ndarray
        The numbers, as stored (``.npy`` is memory-mapped read-only).
    ids : ndarray of str or None
        Ids found with the array: an ``ids`` array in an ``.npz``, or the id column of a table.
    """
    p = _existing(path, f"--{name.replace('_', '-')}")
    suffix = p.suffix.lower()
    where = f"{name} file {str(p)!r}"
    ids: np.ndarray | None = None
    try:
        if suffix == ".npy":
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as archive:
                keys = list(archive.keys())
                arrays = [k for k in keys if k != "ids"]
                want = key or name
                if want in keys:
                    arr = archive[want]
                elif key is None and len(arrays) == 1:
                    arr = archive[arrays[0]]
                else:
                    raise InputFileError(f"{where} holds arrays {keys}; none is named {want!r}")
                if "ids" in keys and with_ids:
                    ids = _ids_from_series(archive["ids"].tolist(), where + " (array 'ids')")
        elif suffix in TABLE_SUFFIXES:
            frame = read_table(p, what=name, id_column=id_column)
            if id_column in frame.columns:
                ids = _ids_from_series(frame[id_column], where)
                frame = frame.drop(columns=[id_column])
            bad = [c for c in frame.columns if not (pd.api.types.is_numeric_dtype(frame[c])
                                                     or pd.api.types.is_bool_dtype(frame[c]))]
            if bad:
                raise InputFileError(f"{where}: column(s) {', '.join(map(repr, bad[:5]))} are not numeric "
                                     f"(only the id column {id_column!r} may hold text)")
            if frame.shape[1] == 0:
                raise InputFileError(f"{where} has no numeric columns")
            arr = frame.to_numpy(dtype=np.float64)
        else:
            raise InputFileError(f"{where}: expected .npy, .npz, .csv or .parquet, got {suffix or 'no suffix'!r}")
    except InputFileError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(f"{where} cannot be read: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputFileError(f"{where} must hold numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise InputFileError(f"{where} must have {ndim} dimensions, got shape {arr.shape}")
    if ids is not None:
        rows = arr.shape[1] if (ndim == 3 and arr.ndim == 3) else arr.shape[0]
        if len(ids) != rows:
            raise InputFileError(f"{where}: {len(ids)} ids for {rows} rows")
        check_unique_ids(ids, where)
    return arr, ids


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or Parquet (chosen by the suffix), atomically.

    The table is written to a temporary file beside ``path`` and renamed into place, so an
    interrupted write never leaves a truncated file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputFileError(f"output {str(p)!r}: expected a .csv or .parquet file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            require("pyarrow", "parquet", "writing Parquet tables")
            frame.to_parquet(tmp, index=False)
        tmp.replace(p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p
