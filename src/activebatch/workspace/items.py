"""Turning what people have into workspace items: ids, features, and what an annotator sees.

Three kinds of item sources:

- ``tabular``: rows of a CSV or Parquet table. Numeric and boolean columns are features (missing
  values become the column mean); text columns with few distinct values are one-hot encoded;
  the row itself is what the annotator sees.
- ``image``: the image files in a folder (and its sub-folders). Features are the pixels, resized
  to a common size and scaled to [0, 1]; the annotator sees the image.
- ``features``: rows of a precomputed feature matrix (``.npy`` with an id list, or ``.npz`` with an
  ``ids`` array), e.g. embeddings of a pretrained network; the annotator sees only the id.
- ``text``: rows of a CSV, Parquet or JSON-lines table with a text column (``text_column``);
  features from TF-IDF + SVD or a local sentence-transformers model; the annotator reads the
  text (see :mod:`.text`).

Any of them can take its model features from a precomputed matrix instead (``features=``),
matched to the items by id, so a table or an image folder is shown to annotators while the
model trains on pretrained embeddings.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import TABLE_SUFFIXES, InputFileError, check_unique_ids, read_array, read_ids, read_table

__all__ = ["ItemSet", "IMAGE_SUFFIXES", "read_items", "read_table_items", "read_text_items", "read_image_folder",
           "read_feature_items", "attach_features"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Text columns with more distinct values than this are refused (ids, free text) rather than
#: one-hot encoded into a huge matrix.
MAX_CATEGORIES = 50


@dataclass
class ItemSet:
    """Items read from a source, ready to be stored.

    Attributes
    ----------
    kind : {"tabular", "image", "features", "text"}
    ids : ndarray of str, shape (N,)
        Unique item ids.
    features : ndarray of float32, shape (N, d)
    sources : list of str or None
        Image file paths (absolute) for image items.
    displays : list of dict or None
        The table row shown to annotators, for tabular and text items.
    feature_names : list of str
    info : dict
        How the items were read (recorded in the workspace).
    labels : dict of str to str
        Labels found with the items (a table's label column), by id.
    """

    kind: str
    ids: np.ndarray
    features: np.ndarray
    sources: list = field(default_factory=list)
    displays: list = field(default_factory=list)
    feature_names: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def read_items(path: str | Path, *, ids: str | Path | None = None, id_column: str | None = None,
               label_column: str | None = None, ignore_columns: Sequence[str] = (),
               image_size: int | None = None, image_mode: str = "auto",
               features: str | Path | None = None, missing: str = "refuse", text_column: str | None = None,
               text_model: str | None = None, text_dim: int = 100, seed: int = 0, device: str = "auto") -> ItemSet:
    """Read items from a table, an image folder, a feature matrix or a table of texts.

    Parameters
    ----------
    path : str or Path
        A folder of images; a ``.csv``/``.parquet`` table; or a ``.npy``/``.npz`` feature matrix.
        (A table of precomputed features is read as tabular items: its columns are the features.)
    ids : str or Path, optional
        Id list for a ``.npy`` feature matrix (one id per row): the items' matrix, or the
        ``features`` matrix when the items are a table or images.
    id_column : str, optional
        Table column holding item ids (default: ``id`` when present, else the row number).
    label_column : str, optional
        Table column holding labels already known (empty cells: unlabelled); not a feature.
    ignore_columns : sequence of str
        Table columns shown to annotators but not used as features.
    image_size : int, optional
        Side of the square images are resized to (default: keep the size when every image has
        the same one and its sides are at most 64 pixels, else 32).
    image_mode : {"auto", "L", "RGB"}
        Grey levels or colour (auto: grey when every image is single-channel).
    features : str or Path, optional
        Precomputed model features replacing the computed ones (see :func:`attach_features`).
    missing : {"refuse", "mean", "median", "zero"}, default "refuse"
        Empty cells of a table's numeric feature columns: refused (the message names the first
        item and column), or filled with the column's mean, median or 0. The fill values are
        recorded in the workspace (``info["imputed"]``). Empty cells of text columns are always
        their own category, ``<missing>``.
    text_column : str, optional
        The items are texts: this column of a ``.csv``, ``.parquet`` or ``.jsonl`` table holds
        them (see :func:`activebatch.workspace.text.read_text_items`). A ``.jsonl`` file is
        always read as texts.
    text_model : str, optional
        Text items' features from this local sentence-transformers model (default: TF-IDF + SVD).
    text_dim : int, default 100
        Dimension of the TF-IDF + SVD features of text items.
    seed : int, default 0
        Seed of the text featuriser's randomised SVD.
    device : str, default "auto"
        Where a sentence-transformers model runs.

    Returns
    -------
    ItemSet
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"items {str(p)!r} do not exist")
    if text_column is not None:
        return _read_texts(p, text_column=text_column, ids=ids, id_column=id_column, label_column=label_column,
                           ignore_columns=ignore_columns, features=features, text_model=text_model,
                           text_dim=text_dim, seed=seed, device=device)
    if text_model is not None:
        raise InputFileError("--text-model embeds text items: name the column holding the texts with --text-column")
    if p.suffix.lower() == ".jsonl":
        raise InputFileError(f"items {str(p)!r}: a JSON-lines file holds text items; name the field holding "
                             "the texts with --text-column")
    if p.is_dir():
        items = read_image_folder(p, image_size=image_size, mode=image_mode)
    elif p.suffix.lower() in TABLE_SUFFIXES:
        if ids is not None and features is None:
            raise InputFileError("--ids goes with a .npy feature matrix; a table names its ids with --id-column")
        items = read_table_items(p, id_column=id_column, label_column=label_column, ignore_columns=ignore_columns,
                                 missing=missing)
    elif p.suffix.lower() in (".npy", ".npz"):
        items = read_feature_items(p, ids=ids)
    else:
        raise InputFileError(f"items {str(p)!r}: expected a folder of images, a .csv/.parquet table or a "
                             f".npy/.npz feature matrix")
    if items.kind != "tabular" and (label_column or ignore_columns):
        raise InputFileError("--label-column and --ignore-columns apply to table items only")
    if features is not None:
        items = attach_features(items, features, ids=ids if items.kind != "features" else None)
    return items


