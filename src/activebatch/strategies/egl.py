"""Expected gradient length of the final layer, in closed form."""
from __future__ import annotations

import numpy as np
import torch

from ..learning.evidence import Evidence
from .base import Strategy, _ranked, register

__all__ = ["EGL", "egl_scores"]


def egl_scores(probs: torch.Tensor, embeddings: torch.Tensor, *, bias: bool = False) -> torch.Tensor:
    """Expected final-layer gradient length sum_y p_y ||grad_W l(x, y)||, shape (N,), float64.

    For the cross-entropy loss of a final linear layer W (K x d) on the embedding z, the
    gradient for label y is (p - e_y) (outer) z, whose Frobenius norm is |p - e_y| |z|, and
    |p - e_y|^2 = |p|^2 - 2 p_y + 1. So the expectation over y ~ p costs O(N (K + d)), with no
    backward pass.

    Parameters
    ----------
    probs : tensor of shape (N, K)
    embeddings : tensor of shape (N, d)
    bias : bool, default False
        Include the bias of the final layer (its gradient is p - e_y), so |z| becomes
        sqrt(|z|^2 + 1).
    """
    p = probs.to(device=embeddings.device, dtype=torch.float64)
    z = embeddings.to(torch.float64)
    u_norm = ((p * p).sum(dim=1, keepdim=True) - 2.0 * p + 1.0).clamp_min(0.0).sqrt()   # (N, K): |p - e_y|
    z_sq = (z * z).sum(dim=1)
    z_norm = (z_sq + 1.0).sqrt() if bias else z_sq.sqrt()
    return (p * u_norm).sum(dim=1) * z_norm


@register
class EGL(Strategy):
    """Expected gradient length (Settles, Craven & Ray, "Multiple-Instance Active Learning",
    NIPS 2008; Settles 2009, section 3.4) for the final layer.

    Queries the candidates whose labeling would change the model most, measured by the length
    of the training gradient they would add, in expectation over the model's own predictive
    distribution: EGL(x) = sum_y p(y | x) ||grad l(x, y)||. As in Settles et al., the gradient of
    the loss on the labeled set is taken to be zero at convergence, so only x's own gradient
    counts. The gradient is that of the final linear layer (:func:`egl_scores`, exact and in
    closed form); the n largest scores are taken, ties to the lowest index.

    Parameters
    ----------
    bias : bool, default False
        Include the final layer's bias in the gradient.
    """

    name = "egl"
    needs = frozenset({"probs", "embeddings"})

    def __init__(self, bias: bool = False) -> None:
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be True or False, got {bias!r}")
        self.bias = bias

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        scores = evidence.rowwise(lambda p, z: egl_scores(p, z, bias=self.bias), "probs", "embeddings")
        return _ranked(scores, n, largest=True)
