"""ResNet-18 in its CIFAR form, the BADGE paper's convolutional architecture.

He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, with the
adaptation to 32x32 inputs used by Ash et al. (ICLR 2020) and the widely used CIFAR code they
build on: a 3x3 stride-1 stem with no max-pooling, four stages of two basic blocks with
64, 128, 256 and 512 channels (strides 1, 2, 2, 2), global average pooling to a 512-d
embedding, then the linear head. 11,173,962 parameters for 3 input channels and 10 classes.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .base import EmbeddingModel
from .bayesian import linear_head
from .normalize import make_input_norm
from .shapes import as_images

__all__ = ["BasicBlock", "ResNet18"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(EmbeddingModel):
    """CIFAR-style ResNet-18 with ``embed(x)`` (512-d) and a linear ``head``.

    Parameters
    ----------
    in_channels : int, default 3
        Image channels (1 for the MNIST family, 3 for CIFAR-10 and SVHN).
    n_classes : int, default 10
    dropout : float, default 0.0
        Dropout on the embedding before the head (for MC dropout).
    input_shape : tuple (C, H, W), optional
        Shape that flat inputs (N, C*H*W) are reshaped to; by default square images are assumed.
    mean, std : array of shape (in_channels,), optional
        Per-channel input statistics (in the units of the data, e.g. 0..255 for uint8 images);
        inputs are standardised with them inside the model.
    bayesian : bool, default False
        Make the head a :class:`~activebatch.learning.models.BayesianLinear` (Bayes by Backprop).

    Inputs have shape (N, C, H, W) or (N, C*H*W); any H, W >= 8 works (global pooling).
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *, dropout: float = 0.0,
                 input_shape: tuple[int, int, int] | None = None, mean: Any = None, std: Any = None,
                 bayesian: bool = False) -> None:
        super().__init__()
        _check(in_channels, n_classes, dropout)
        self.in_channels, self.n_classes, self.embedding_dim = in_channels, n_classes, 512
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.input_norm = make_input_norm(mean, std)
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, planes_in = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(planes_in, planes, stride), BasicBlock(planes, planes, 1)))
            planes_in = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dropout = nn.Dropout(dropout)
        self.head = linear_head(512, n_classes, bayesian)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(as_images(x, self.in_channels, self.input_shape))
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.dropout(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def _check(in_channels: int, n_classes: int, dropout: float) -> None:
    if in_channels < 1 or n_classes < 2:
        raise ValueError(f"need in_channels >= 1 and n_classes >= 2, got {in_channels} and {n_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
