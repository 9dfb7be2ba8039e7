"""Per-data-set input standardisation, applied inside a model so data can stay uint8."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Standardize", "make_input_norm"]


class Standardize(nn.Module):
    """``(x - mean) / std`` per channel (or per feature), with ``mean``/``std`` in the units of x.

    Parameters
    ----------
    mean, std : array of shape (C,)
        One value per channel: an input of shape (N, C, ...) or its flattening (N, C * H * W) in
        channel-major order is standardised channel by channel. With C = 1 one value serves all.
    """

    def __init__(self, mean: Any, std: Any) -> None:
        super().__init__()
        m = torch.as_tensor(np.asarray(mean, dtype=np.float32).reshape(-1))
        s = torch.as_tensor(np.asarray(std, dtype=np.float32).reshape(-1))
        if m.shape != s.shape or m.numel() == 0:
            raise ValueError(f"mean and std must have the same non-empty shape, got {tuple(m.shape)} and "
                             f"{tuple(s.shape)}")
        if not torch.all(s > 0):
            raise ValueError("std must be positive")
        self.register_buffer("mean", m)
        self.register_buffer("std", s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        c = self.mean.numel()
        if c == 1:
            return (x - self.mean) / self.std
        flat = x.reshape(x.shape[0], c, -1)
        return ((flat - self.mean[:, None]) / self.std[:, None]).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"channels={self.mean.numel()}"


def make_input_norm(mean: Any | None, std: Any | None) -> nn.Module:
    """:class:`Standardize` when both are given, else the identity."""
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    return nn.Identity() if mean is None else Standardize(mean, std)
