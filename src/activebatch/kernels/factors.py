"""Row-block access to gradient-embedding factors of a pool too large to copy.

The pool's probabilities P (N, K) and embeddings Z (N, d) may be torch tensors (CPU or CUDA) or
numpy arrays, including memory-mapped ``.npy`` files in float16 or float32 (or any object with
``shape``, ``dtype`` and row indexing by slices and sorted integer arrays that returns numpy arrays,
such as a lazy selection of a map's rows). Kernels read them in
blocks of rows, so peak memory is a few blocks plus O(N) vectors, never a full float64 copy.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

__all__ = ["GradientFactors", "DEFAULT_BLOCK_ROWS"]

#: Rows per block: 16,384 x (K + d) values stay far below a gigabyte for K + d up to 4,000.
DEFAULT_BLOCK_ROWS = 16384


def _to_torch(x: Any, device: torch.device, dtype: torch.dtype | None = None, *, own: bool = False) -> torch.Tensor:
    """A block as a tensor on ``device`` in ``dtype`` (float16 storage: float32).

    With ``own``, the result never shares memory with ``x`` (the caller may write to it). A
    conversion that makes a new tensor anyway is not followed by a second copy.
    """
    if isinstance(x, torch.Tensor):
        src = x
    else:
        arr = np.ascontiguousarray(x)
        with warnings.catch_warnings():
            # a read-only memory map: the view is only read, and converted or copied below
            warnings.filterwarnings("ignore", message=".*not writable.*")
            src = torch.from_numpy(arr)
        own = own or not arr.flags.writeable
    if dtype is None:
        dtype = src.dtype if src.dtype in (torch.float32, torch.float64) else torch.float32
    t = src.to(device=device, dtype=dtype)
    if own and t.data_ptr() == src.data_ptr():
        t = t.clone()
    return t


def ascending(idx: np.ndarray, device: torch.device) -> tuple[np.ndarray, torch.Tensor]:
    """``idx`` sorted (rows of a memory map are read fastest in ascending order) and the positions
    that put rows read in that order back in the order of ``idx``."""
    order = np.argsort(idx, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return idx[order], torch.as_tensor(inv, device=device)


class GradientFactors:
    """u = p - e_y (float64) and z for row blocks of a pool.

    Parameters
    ----------
    z : tensor or array of shape (N, d)
        Penultimate embeddings.
    probs : tensor or array of shape (N, K), optional
        Softmax outputs; u is formed on the fly with y = argmax p (BADGE's hallucinated label).
    u : tensor or array of shape (N, K), optional
        The factors themselves, instead of ``probs``.
    device : torch.device, optional
        Where blocks are computed; default: the device of ``z`` if it is a tensor, else CPU.
    block_rows : int
        Rows per block.
    """

    def __init__(self, z: Any, *, probs: Any = None, u: Any = None, device: torch.device | None = None,
                 block_rows: int = DEFAULT_BLOCK_ROWS) -> None:
        if (probs is None) == (u is None):
            raise ValueError("give exactly one of probs or u")
        self.z, self.probs, self.u = z, probs, u
        self.N, self.d = int(z.shape[0]), int(z.shape[1])
        self.K = int((probs if probs is not None else u).shape[1])
        if device is None:
            device = z.device if isinstance(z, torch.Tensor) else torch.device("cpu")
        self.device = torch.device(device)
        self.block_rows = int(block_rows)
        # Any array-like with a dtype counts (a lazy row selection of a memory map, not only ndarray).
        is64 = z.dtype == torch.float64 if isinstance(z, torch.Tensor) else np.dtype(z.dtype) == np.float64
        self.zdtype = torch.float64 if is64 else torch.float32

    def _u(self, rows: Any) -> torch.Tensor:
        if self.u is not None:
            return _to_torch(self.u[rows], self.device, torch.float64)
        # own: the block is written to below; the caller's array must stay intact
        p = _to_torch(self.probs[rows], self.device, torch.float64, own=True)
        y = p.argmax(dim=1)  # ties: lowest class index
        p[torch.arange(p.shape[0], device=p.device), y] -= 1.0
        return p

    def block(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, z) for rows start:stop."""
        return self._u(slice(start, stop)), _to_torch(self.z[start:stop], self.device, self.zdtype)

    def rows(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, z) for the given row indices (sorted internally for memory-mapped reads)."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self.z, torch.Tensor):
            it = torch.as_tensor(idx, device=self.z.device)
            src = self.probs if self.u is None else self.u
            u = self._u(it.to(src.device) if isinstance(src, torch.Tensor) else idx)
            return u, self.z.index_select(0, it).to(self.device, self.zdtype)
        srt, inv = ascending(idx, self.device)
        return self._u(srt)[inv], _to_torch(self.z[srt], self.device, self.zdtype)[inv]

    def blocks(self):
        """Iterate (start, stop, u, z) over the pool."""
        for start in range(0, self.N, self.block_rows):
            stop = min(start + self.block_rows, self.N)
            u, z = self.block(start, stop)
            yield start, stop, u, z

    def sqnorms(self) -> torch.Tensor:
        """||g_i||^2 = |u_i|^2 |z_i|^2 for all rows, float64 (N,)."""
        out = torch.empty(self.N, dtype=torch.float64, device=self.device)
        for start, stop, u, z in self.blocks():
            out[start:stop] = (u * u).sum(1) * (z.to(torch.float64) ** 2).sum(1)
        return out
