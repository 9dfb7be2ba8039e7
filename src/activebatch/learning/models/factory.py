"""Build the paper's architectures for a data set, with its input standardisation."""
from __future__ import annotations

from typing import Any

from .base import EmbeddingModel
from .cnn import CNN
from .mlp import MLP, embedding_width
from .resnet import ResNet18

__all__ = ["ARCHITECTURES", "for_dataset"]

ARCHITECTURES = ("mlp", "cnn", "resnet18")


def for_dataset(data: Any, arch: str = "mlp", *, dropout: float = 0.0, bayesian: bool = False,
                **kwargs: Any) -> EmbeddingModel:
    """The architecture ``arch`` sized for ``data`` (a :class:`~activebatch.datasets.Dataset`).

    Parameters
    ----------
    data : Dataset
        Supplies ``n_features``, ``n_classes``, ``kind``, ``image_shape`` and the per-channel
        ``mean``/``std`` used to standardise inputs inside the model (so uint8 images are fed
        as they are stored).
    arch : {"mlp", "cnn", "resnet18"}
        ``"mlp"``: the paper's two-layer perceptron, width 256 for images and 1024 for tabular data
        (override with ``embedding_dim=``); ``"cnn"``: :class:`CNN`; ``"resnet18"``: :class:`ResNet18`
        (both need an image data set).
    dropout : float, default 0.0
        Dropout before the head (for MC dropout).
    bayesian : bool, default False
        A Bayes-by-Backprop head (:class:`~activebatch.learning.models.BayesianLinear`), whose
        weight samples give ``mc_probs``.
    **kwargs
        Passed on to the model's constructor.
    """
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    if arch == "mlp":
        kwargs.setdefault("embedding_dim", embedding_width(data.kind))
        return MLP(data.n_features, data.n_classes, dropout=dropout, mean=mean, std=std, bayesian=bayesian, **kwargs)
    if arch in ("cnn", "resnet18"):
        shape = getattr(data, "image_shape", None)
        if shape is None or len(shape) != 3:
            raise ValueError(f"architecture {arch!r} needs an image data set; {data.name!r} has no (C, H, W) "
                             f"image_shape")
        cls = CNN if arch == "cnn" else ResNet18
        return cls(in_channels=shape[0], n_classes=data.n_classes, dropout=dropout, input_shape=tuple(shape),
                   mean=mean, std=std, bayesian=bayesian, **kwargs)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
