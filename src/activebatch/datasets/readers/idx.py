"""The IDX file format of the MNIST family.

Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, one byte giving the
element type (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), one byte giving the number of dimensions n, then n big-endian uint32 sizes, then
the elements in C order, big-endian. Files may be gzip-compressed (detected from their first
bytes, whatever their name).
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["read_idx", "write_idx"]

_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
          np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray
        Of the file's shape; native byte order, the file's element type (uint8 for images and labels).

    Raises
    ------
    ValueError
        Malformed header, unknown element type, or fewer bytes than the header announces.
    """
    path = Path(path)
    with _open(path) as fh:
        header = fh.read(4)
        if len(header) != 4 or header[:2] != b"\x00\x00":
            raise ValueError(f"{path}: not an IDX file (it must start with two zero bytes)")
        code, ndim = header[2], header[3]
        if code not in _DTYPES:
            raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
        if ndim == 0:
            raise ValueError(f"{path}: IDX file with zero dimensions")
        shape = tuple(int(v) for v in np.frombuffer(fh.read(4 * ndim), dtype=">u4"))
        if len(shape) != ndim:
            raise ValueError(f"{path}: truncated IDX header")
        dtype = _DTYPES[code]
        count = int(np.prod(shape))
        data = fh.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError(f"{path}: truncated IDX data: the header announces shape {shape} "
                         f"({count * dtype.itemsize} bytes), the file holds {len(data)}")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress``); returns the path."""
    arr = np.asarray(array)
    if arr.dtype not in _CODES:
        raise ValueError(f"IDX cannot hold dtype {arr.dtype}")
    header = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path
