"""CLUE's pieces that are plain maths: tempered predictive entropy, and one candidate per centre.

Prabhu, Chandrasekaran, Saenko & Hoffman, "Active Domain Adaptation via Clustering
Uncertainty-weighted Embeddings", ICCV 2021. The weighted k-means itself is scikit-learn's
(:class:`activebatch.strategies.clue.CLUE`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .factors import _to_torch
from .rowblocks import rows_per_block

__all__ = ["tempered_entropy", "nearest_to_centres"]


def tempered_entropy(probs_N_K: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy (nats) of softmax(logits / T) for every row, shape (N,), float64.

    The logits are recovered as log p up to a constant per row, which softmax ignores, so the
    tempered distribution is p^(1/T) / sum_k p_k^(1/T); T = 1 gives the plain predictive entropy.
    """
    p = probs_N_K.to(torch.float64)
    if temperature != 1.0:
        p = torch.softmax(torch.log(p) / float(temperature), dim=1)
    return -torch.special.xlogy(p, p).sum(dim=1)


def nearest_to_centres(embeddings_N_d: Any, centres_C_d: Any) -> tuple[np.ndarray, np.ndarray]:
    """A distinct candidate for every centre: its nearest candidate by Euclidean distance.

    When several centres have the same nearest candidate, the centre closest to it keeps it (ties:
    the lowest centre index) and the others take their nearest candidate among those not yet
    taken, repeatedly, until every centre has its own (C <= N). Distances are found a block of
    candidate rows at a time (|a|^2 + |b|^2 - 2 a.b in float64, ties to the lowest candidate),
    never as a whole C x N matrix.

    Parameters
    ----------
    embeddings_N_d : tensor, array or memory map of shape (N, d)
    centres_C_d : tensor or array of shape (C, d)

    Returns
    -------
    chosen : ndarray of int64, shape (C,)
        The candidate of each centre, distinct.
    sqdist : ndarray of float64, shape (C,)
        Its squared distance to the centre.
    """
    device = embeddings_N_d.device if isinstance(embeddings_N_d, torch.Tensor) else torch.device("cpu")
    c = _to_torch(centres_C_d, device, torch.float64)
    N, d, C = int(embeddings_N_d.shape[0]), int(embeddings_N_d.shape[1]), int(c.shape[0])
    if C > N:
        raise ValueError(f"{C} centres need at least as many candidates, got {N}")
    c_sq = (c * c).sum(dim=1)
    chosen = np.full(C, -1, dtype=np.int64)
    dist = np.zeros(C, dtype=np.float64)
    taken = torch.zeros(N, dtype=torch.bool, device=device)
    pending = np.arange(C)
    rows = rows_per_block(max(C, d))
    while pending.size:
        cp = c[torch.as_tensor(pending, device=device)]
        best = torch.full((pending.size,), float("inf"), dtype=torch.float64, device=device)
        arg = torch.full((pending.size,), -1, dtype=torch.int64, device=device)
        for start in range(0, N, rows):
            stop = min(start + rows, N)
            zb = _to_torch(embeddings_N_d[start:stop], device, torch.float64)
            d2 = torch.addmm(c_sq[torch.as_tensor(pending, device=device)][None, :], zb, cp.T, alpha=-2.0)
            d2.add_((zb * zb).sum(dim=1, keepdim=True)).clamp_min_(0.0)
            d2[taken[start:stop]] = float("inf")
            val, pos = d2.min(dim=0)                       # first minimum: the lowest candidate
            better = val < best                            # strictly: an earlier block keeps a tie
            best = torch.where(better, val, best)
            arg = torch.where(better, pos + start, arg)
        cand, val = arg.cpu().numpy(), best.cpu().numpy()
        # Each claimed candidate goes to its closest claimant (ties: the lowest centre index).
        order = np.lexsort((pending, val, cand))
        first = np.ones(order.size, dtype=bool)
        first[1:] = cand[order][1:] != cand[order][:-1]
        won = order[first]
        chosen[pending[won]] = cand[won]
        dist[pending[won]] = val[won]
        taken[torch.as_tensor(cand[won], device=device)] = True
        pending = np.setdiff1d(pending, pending[won], assume_unique=True)
    return chosen, dist
