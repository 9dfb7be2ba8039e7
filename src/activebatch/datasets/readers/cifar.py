"""The CIFAR-10 "python version" batches (Krizhevsky, 2009).

The archive ``cifar-10-python.tar.gz`` holds a folder ``cifar-10-batches-py`` with the pickled
dicts ``data_batch_1`` .. ``data_batch_5`` (training) and ``test_batch``, each with ``b"data"``,
a (10000, 3072) uint8 array (1024 red, then green, then blue values, rows of 32 pixels), and
``b"labels"``, a list of 10000 ints in 0..9; ``batches.meta`` holds ``b"label_names"``.

The pickles are read with an unpickler that only admits the numpy types these files contain, so a
tampered file cannot run code.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_cifar10", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = "test_batch"
_FOLDER = "cifar-10-batches-py"
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which a CIFAR file never does")
        return super().find_class(module, name)


def _load_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise ValueError(f"{where}: not a CIFAR-10 python batch ({exc})") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{where}: not a CIFAR-10 python batch (expected a dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{where}: CIFAR-10 batch without 'data' and 'labels'")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ValueError(f"{where}: expected data of shape (n, 3072) and n labels, got {data.shape} "
                         f"and {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-10 from ``cifar-10-python.tar.gz`` or from the extracted folder.

    Parameters
    ----------
    path : str or Path
        The tar.gz archive, the ``cifar-10-batches-py`` folder, or a folder containing it.

    Returns
    -------
    X_train : ndarray of uint8, shape (50000, 3, 32, 32)
    y_train : ndarray of int64, shape (50000,)
    X_test : ndarray of uint8, shape (10000, 3, 32, 32)
    y_test : ndarray of int64, shape (10000,)
        (Smaller files give correspondingly fewer rows.)
    """
    path = Path(path)
    if path.is_dir():
        folder = path / _FOLDER if (path / _FOLDER).is_dir() else path
        missing = [n for n in _TRAIN + [_TEST] if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: CIFAR-10 batches missing: {', '.join(missing)}")
        read: Callable[[str], bytes] = lambda n: (folder / n).read_bytes()  # noqa: E731
        parts = {n: _load_batch(read(n), str(folder / n)) for n in _TRAIN + [_TEST]}
    else:
        parts = {}
        try:
            with tarfile.open(path, "r:*") as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                for n in _TRAIN + [_TEST]:
                    if n not in members:
                        raise FileNotFoundError(f"{path}: archive lacks the CIFAR-10 batch {n}")
                    fh = tar.extractfile(members[n])
                    assert fh is not None
                    parts[n] = _load_batch(fh.read(), f"{path}:{members[n].name}")
        except tarfile.TarError as exc:
            raise ValueError(f"{path}: not a CIFAR-10 tar archive ({exc})") from exc
    X_train = np.concatenate([parts[n][0] for n in _TRAIN])
    y_train = np.concatenate([parts[n][1] for n in _TRAIN])
    return X_train, y_train, parts[_TEST][0], parts[_TEST][1]
