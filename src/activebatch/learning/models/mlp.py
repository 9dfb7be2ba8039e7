"""The BADGE paper's two-layer perceptron."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import EmbeddingModel
from .bayesian import linear_head
from .normalize import make_input_norm

__all__ = ["MLP", "embedding_width"]

#: Embedding widths used by Ash et al. (ICLR 2020, section 4) for the MLP.
_WIDTH = {"image": 256, "tabular": 1024}


def embedding_width(kind: str) -> int:
    """The paper's MLP embedding width for a data ``kind`` ("image" -> 256, "tabular" -> 1024)."""
    if kind not in _WIDTH:
        raise ValueError(f"kind must be one of {sorted(_WIDTH)}, got {kind!r}")
    return _WIDTH[kind]


class MLP(EmbeddingModel):
    """Two-layer ReLU perceptron: ``head(dropout(relu(W1 x + b1)))``.

    The penultimate embedding is the hidden ReLU layer, as in the BADGE authors' ``mlpMod``.

    Parameters
    ----------
    n_features : int
        Input width (inputs of any shape (N, ...) are flattened).
    n_classes : int
        Number of output classes K.
    embedding_dim : int, default 256
        Hidden width d (the paper uses 256 for images and 1024 for tabular data; see
        :func:`embedding_width`).
    dropout : float, default 0.0
        Dropout on the embedding before the head (used by MC-dropout strategies).
    mean, std : array of shape (C,), optional
        Per-channel (or per-feature) input statistics in the units of the data; inputs are
        standardised with them inside the model (so images can be stored as uint8).
    bayesian : bool, default False
        Make the head a :class:`~activebatch.learning.models.BayesianLinear` (Bayes by Backprop:
        a Gaussian posterior over its weights, sampled for ``mc_probs``).
    """

    def __init__(self, n_features: int, n_classes: int, embedding_dim: int = 256, dropout: float = 0.0,
                 *, mean: Any = None, std: Any = None, bayesian: bool = False) -> None:
        super().__init__()
        if n_features < 1 or n_classes < 2 or embedding_dim < 1:
            raise ValueError("MLP needs n_features >= 1, n_classes >= 2 and embedding_dim >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_features, self.n_classes, self.embedding_dim = n_features, n_classes, embedding_dim
        self.input_norm = make_input_norm(mean, std)
        self.hidden = nn.Linear(n_features, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = linear_head(embedding_dim, n_classes, bayesian)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.relu(self.hidden(self.input_norm(x.float()).flatten(1))))
