"""BADGE's hallucinated last-layer gradient embedding, in factorised form.

For a final linear layer W (K x d), penultimate embedding z and softmax output p, the gradient of
the cross-entropy loss at the *predicted* label y^ = argmax p with respect to W is

    g = (p - e_y^) (outer) z                                          (Ash et al., ICLR 2020, eq. 1)

a K*d vector that is never materialised here. With u = p - e_y^, inner products and distances
factor exactly:

    <g_a, g_b>      = (u_a . u_b) (z_a . z_b)
    ||g_a - g_b||^2 = |u_a|^2 |z_a|^2 + |u_b|^2 |z_b|^2 - 2 (u_a . u_b)(z_a . z_b)

so every quantity costs O(K + d) per pair instead of O(K d).
"""
from __future__ import annotations

import torch

__all__ = ["gradient_embedding_factors", "gradient_embedding_sqnorms", "gradient_embedding_sqdist"]


def gradient_embedding_factors(probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """u = p - e_y, shape (N, K), in float64.

    Parameters
    ----------
    probs : tensor of shape (N, K)
        Softmax outputs.
    labels : tensor of shape (N,), optional
        Label at which the gradient is taken; defaults to the predicted label argmax p (BADGE's
        "hallucinated" label). Ties in argmax go to the lowest class index.
    """
    u = probs.to(torch.float64).clone()
    if labels is None:
        labels = probs.argmax(dim=1)
    u[torch.arange(u.shape[0], device=u.device), labels.to(u.device)] -= 1.0
    return u


def gradient_embedding_sqnorms(u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """||g||^2 = |u|^2 |z|^2 for each row, shape (N,), float64."""
    return (u * u).sum(dim=1) * (z.to(torch.float64) ** 2).sum(dim=1)


def gradient_embedding_sqdist(u: torch.Tensor, z: torch.Tensor, u_c: torch.Tensor, z_c: torch.Tensor,
                              *, sqnorms: torch.Tensor | None = None) -> torch.Tensor:
    """Squared distances ||g_i - g_c||^2 between N points and C centres, shape (N, C), float64.

    Parameters
    ----------
    u, z : tensors of shape (N, K) and (N, d)
        Factors of the points' gradient embeddings.
    u_c, z_c : tensors of shape (C, K) and (C, d)
        Factors of the centres.
    sqnorms : tensor of shape (N,), optional
        Precomputed :func:`gradient_embedding_sqnorms` of the points.
    """
    if sqnorms is None:
        sqnorms = gradient_embedding_sqnorms(u, z)
    c_norms = gradient_embedding_sqnorms(u_c, z_c)
    uu = u.to(torch.float64) @ u_c.to(torch.float64).T
    # The z products run in z's own dtype (the big matrix); they are combined in float64.
    zz = (z @ z_c.to(z.dtype).T).to(torch.float64)
    d2 = sqnorms[:, None] + c_norms[None, :] - 2.0 * uu * zz
    return d2.clamp_min_(0.0)
