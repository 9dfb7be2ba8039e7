"""Consistent MC dropout: S fixed dropout masks on the embedding, shared by every pool item.

MC dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016) treats each
dropout mask as a sample w_s of the parameters: S stochastic forward passes give
p(y | x, w_s), s = 1..S. Joint acquisition functions compare the predictions of *different* pool
items under the *same* w_s, so every item must see the same S masks (Kirsch, van Amersfoort &
Gal, NeurIPS 2019, section 4: "consistent MC dropout"); fresh masks per forward pass make the
joint entropies noise.

activebatch models apply their dropout, an ``nn.Dropout`` named ``dropout``, as the last step of
``embed(x)``, right before the linear ``head``. In eval mode ``embed`` returns the embedding z
without dropout; sample s is then ``softmax(head(m_s * z / (1 - p)))`` for S Bernoulli(1 - p)
masks m_s drawn once over the embedding width from a seed. The network below the head runs once
per item, the S passes are one batched (S, chunk, d) product, and an item's S predictions do not
depend on where it sits in the pool or on the chunking.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = ["consistent_masks", "head_dropout", "mc_head_probs"]

#: Elements of one (S, chunk, d) block of masked embeddings.
_BLOCK_ELEMENTS = 1 << 22


def head_dropout(model: nn.Module) -> float:
    """The rate p of the model's dropout before the head (``model.dropout``), or 0.0 if none.

    Warns when the model has further dropout layers with p > 0: consistent MC dropout samples
    only the one before the head, the others stay inactive (eval mode).
    """
    drop = getattr(model, "dropout", None)
    p = float(drop.p) if isinstance(drop, nn.Dropout) else 0.0
    others = [name for name, m in model.named_modules()
              if isinstance(m, nn.modules.dropout._DropoutNd) and m is not drop and m.p > 0]
    if p > 0 and others:
        warnings.warn(f"MC dropout samples only the dropout before the head; the dropout layers {others} "
                      "stay inactive", stacklevel=3)
    return p


def consistent_masks(width: int, n_samples: int, p: float, seed: int, *,
                     device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
                     ) -> torch.Tensor:
    """S inverted-dropout masks over an embedding of width d: entries 0 or 1 / (1 - p).

    Parameters
    ----------
    width : int
        Embedding width d.
    n_samples : int
        Number S of masks.
    p : float
        Dropout rate, 0 <= p < 1 (``nn.Dropout`` drops each unit with probability p and scales
        the survivors by 1 / (1 - p)).
    seed : int
        The masks are drawn on the CPU from this seed, so they are the same on every device.

    Returns
    -------
    tensor of shape (S, d)
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {p}")
    gen = torch.Generator().manual_seed(int(seed))
    keep = torch.rand(n_samples, width, generator=gen, dtype=torch.float64) >= p
    return (keep.to(dtype) / (1.0 - p)).to(device)


def mc_head_probs(z: torch.Tensor, head: nn.Module, masks: torch.Tensor) -> torch.Tensor:
    """softmax(head(m_s * z)) for every mask m_s: (S, n, K).

    Parameters
    ----------
    z : tensor of shape (n, d)
        Embeddings before dropout (``embed(x)`` in eval mode).
    head : nn.Module
        The final layer, mapping (..., d) to (..., K).
    masks : tensor of shape (S, d)
        From :func:`consistent_masks`.
    """
    S, d = masks.shape
    step = max(1, _BLOCK_ELEMENTS // (S * d))
    masks = masks.to(z.device, z.dtype)
    parts = [torch.softmax(head(masks[:, None, :] * z[None, i:i + step, :]), dim=-1)
             for i in range(0, z.shape[0], step)]
    return torch.cat(parts, dim=1) if parts else z.new_zeros(S, 0, int(head.out_features))