def _texts(values: pd.Series, item_ids: np.ndarray, where: str, column: str) -> list[str]:
    """The column's cells as strings; empty cells and values that are not text are refused."""
    out: list[str] = []
    empty: list[int] = []
    for row, v in enumerate(values.tolist()):
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        if v is None or (isinstance(v, float) and np.isnan(v)):
            v = ""
        if isinstance(v, (dict, list, tuple, np.ndarray)):
            raise InputFileError(f"{where}: column {column!r} of item {item_ids[row]!r} (row {row}) holds "
                                 f"{type(v).__name__} {json.dumps(v, default=str)[:60]}; expected a text")
        v = v if isinstance(v, str) else str(v)
        if not v.strip():
            empty.append(row)
        out.append(v)
    if empty:
        first = empty[0]
        raise InputFileError(f"{where}: {len(empty)} item(s) have an empty text in column {column!r}, the first "
                             f"{item_ids[first]!r} (row {first}); fill them in or leave those rows out")
    return out


def read_text_items(path: str | Path, *, text_column: str, id_column: str | None = None,
                    label_column: str | None = None, text_model: str | None = None,
                    n_components: int = 100, seed: int = 0, device: str = "auto",
                    featurize: bool = True) -> ItemSet:
    """Items from the rows of a table of texts.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.parquet`` or ``.jsonl`` file, one item per row.
    text_column : str
        The column holding the texts (none may be empty).
    id_column : str, optional
        Column of item ids (default: ``id`` when present, else the row number).
    label_column : str, optional
        Column of labels already known (empty cells: unlabelled); not shown to annotators.
    text_model : str, optional
        A sentence-transformers model on this machine (a name in the local cache or a folder)
        whose embeddings are the features; default: TF-IDF + SVD.
    n_components : int, default 100
        Dimension of the TF-IDF + SVD features (capped as in
        :func:`activebatch.workspace.text.tfidf_svd_features`).
    seed : int, default 0
        Seed of the randomised SVD.
    device : str, default "auto"
        Where a sentence-transformers model runs.
    featurize : bool, default True
        False when the features come from elsewhere (precomputed embeddings): the items then
        get an empty (N, 0) matrix to be replaced.

    Returns
    -------
    ItemSet
        ``kind="text"``; ``displays`` hold each row (the label column left out) with the text
        under ``text_column``; ``info["text_features"]`` says how the features were made.
    """
    from .text import read_text_table, sentence_embeddings, tfidf_svd_features  # loaded for text items only

    p = Path(path)
    where = f"items table {str(p)!r}"
    frame = read_text_table(p)
    if frame.shape[0] == 0:
        raise InputFileError(f"{where} has no rows")
    for col, opt in ((text_column, "--text-column"), (id_column, "--id-column"), (label_column, "--label-column")):
        if col is not None and col not in frame.columns:
            raise InputFileError(f"{where} has no column {col!r} (given as {opt}); columns: "
                                 f"{', '.join(frame.columns) or 'none'}")
    if text_column in (id_column, label_column):
        raise InputFileError(f"{where}: the text column {text_column!r} cannot also be the id or label column")
    id_col = id_column if id_column is not None else ("id" if "id" in frame.columns and text_column != "id"
                                                      else None)
    if id_col is not None:
        from .files import _ids_from_series

        item_ids = _ids_from_series(frame[id_col], where)
    else:
        item_ids = np.array([str(i) for i in range(frame.shape[0])], dtype=object)
    check_unique_ids(item_ids, where)
    texts = _texts(frame[text_column], item_ids, where, text_column)
    labels: dict[str, str] = {}
    if label_column is not None:
        for i, v in zip(item_ids, frame[label_column]):
            if not (v is None or (isinstance(v, float) and np.isnan(v))) and str(v).strip() != "":
                labels[str(i)] = _label_text(v)
    shown = [c for c in frame.columns if c != label_column]
    displays = [{c: (t if c == text_column else _json_value(row[c])) for c in shown}
                for t, row in zip(texts, frame[shown].to_dict("records"))]
    if not featurize:
        X = np.zeros((len(texts), 0), dtype=np.float32)
        how: dict[str, Any] = {"method": "precomputed"}
    elif text_model is not None:
        X = sentence_embeddings(texts, text_model, device=device)
        how = {"method": "sentence-transformers", "model": text_model, "dim": int(X.shape[1])}
    else:
        X, how = tfidf_svd_features(texts, n_components=n_components, seed=seed)
    info = {"items": str(p.resolve()), "id_column": id_col, "label_column": label_column,
            "text_column": text_column, "columns": shown, "text_features": how}
    return ItemSet("text", item_ids, X, sources=[None] * len(texts), displays=displays, feature_names=[],
                   info=info, labels=labels)


