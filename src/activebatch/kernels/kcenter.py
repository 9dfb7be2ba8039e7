"""Greedy furthest-first k-center traversal (Gonzalez 1985), as used by core-set selection."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["kcenter_greedy", "min_sqdist_to_centers"]

# Rows of the centre matrix handled per block: bounds memory at N x BLOCK distances.
_BLOCK = 1024


def _sqdist(x: torch.Tensor, x_sqn: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (N, C) in float64 via ||x||^2 + ||c||^2 - 2 x.c."""
    c64 = c.to(torch.float64)
    cross = (x @ c.to(x.dtype).T).to(torch.float64)
    return (x_sqn[:, None] + (c64 * c64).sum(dim=1)[None, :] - 2.0 * cross).clamp_min_(0.0)


def min_sqdist_to_centers(x: torch.Tensor, centers: torch.Tensor, *, block: int = _BLOCK) -> torch.Tensor:
    """min_c ||x_i - c||^2 for each row of x, shape (N,), float64; +inf when there are no centres.

    The centres are processed in blocks of ``block`` rows, so memory stays O(N * block).
    """
    N = x.shape[0]
    out = torch.full((N,), float("inf"), dtype=torch.float64, device=x.device)
    x_sqn = (x.to(torch.float64) ** 2).sum(dim=1)
    for start in range(0, centers.shape[0], block):
        d2 = _sqdist(x, x_sqn, centers[start:start + block].to(x.device))
        torch.minimum(out, d2.min(dim=1).values, out=out)
    return out


def kcenter_greedy(x: torch.Tensor, n: int, *, centers: torch.Tensor | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Greedy furthest-first traversal: repeatedly pick the point furthest from all centres.

    Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
    ICLR 2018, Algorithm 1 (k-Center-Greedy): with s the labeled set, repeat
    u = argmax_{i not in s} min_{j in s} ||x_i - x_j||, s = s + {u}.

    Parameters
    ----------
    x : tensor of shape (N, d)
        Candidate embeddings.
    n : int
        Number of points to pick.
    centers : tensor of shape (L, d), optional
        Embeddings of the already labeled items, which the traversal is conditioned on.
    rng : numpy.random.Generator, optional
        Used only when there are no centres: the first point is then drawn uniformly.

    Returns
    -------
    ndarray of shape (n,)
        Distinct row positions in the order picked. Ties go to the lowest index.
    """
    N = x.shape[0]
    x_sqn = (x.to(torch.float64) ** 2).sum(dim=1)
    order: list[int] = []
    if centers is not None and centers.shape[0] > 0:
        mind = min_sqdist_to_centers(x, centers)
    else:
        if rng is None:
            raise ValueError("kcenter_greedy needs centers or an rng to choose the first point")
        first = int(rng.integers(N))
        order.append(first)
        mind = _sqdist(x, x_sqn, x[first:first + 1])[:, 0]
        mind[first] = -1.0
    while len(order) < n:
        # Chosen points carry distance -1, so argmax (first index on ties) never repeats one.
        nxt = int(torch.argmax(mind))
        order.append(nxt)
        if len(order) == n:
            break
        torch.minimum(mind, _sqdist(x, x_sqn, x[nxt:nxt + 1])[:, 0], out=mind)
        mind[nxt] = -1.0
    return np.asarray(order, dtype=np.int64)
