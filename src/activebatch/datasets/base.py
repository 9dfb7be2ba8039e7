"""The data-set records: :class:`Dataset` (train/test arrays) and :class:`DatasetInfo` (a catalog row)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "DatasetInfo"]


@dataclass
class Dataset:
    """Train/test arrays of a data set; unpacks as ``X_train, y_train, X_test, y_test``.

    Attributes
    ----------
    kind : {"image", "tabular"}
        Selects the BADGE paper's defaults (MLP width 256 and Adam lr 1e-3 for images; 1024 and
        1e-4 for tabular data).
    image_shape : tuple (C, H, W), optional
        Shape of one image; image data sets from files store X as uint8 of shape (N, C, H, W).
    source : str
        Where the data come from.
    class_names : tuple of str, optional
        Name of each class label.
    mean, std : ndarray of shape (C,), optional
        Per-channel statistics of X_train in the units of X (0..255 for uint8 images); models
        built with :func:`activebatch.learning.models.for_dataset` standardise their inputs with them.
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
    source: str = ""
    class_names: tuple[str, ...] | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.X_train, self.y_train, self.X_test, self.y_test))

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X_train.shape[1:]))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.X_train.shape}, test={self.X_test.shape}, "
                f"n_classes={self.n_classes}, kind={self.kind!r})")


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`catalog` says about a data set without loading it.

    Attributes
    ----------
    name, source, kind, description : str
    n_train, n_test, n_classes : int or None
        Sizes of the default configuration (None where they depend on the files).
    offline : bool
        Whether ``load(name, root)`` works now without a download.
    """

    name: str
    source: str
    kind: str
    n_train: int | None
    n_test: int | None
    n_classes: int | None
    offline: bool
    description: str = ""
