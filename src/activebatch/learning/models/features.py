"""Heads for pretrained or precomputed features, and feature extraction with a frozen network.

The practical fast path on a CPU: embed the pool once with a frozen pretrained network (or load
features computed elsewhere, e.g. a memory-mapped ``.npy``), then let the active-learning loop
train only a linear head (:class:`LinearHead`) or a small MLP (:class:`~activebatch.learning.models.MLP`)
on the features. :class:`~activebatch.Learner` accepts ``extractor=`` to do the embedding on the
fly instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import EmbeddingModel
from .bayesian import linear_head
from .normalize import make_input_norm

__all__ = ["LinearHead", "extract_features", "open_features"]


class LinearHead(EmbeddingModel):
    """A linear classifier on fixed features: ``embed(x)`` is (standardised, dropped-out) x itself.

    Parameters
    ----------
    n_features : int
        Feature width d (the embedding width).
    n_classes : int
    dropout : float, default 0.0
        Dropout on the features before the head.
    mean, std : array of shape (d,), optional
        Per-feature standardisation applied inside the model.
    bayesian : bool, default False
        Make the head a :class:`~activebatch.learning.models.BayesianLinear` (Bayes by Backprop).
    """

    def __init__(self, n_features: int, n_classes: int, *, dropout: float = 0.0, mean: Any = None,
                 std: Any = None, bayesian: bool = False) -> None:
        super().__init__()
        if n_features < 1 or n_classes < 2:
            raise ValueError("LinearHead needs n_features >= 1 and n_classes >= 2")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_features, self.n_classes, self.embedding_dim = n_features, n_classes, n_features
        self.input_norm = make_input_norm(mean, std)
        self.dropout = nn.Dropout(dropout)
        self.head = linear_head(n_features, n_classes, bayesian)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.input_norm(x.float().flatten(1)))


@torch.no_grad()
def extract_features(extractor: nn.Module, X: Any, *, batch_size: int = 256, device: str | torch.device = "cpu",
                     out: str | Path | None = None) -> np.ndarray:
    """Run a frozen network over ``X`` once and return its outputs as a float32 matrix.

    Parameters
    ----------
    extractor : torch.nn.Module
        Any module mapping a batch (B, ...) to features (B, d) (outputs of higher rank are
        flattened). Used in eval mode; its parameters are not changed.
    X : array of shape (N, ...)
        Inputs (numpy, memory-mapped or torch), converted to float32 a batch at a time.
    batch_size : int, default 256
    device : str or torch.device, default "cpu"
    out : str or Path, optional
        Write the features to this ``.npy`` file (a memory-mapped array, filled a batch at a time,
        so the matrix never has to fit in memory) and return it opened read-only.

    Returns
    -------
    ndarray of float32, shape (N, d)
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    was_training = extractor.training
    extractor.eval()
    dev = torch.device(device)
    n = int(X.shape[0])
    result: np.ndarray | None = None
    try:
        for start in range(0, n, batch_size):
            xb = X[start:start + batch_size]
            if isinstance(xb, torch.Tensor):
                t = xb
            else:
                arr = np.ascontiguousarray(np.asarray(xb))
                t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
            f = extractor(t.to(dev, torch.float32)).flatten(1).float().cpu().numpy()
            if result is None:
                shape = (n, f.shape[1])
                result = (np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=shape)
                          if out is not None else np.empty(shape, dtype=np.float32))
            result[start:start + f.shape[0]] = f
    finally:
        extractor.train(was_training)
    if result is None:
        raise ValueError("X is empty")
    if out is not None:
        result.flush()  # type: ignore[union-attr]
        del result
        return open_features(out)
    return result


def open_features(path: str | Path) -> np.ndarray:
    """Open a precomputed ``.npy`` feature matrix (N, d) memory-mapped read-only."""
    arr = np.load(Path(path), mmap_mode="r")
    if arr.ndim != 2:
        raise ValueError(f"{path}: a feature matrix must have shape (N, d), got {arr.shape}")
    return arr
