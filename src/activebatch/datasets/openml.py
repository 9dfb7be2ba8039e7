"""Any OpenML data set by id (``load("openml-<id>")``), from ARFF or Parquet files cached under root.

Files live in ``<root>/openml/<id>/``: ``dataset.parquet`` or ``dataset.arff`` (any ``*.parquet``
/ ``*.arff`` there is accepted too), and optionally ``description.json``, OpenML's data set
description, whose ``default_target_attribute`` names the class column. With ``download=True``
the description is fetched from OpenML's REST API and the ARFF file from the URL it gives, its
MD5 checked against the description's ``md5_checksum``.

Reference: Vanschoren, van Rijn, Bischl & Torgo, "OpenML: networked science in machine
learning", SIGKDD Explorations 15(2), 2013.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import Dataset
from .download import MissingFilesError, RemoteFile, data_home, fetch
from .readers.tables import Table, read_arff, read_parquet
from .splits import stratified_split

__all__ = ["OPENML_API", "load_openml", "openml_dir"]

#: OpenML's data set description endpoint (JSON); ``{id}`` is replaced by the data set id.
OPENML_API = "https://www.openml.org/api/v1/json/data/{id}"


def openml_dir(data_id: int, root: str | Path | None = None) -> Path:
    """The cache folder of OpenML data set ``data_id``: ``<root>/openml/<id>``."""
    return data_home(root) / "openml" / str(int(data_id))


def _find(folder: Path) -> Path | None:
    for pattern in ("dataset.parquet", "dataset.arff", "*.parquet", "*.pq", "*.arff"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def _description(folder: Path) -> dict:
    p = folder / "description.json"
    if not p.is_file():
        return {}
    d = json.loads(p.read_text())
    return d.get("data_set_description", d)


def _download(data_id: int, folder: Path) -> Path:
    desc_file = fetch(RemoteFile("description.json", OPENML_API.format(id=int(data_id))), folder)
    desc = _description(folder)
    url, md5 = desc.get("url"), desc.get("md5_checksum")
    if not url:
        desc_file.unlink()
        raise ValueError(f"OpenML has no downloadable file for data set {data_id}")
    return fetch(RemoteFile("dataset.arff", url, md5=md5), folder)


def load_openml(data_id: int, root: Path | None = None, download: bool = False, *,
                target: str | None = None, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load OpenML data set ``data_id`` from its cached ARFF or Parquet file.

    Parameters
    ----------
    data_id : int
    root : Path, optional
        Data root (see :func:`activebatch.datasets.download.data_home`).
    download : bool, default False
        Fetch the description and the ARFF file from OpenML when nothing is cached.
    target : str, optional
        Class column; default: the description's ``default_target_attribute``, else the last column.
    test_fraction : float, default 0.2
        Stratified test share.
    seed : int, default 0
        Seeds the split.

    Returns
    -------
    Dataset
        ``openml-<id>``: float32 features (nominal values as codes; missing values replaced by
        the training mean of their column), int64 labels.
    """
    if int(data_id) < 1:
        raise ValueError(f"OpenML ids are positive, got {data_id}")
    folder = openml_dir(data_id, root)
    path = _find(folder) if folder.is_dir() else None
    if path is None and download:
        path = _download(data_id, folder)
    if path is None:
        raise MissingFilesError(
            f"OpenML data set {data_id} needs its data file in {folder}:\n"
            f"  dataset.arff (or dataset.parquet)  <- https://www.openml.org/d/{data_id}\n"
            f"optionally with description.json <- {OPENML_API.format(id=int(data_id))}\n"
            f"Put it there, pass root= to point at the folder holding openml/{data_id}/, or load with "
            f"download=True to fetch it (MD5 verified).")
    desc = _description(folder)
    target = target or (desc.get("default_target_attribute") or None)
    if target and "," in target:
        raise ValueError(f"OpenML data set {data_id} has several targets ({target}); pass target=")
    table: Table = read_parquet(path, target) if path.suffix in (".parquet", ".pq") else read_arff(path, target)
    n_classes = len(table.class_names)
    if n_classes < 2:
        raise ValueError(f"OpenML data set {data_id}: the class column has fewer than 2 values")
    tr, te = stratified_split(table.y, test_fraction, seed)
    X = table.X
    if np.isnan(X).any():
        col_mean = np.nan_to_num(np.nanmean(np.where(np.isnan(X[tr]), np.nan, X[tr]), axis=0))
        X = np.where(np.isnan(X), col_mean[None, :], X).astype(np.float32)
    name = desc.get("name", f"OpenML data set {data_id}")
    return Dataset(f"openml-{int(data_id)}", X[tr], table.y[tr], X[te], table.y[te], n_classes=n_classes,
                   kind="tabular", description=f"{name} (OpenML #{int(data_id)}, {path.name})",
                   source=f"OpenML #{int(data_id)}", class_names=table.class_names)
