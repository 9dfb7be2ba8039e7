"""A small convolutional network for fast CPU runs on 28x28 and 32x32 images."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .base import EmbeddingModel
from .bayesian import linear_head
from .normalize import make_input_norm
from .resnet import _check
from .shapes import as_images

__all__ = ["CNN"]


class CNN(EmbeddingModel):
    """conv3x3(32)-ReLU-maxpool -> conv3x3(64)-ReLU-maxpool -> 4x4 average pool -> linear(d)-ReLU.

    The embedding is the ReLU output of the fully connected layer (width ``embedding_dim``); the
    adaptive 4x4 pooling makes the network accept any image size. About 0.15M parameters for
    d = 128: an epoch on a few thousand MNIST images takes seconds on one CPU core.

    Parameters
    ----------
    in_channels : int, default 1
    n_classes : int, default 10
    embedding_dim : int, default 128
    dropout : float, default 0.0
        Dropout on the embedding before the head (for MC dropout).
    input_shape : tuple (C, H, W), optional
        Shape that flat inputs are reshaped to (default: square images).
    mean, std : array of shape (in_channels,), optional
        Per-channel input statistics, applied inside the model.
    bayesian : bool, default False
        Make the head a :class:`~activebatch.learning.models.BayesianLinear` (Bayes by Backprop).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, *, embedding_dim: int = 128,
                 dropout: float = 0.0, input_shape: tuple[int, int, int] | None = None,
                 mean: Any = None, std: Any = None, bayesian: bool = False) -> None:
        super().__init__()
        _check(in_channels, n_classes, dropout)
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.in_channels, self.n_classes, self.embedding_dim = in_channels, n_classes, embedding_dim
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.input_norm = make_input_norm(mean, std)
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 4 * 4, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = linear_head(embedding_dim, n_classes, bayesian)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(as_images(x, self.in_channels, self.input_shape))
        # pool, then ReLU: the same values and gradients as ReLU then pool (the max commutes with a
        # monotone function, and a window whose maximum is <= 0 passes no gradient either way), on a
        # quarter of the elements
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 4), 1)
        return self.dropout(F.relu(self.fc(x)))