def _read_texts(p: Path, *, text_column: str, ids: str | Path | None, id_column: str | None,
                label_column: str | None, ignore_columns: Sequence[str], features: str | Path | None,
                text_model: str | None, text_dim: int, seed: int, device: str) -> ItemSet:
    from .text import TEXT_SUFFIXES

    if p.is_dir() or p.suffix.lower() not in TEXT_SUFFIXES:
        raise InputFileError(f"items {str(p)!r}: --text-column needs a .csv, .parquet or .jsonl table of texts")
    if ignore_columns:
        raise InputFileError("--ignore-columns applies to table items; text items train on their text only and "
                             "show the other columns")
    if ids is not None and features is None:
        raise InputFileError("--ids goes with a .npy feature matrix; a table of texts names its ids with --id-column")
    if text_model is not None and features is not None:
        raise InputFileError("give --text-model or --features, not both: each one makes the model's features")
    items = read_text_items(p, text_column=text_column, id_column=id_column, label_column=label_column,
                            text_model=text_model, n_components=text_dim, seed=seed, device=device,
                            featurize=features is None)
    return attach_features(items, features, ids=ids) if features is not None else items


def read_table_items(path: str | Path, *, id_column: str | None = None, label_column: str | None = None,
                     ignore_columns: Sequence[str] = (), missing: str = "refuse") -> ItemSet:
    """Items from the rows of a CSV or Parquet table (see the module notes for the encoding)."""
    p = Path(path)
    where = f"items table {str(p)!r}"
    frame = read_table(p, what="items table", id_column=id_column or "id")
    if frame.shape[0] == 0:
        raise InputFileError(f"{where} has no rows")
    for col, opt in [(id_column, "--id-column"), (label_column, "--label-column")] + \
                    [(c, "--ignore-columns") for c in ignore_columns]:
        if col is not None and col not in frame.columns:
            raise InputFileError(f"{where} has no column {col!r} (given as {opt}); columns: {', '.join(frame.columns)}")
    id_col = id_column if id_column is not None else ("id" if "id" in frame.columns else None)
    if id_col is not None:
        from .files import _ids_from_series

        item_ids = _ids_from_series(frame[id_col], where)
    else:
        item_ids = np.array([str(i) for i in range(frame.shape[0])], dtype=object)
    check_unique_ids(item_ids, where)
    labels: dict[str, str] = {}
    if label_column is not None:
        for i, v in zip(item_ids, frame[label_column]):
            if not (v is None or (isinstance(v, float) and np.isnan(v))) and str(v).strip() != "":
                labels[str(i)] = _label_text(v)
    skip = {c for c in (id_col, label_column) if c is not None} | set(ignore_columns)
    feature_frame = frame[[c for c in frame.columns if c not in skip]]
    if feature_frame.shape[1] == 0:
        raise InputFileError(f"{where} has no feature columns left (id, label and ignored columns are not features)")
    X, names, imputed = _encode_features(feature_frame, where, item_ids, missing)
    displays = [{k: _json_value(v) for k, v in row.items()} for row in
                frame.drop(columns=[c for c in (label_column,) if c is not None]).to_dict("records")]
    return ItemSet("tabular", item_ids, X, sources=[None] * len(item_ids), displays=displays, feature_names=names,
                   info={"items": str(p.resolve()), "id_column": id_col, "label_column": label_column,
                         "missing": missing, "imputed": imputed,
                         "ignore_columns": list(ignore_columns), "columns": [c for c in frame.columns
                                                                             if c != label_column]},
                   labels=labels)


