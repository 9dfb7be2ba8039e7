"""Torch models exposing ``embed(x)`` and a final linear ``head``.

- :class:`MLP` — the BADGE paper's two-layer perceptron;
- :class:`CNN` — a small convolutional network for fast CPU runs;
- :class:`ResNet18` — the paper's CIFAR-style ResNet-18 (512-d embedding);
- :class:`LinearHead` — a linear classifier on pretrained or precomputed features;
- :class:`BayesianLinear` — a Bayes-by-Backprop head (``bayesian=True`` in the models above);
- :func:`for_dataset` — any of them sized and standardised for a data set.
"""
from .base import EmbeddingModel
from .bayesian import BayesianLinear
from .cnn import CNN
from .factory import ARCHITECTURES, for_dataset
from .features import LinearHead, extract_features, open_features
from .mlp import MLP, embedding_width
from .normalize import Standardize
from .resnet import ResNet18

__all__ = ["ARCHITECTURES", "BayesianLinear", "CNN", "EmbeddingModel", "LinearHead", "MLP", "ResNet18", "Standardize",
           "embedding_width", "extract_features", "for_dataset", "open_features"]
