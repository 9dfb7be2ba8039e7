"""k-means++ seeding (D^2 sampling) on factorised gradient embeddings: the core of BADGE."""
from __future__ import annotations

import numpy as np
import torch

from .gradient_embedding import gradient_embedding_sqdist, gradient_embedding_sqnorms

__all__ = ["kmeanspp_gradient", "sample_d2"]


def sample_d2(weights: torch.Tensor, rng: np.random.Generator) -> int:
    """Draw one index with probability proportional to the non-negative ``weights``.

    The cumulative sum runs in float64; a uniform variate from ``rng`` is located by binary
    search, so the same seed gives the same draw on any device. Entries of weight zero are never
    drawn. Returns -1 when every weight is zero.
    """
    cs = torch.cumsum(weights.to(torch.float64), dim=0)
    total = float(cs[-1])
    if not total > 0.0:
        return -1
    x = torch.tensor([rng.random() * total], dtype=torch.float64, device=cs.device)
    idx = int(torch.searchsorted(cs, x, right=True)[0])
    if idx >= cs.shape[0]:  # u * total rounded up to total: take the last positive weight
        idx = int(torch.nonzero(weights > 0)[-1, 0])
    return idx


def kmeanspp_gradient(u: torch.Tensor, z: torch.Tensor, n: int, rng: np.random.Generator, *,
                      init: str = "norm") -> np.ndarray:
    """k-means++ seeding of n centres on gradient embeddings g_i = u_i (outer) z_i.

    Arthur & Vassilvitskii (2007) seeding as used by BADGE (Ash et al., ICLR 2020, Algorithm 1):
    after the first centre, each further centre is drawn with probability proportional to its
    squared distance to the nearest centre chosen so far (D^2 sampling). Chosen points have
    distance zero and are never drawn again. Distances use the factorised form, so memory is
    O(N (K + d)) and each step costs O(N (K + d)).

    Parameters
    ----------
    u : tensor of shape (N, K)
        p - e_y^ for each candidate (see :func:`gradient_embedding_factors`).
    z : tensor of shape (N, d)
        Penultimate-layer embeddings.
    n : int
        Number of centres, 1 <= n <= N.
    rng : numpy.random.Generator
        Source of all randomness.
    init : {"norm", "random"}
        First centre: the point of largest gradient-embedding norm (ties: lowest index), or a
        uniformly random point as in the paper's Algorithm 1.

    Returns
    -------
    ndarray of shape (n,)
        Distinct row positions, in the order they were chosen.

    Notes
    -----
    When every remaining point has zero distance to the chosen centres (duplicates, or a pool on
    which the model is fully confident so that all gradient embeddings vanish), D^2 sampling is
    undefined; the remaining centres are then drawn uniformly without replacement from the points
    not yet chosen. This is the limit of D^2 sampling with distances all equal.
    """
    N = u.shape[0]
    if init not in ("norm", "random"):
        raise ValueError(f"init must be 'norm' or 'random', got {init!r}")
    sqn = gradient_embedding_sqnorms(u, z)
    chosen = np.zeros(N, dtype=bool)
    order: list[int] = []

    if init == "norm":
        first = int(torch.argmax(sqn))
    else:
        first = int(rng.integers(N))
    order.append(first)
    chosen[first] = True
    mind = torch.full((N,), float("inf"), dtype=torch.float64, device=u.device)
    chosen_t = torch.zeros(N, dtype=torch.bool, device=u.device)
    last = first
    while len(order) < n:
        d2 = gradient_embedding_sqdist(u, z, u[last:last + 1], z[last:last + 1], sqnorms=sqn)[:, 0]
        torch.minimum(mind, d2, out=mind)
        chosen_t[last] = True
        mind.masked_fill_(chosen_t, 0.0)
        nxt = sample_d2(mind, rng)
        if nxt < 0:
            rest = np.flatnonzero(~chosen)
            nxt = int(rest[rng.integers(rest.size)])
        order.append(nxt)
        chosen[nxt] = True
        last = nxt
    return np.asarray(order, dtype=np.int64)