def _label_text(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _json_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


MISSING_POLICIES = ("refuse", "mean", "median", "zero")


def _encode_features(frame: pd.DataFrame, where: str, item_ids: Any, missing: str = "refuse"
                     ) -> tuple[np.ndarray, list[str], dict[str, dict[str, float]]]:
    """(features, their names, {column: {"value": fill, "count": cells filled}})."""
    if missing not in MISSING_POLICIES:
        raise InputFileError(f"missing must be one of {', '.join(MISSING_POLICIES)}; got {missing!r}")
    parts: list[np.ndarray] = []
    names: list[str] = []
    imputed: dict[str, dict[str, float]] = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s):
            parts.append(s.astype(np.float64).to_numpy()[:, None])
            names.append(col)
        elif pd.api.types.is_numeric_dtype(s):
            v = s.astype(np.float64).to_numpy()
            inf = np.isinf(v)
            if inf.any():
                row = int(np.argmax(inf))
                raise InputFileError(f"{where}: column {col!r} holds infinite values (the first for item "
                                     f"{item_ids[row]!r}, row {row})")
            gaps = np.isnan(v)
            if gaps.any():
                if missing == "refuse":
                    row = int(np.argmax(gaps))
                    raise InputFileError(
                        f"{where}: column {col!r} has {int(gaps.sum())} empty cell(s), the first for item "
                        f"{item_ids[row]!r} (row {row}); fill them, or choose how: --missing mean|median|zero")
                known = v[~gaps]
                fill = (0.0 if missing == "zero" or known.size == 0 else
                        float(np.mean(known)) if missing == "mean" else float(np.median(known)))
                v = np.where(gaps, fill, v)
                imputed[str(col)] = {"value": fill, "count": int(gaps.sum())}
            parts.append(v[:, None])
            names.append(col)
        else:
            text = s.astype("string").fillna("<missing>")
            levels = sorted(text.unique())
            if len(levels) > MAX_CATEGORIES:
                raise InputFileError(
                    f"{where}: text column {col!r} has {len(levels)} distinct values (more than {MAX_CATEGORIES}); "
                    "name it in --ignore-columns (shown, not a feature) or encode it as numbers")
            codes = pd.Categorical(text, categories=levels).codes
            parts.append(np.eye(len(levels))[codes])
            names += [f"{col}={lv}" for lv in levels]
    X = np.concatenate(parts, axis=1).astype(np.float32)
    return X, names, imputed


