"""Input checks used at the public boundary (and nowhere else)."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "check_probs", "check_matrix", "check_n", "check_seed", "check_labels"]

# Row sums of a probability matrix may deviate from 1 by this much (float32 softmax outputs
# of wide heads routinely show ~1e-6 relative error).
PROB_SUM_TOL = 1e-3


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """Convert a numpy array, a torch tensor or a nested list to a floating tensor.

    Float64 and float32 inputs keep their dtype (exact tests rely on float64); anything else
    becomes float32. Tensors stay on their device.
    """
    if isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy gives a clear message itself
            raise TypeError(f"{name} must be an array or a tensor, got {type(value).__name__}") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t


def check_matrix(value: Any, name: str, *, rows: int | None = None, cols: int | None = None,
                 rows_from: str | None = None, cols_from: str | None = None) -> torch.Tensor:
    """Return ``value`` as a finite 2-D floating tensor, checking its shape."""
    t = as_tensor(value, name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_rows, n_columns), got shape {tuple(t.shape)}")
    if rows is not None and t.shape[0] != rows:
        src = f" (the number of rows of {rows_from})" if rows_from else ""
        raise ValueError(f"{name} has {t.shape[0]} rows but {rows} are expected{src}")
    if cols is not None and t.shape[1] != cols:
        src = f" (the number of columns of {cols_from})" if cols_from else ""
        raise ValueError(f"{name} has {t.shape[1]} columns but {cols} are expected{src}")
    if t.numel() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or infinite values (in {bad} rows)")
    return t


def check_probs(value: Any, name: str = "probs", *, rows: int | None = None,
                rows_from: str | None = None) -> torch.Tensor:
    """Return ``value`` as an (N, K) tensor of class probabilities, rows summing to 1."""
    t = check_matrix(value, name, rows=rows, rows_from=rows_from)
    if t.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 columns (classes), got {t.shape[1]}")
    if t.numel():
        if bool((t < 0).any()):
            raise ValueError(f"{name} contains negative values; expected softmax probabilities in [0, 1]")
        sums = t.sum(dim=1, dtype=torch.float64)
        worst = float((sums - 1).abs().max())
        if worst > PROB_SUM_TOL:
            row = int((sums - 1).abs().argmax())
            raise ValueError(
                f"{name} rows must sum to 1 (softmax probabilities, not logits); row {row} sums to "
                f"{float(sums[row]):.6g}")
    return t


def check_n(n: Any, available: int, what: str = "candidates") -> int:
    """Check the batch size ``n`` against the number of selectable items."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n > available:
        raise ValueError(f"n={n} is larger than the number of {what} ({available})")
    return n


def check_seed(seed: Any) -> np.random.Generator:
    """Turn ``seed`` (None, an int, a SeedSequence or a Generator) into a numpy Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(int(seed))


def check_labels(y: Any, name: str = "y", *, rows: int | None = None) -> np.ndarray:
    """Return integer class labels as an int64 numpy array."""
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise ValueError(f"{name} has {arr.shape[0]} entries but {rows} are expected")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class labels 0..K-1, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold class labels 0..K-1; found {int(arr.min())}")
    return arr
