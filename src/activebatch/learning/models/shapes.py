"""Bringing flat or image-shaped inputs to (N, C, H, W)."""
from __future__ import annotations

import math

import torch

__all__ = ["as_images"]


def as_images(x: torch.Tensor, channels: int, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """``x`` as a float (N, C, H, W) batch.

    Flat inputs (N, F) are reshaped to ``shape`` when given, else to square C x s x s images with
    s = sqrt(F / C).
    """
    x = x.float()
    if x.ndim == 4:
        if x.shape[1] != channels:
            raise ValueError(f"expected {channels} input channels, got input of shape {tuple(x.shape)}")
        return x
    if x.ndim == 3 and channels == 1:
        return x.unsqueeze(1)
    flat = x.reshape(x.shape[0], -1)
    if shape is not None:
        return flat.reshape(x.shape[0], *shape)
    side = math.isqrt(flat.shape[1] // channels) if flat.shape[1] % channels == 0 else 0
    if side * side * channels != flat.shape[1]:
        raise ValueError(f"cannot view inputs of width {flat.shape[1]} as {channels}-channel square images; "
                         f"pass input_shape=(C, H, W)")
    return flat.reshape(x.shape[0], channels, side, side)