def read_image_folder(folder: str | Path, *, image_size: int | None = None, mode: str = "auto") -> ItemSet:
    """Items from the image files under ``folder``; ids are their paths relative to it.

    Files are taken in sorted order of their relative paths (positions follow that order).
    """
    from ..utils.extras import require

    require("PIL", "workspace", "reading a folder of images")
    from PIL import Image, UnidentifiedImageError

    root = Path(folder).resolve()
    files = sorted((f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                    and not any(part.startswith(".") for part in f.relative_to(root).parts)),
                   key=lambda f: f.relative_to(root).as_posix())
    if not files:
        raise InputFileError(f"image folder {str(root)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    if mode not in ("auto", "L", "RGB"):
        raise InputFileError(f"image mode must be auto, L or RGB, got {mode!r}")
    if image_size is not None and not 1 <= int(image_size) <= 512:
        raise InputFileError(f"image size must be between 1 and 512 pixels, got {image_size}")
    sizes, modes = set(), set()
    for f in files:
        try:
            with Image.open(f) as im:
                sizes.add(im.size)
                modes.add(im.mode)
        except (UnidentifiedImageError, OSError) as exc:
            raise InputFileError(f"{str(f)!r} is not a readable image: {exc}") from exc
    if mode == "auto":
        mode = "L" if modes <= {"L", "1", "LA", "I", "I;16", "F"} else "RGB"
    if image_size is None:
        only = next(iter(sizes)) if len(sizes) == 1 else None
        target = only if only is not None and max(only) <= 64 else (32, 32)
    else:
        target = (int(image_size), int(image_size))
    channels = 1 if mode == "L" else 3
    X = np.empty((len(files), channels * target[0] * target[1]), dtype=np.float32)
    for i, f in enumerate(files):
        with Image.open(f) as im:
            im = im.convert(mode)
            if im.size != target:
                im = im.resize(target, Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
        X[i] = (arr[None] if channels == 1 else arr.transpose(2, 0, 1)).reshape(-1)  # channel-major
    ids = np.array([f.relative_to(root).as_posix() for f in files], dtype=object)
    return ItemSet("image", ids, X, sources=[str(f) for f in files], displays=[None] * len(files),
                   feature_names=[], info={"items": str(root), "image_mode": mode, "image_shape":
                                           [channels, target[1], target[0]]})


def read_feature_items(path: str | Path, *, ids: str | Path | None = None, id_column: str = "id") -> ItemSet:
    """Items that are rows of a precomputed feature matrix.

    The ids come from ``ids`` (a list with one id per row), from an ``ids`` array in an ``.npz``,
    or from a table's id column; without any, the row numbers are the ids.
    """
    p = Path(path)
    arr, found = read_array(p, "features", ndim=2, id_column=id_column)
    where = f"features file {str(p)!r}"
    if ids is not None:
        item_ids = read_ids(ids, what="--ids")
        if len(item_ids) != arr.shape[0]:
            raise InputFileError(f"--ids has {len(item_ids)} ids but {where} has {arr.shape[0]} rows")
    elif found is not None:
        item_ids = found
    else:
        item_ids = np.array([str(i) for i in range(arr.shape[0])], dtype=object)
    X = np.asarray(arr, dtype=np.float32)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputFileError(f"{where} is empty (shape {X.shape})")
    if not np.isfinite(X).all():
        raise InputFileError(f"{where} holds NaN or infinite values (in {int((~np.isfinite(X)).any(1).sum())} rows)")
    return ItemSet("features", item_ids, X, sources=[None] * len(item_ids), displays=[None] * len(item_ids),
                   feature_names=[], info={"items": str(p.resolve())})


def attach_features(items: ItemSet, path: str | Path, *, ids: str | Path | None = None) -> ItemSet:
    """Replace the items' features by a precomputed matrix.

    Rows are matched to items by id when the file carries ids (an ``.npz`` ``ids`` array, a
    table's ``id`` column, or the list ``ids``); otherwise the matrix must have one row per item,
    in item order.
    """
    feats = read_feature_items(path, ids=ids)
    where = f"--features {str(path)!r}"
    has_ids = ids is not None or not all(f == str(i) for i, f in enumerate(feats.ids))
    if has_ids:
        index = {str(k): i for i, k in enumerate(feats.ids)}
        missing = [str(i) for i in items.ids if str(i) not in index]
        if missing:
            raise InputFileError(f"{where} has no row for {len(missing)} item(s), e.g. {missing[:3]}")
        rows = np.array([index[str(i)] for i in items.ids])
        X = feats.features[rows]
    else:
        if feats.features.shape[0] != len(items):
            raise InputFileError(f"{where} has {feats.features.shape[0]} rows but there are {len(items)} items "
                                 "(give ids with the features to match them by id)")
        X = feats.features
    info = dict(items.info, features=str(Path(path).resolve()))
    return ItemSet(items.kind, items.ids, X, sources=items.sources, displays=items.displays, feature_names=[],
                   info=info, labels=items.labels)
