"""The Pool: features, hidden oracle labels, and the labels given so far."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..utils.validation import check_features, check_labels

__all__ = ["Pool", "LabelConflictError"]

UNLABELED = -1


class LabelConflictError(ValueError):
    """Raised when an item that already has a label is given a different one."""


class Pool:
    """A pool of items: features, the labels given so far, and (optionally) oracle labels.

    Parameters
    ----------
    X : array of shape (N, ...)
        Features; a numpy array or a memory-mapped array (rows are read on demand, and checked
        for NaN or infinite values once, in row blocks).
    y : array of shape (N,), optional
        Oracle labels, revealed only when an item is labeled without an explicit label
        (simulated annotation in experiments).
    n_classes : int, optional
        Number of classes; inferred from ``y`` when given.
    name : str, optional
        Data set name recorded in results.

    Notes
    -----
    Labels are only ever added: an item keeps its label for the life of the pool, and labelling it
    again with a different label raises :class:`LabelConflictError` (the same label is a no-op).
    """

    def __init__(self, X: Any, y: Any = None, *, n_classes: int | None = None, name: str = "pool") -> None:
        if not hasattr(X, "shape") or len(X.shape) < 1:
            X = np.asarray(X)
        if len(X.shape) < 2:
            raise ValueError(f"X must have shape (N, n_features...), got {tuple(X.shape)}")
        check_features(X, "X")   # a NaN would make every prediction NaN, silently
        self.X = X
        self.name = name
        n = int(X.shape[0])
        self._oracle = None if y is None else check_labels(y, "y", rows=n)
        if n_classes is None:
            if self._oracle is None:
                raise ValueError("give n_classes when the pool has no oracle labels y")
            n_classes = int(self._oracle.max()) + 1 if n else 0
        if self._oracle is not None and n and self._oracle.max() >= n_classes:
            raise ValueError(f"y holds label {int(self._oracle.max())} but n_classes={n_classes}")
        self.n_classes = int(n_classes)
        self._labels = np.full(n, UNLABELED, dtype=np.int64)

    # Read-only views ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._labels.shape[0]

    @property
    def labels(self) -> np.ndarray:
        """Labels given so far (-1 = unlabeled), a copy."""
        return self._labels.copy()

    @property
    def labeled_mask(self) -> np.ndarray:
        return self._labels != UNLABELED

    @property
    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self._labels != UNLABELED)

    @property
    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self._labels == UNLABELED)

    @property
    def n_labeled(self) -> int:
        return int((self._labels != UNLABELED).sum())

    def features(self, indices: Any) -> np.ndarray:
        """Feature rows for pool ``indices``."""
        return np.asarray(self.X[np.asarray(indices, dtype=np.int64)])

    def labeled_data(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of the labeled items, in pool order."""
        idx = self.labeled_indices
        return self.features(idx), self._labels[idx]

    # Writing labels ------------------------------------------------------------------------
    def label(self, indices: Any, labels: Any = None) -> None:
        """Record labels for pool ``indices``.

        Parameters
        ----------
        indices : array of int, shape (m,)
            Pool positions.
        labels : array of int, shape (m,), optional
            The labels; taken from the oracle ``y`` when omitted.

        The call is all-or-nothing: every index and label is checked before anything is written.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValueError("indices must be a 1-D array of integer pool positions")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"indices must lie in 0..{len(self) - 1}")
        if labels is None:
            if self._oracle is None:
                raise ValueError("this pool has no oracle labels: pass labels explicitly")
            lab = self._oracle[idx]
        else:
            lab = check_labels(labels, "labels", rows=idx.size)
            if lab.size and lab.max() >= self.n_classes:
                raise ValueError(f"label {int(lab.max())} is out of range for {self.n_classes} classes")
        uniq, first = np.unique(idx, return_index=True)
        if uniq.size != idx.size:
            # Repeated index in one call: every copy must carry the same label.
            for i in uniq:
                if np.unique(lab[idx == i]).size > 1:
                    raise LabelConflictError(f"item {int(i)} is given different labels in one call")
        current = self._labels[idx]
        clash = (current != UNLABELED) & (current != lab)
        if clash.any():
            j = int(np.flatnonzero(clash)[0])
            raise LabelConflictError(
                f"item {int(idx[j])} already has label {int(current[j])}; refusing to relabel it "
                f"as {int(lab[j])}")
        self._labels[idx] = lab

    def copy(self) -> Pool:
        """A pool sharing X and the oracle, with its own copy of the labels."""
        new = object.__new__(Pool)
        new.__dict__.update(self.__dict__)
        new._labels = self._labels.copy()
        return new

    def __repr__(self) -> str:
        return (f"Pool(name={self.name!r}, n={len(self)}, n_labeled={self.n_labeled}, "
                f"n_classes={self.n_classes})")
