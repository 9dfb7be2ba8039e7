"""The model contract: ``embed(x)`` then a final ``nn.Linear`` head."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["EmbeddingModel"]


class EmbeddingModel(nn.Module):
    """Base class of activebatch models: ``forward(x) = head(embed(x))``.

    Subclasses define ``embed`` (input -> penultimate embedding of width ``embedding_dim``) and set
    ``self.head`` to the final ``nn.Linear(embedding_dim, n_classes)``. Any torch module with the
    same two members works with the :class:`~activebatch.Learner`.
    """

    head: nn.Linear
    embedding_dim: int
    n_classes: int

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement embed(x) -> (N, embedding_dim)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def reset_parameters(self) -> None:
        """Re-initialise every sub-module that knows how to (fresh model, as each round of the
        BADGE protocol requires)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
