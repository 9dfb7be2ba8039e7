"""Torch models exposing ``embed(x)`` and a final linear ``head``."""
from .base import EmbeddingModel
from .mlp import MLP, embedding_width

__all__ = ["EmbeddingModel", "MLP", "embedding_width"]
