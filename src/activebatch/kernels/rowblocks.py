"""Arrays read in row blocks: numpy memory maps and row selections of them.

A pool of a million candidates may be handed over as memory-mapped ``.npy`` files
(``np.load(path, mmap_mode="r")``). Converting such an array to a tensor reads the whole file
into memory (and upcasts float16 to float32), which defeats the kernels that stream row blocks.
This module names what counts as such a *row source* and lets a subset of its rows be passed on
without copying them.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["BLOCK_VALUES", "RowSelection", "is_row_source", "row_blocks", "rows_per_block"]

#: Values read at a time by every row-block reader (validation scans, per-candidate scores):
#: 8M values are 32 MiB as float32 (a score's float64 temporaries twice that). Blocks this large
#: are mapped afresh by the C allocator and returned when freed; smaller ones are carved from its
#: heap, which fragments and can grow by about a block per block.
BLOCK_VALUES = 1 << 23


def rows_per_block(width: int) -> int:
    """Rows of a block of at most :data:`BLOCK_VALUES` values, for rows of ``width`` values (>= 1 row)."""
    return max(1, BLOCK_VALUES // max(int(width), 1))


class RowSelection:
    """Rows ``rows`` of a 2-D numpy array (typically a memory map), read only when indexed.

    Indexing (a slice or an integer array, as the kernels in :mod:`activebatch.kernels.factors`
    do) returns an in-memory numpy array of just those rows; converting the whole selection with
    ``np.asarray`` reads every selected row. Nothing is read at construction.

    Parameters
    ----------
    base : numpy array of shape (N, ...)
        The array to select from; a RowSelection is flattened into its own base.
    rows : array of int, shape (m,)
        Row positions of ``base``, in the order the selection presents them. Ascending positions
        make block reads of a memory map sequential.
    """

    def __init__(self, base: Any, rows: Any) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1:
            raise ValueError(f"rows must be a 1-D array of positions, got shape {rows.shape}")
        if isinstance(base, RowSelection):
            base, rows = base.base, base.rows[rows]
        self.base = base
        self.rows = rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.rows.size),) + tuple(self.base.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __len__(self) -> int:
        return int(self.rows.size)

    def __getitem__(self, key: Any) -> np.ndarray:
        # Only row indexing is supported: that is all a block reader needs.
        return np.asarray(self.base[self.rows[key]])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"RowSelection(shape={self.shape}, dtype={self.dtype})"


def is_row_source(value: Any) -> bool:
    """Whether ``value`` should be validated and passed on in row blocks rather than converted.

    True for numpy memory maps (what ``np.load(..., mmap_mode="r")`` returns) and for
    :class:`RowSelection` objects; in-memory arrays and tensors are converted as before.
    """
    return isinstance(value, (np.memmap, RowSelection))


def row_blocks(value: Any, block_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, rows start:start+block_rows of value)`` as in-memory numpy arrays.

    ``block_rows`` defaults to :func:`rows_per_block` of the row width.
    """
    n = int(value.shape[0])
    if block_rows is None:
        block_rows = rows_per_block(int(np.prod(value.shape[1:], dtype=np.int64)))
    for start in range(0, n, block_rows):
        yield start, np.asarray(value[start:min(start + block_rows, n)])
