"""Greedy furthest-first k-center traversal (Gonzalez 1985), as used by core-set selection.

Exact and fast by lazy evaluation. Every point keeps an upper bound S(i) >= its true distance to
the nearest centre (true when computed, then stale as centres are added: distances only shrink).
To find the furthest point, the T points with the largest bounds are brought up to date against
the centres added since; if the best of them is at least the (T+1)-th largest bound, no other
point can beat it (its true value is at most its bound), and it is the exact argmax. Otherwise T
doubles. A full refresh of all bounds is one blocked matrix product over the pool. Picks, ties
included (lowest index), are those of the plain algorithm; memory is O((N + L) d), never N x L.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["kcenter_greedy", "min_sqdist_to_centers"]

# Rows of the centre matrix handled per block: bounds memory at N x BLOCK distances.
_BLOCK = 1024


def _min_sqdist(x: torch.Tensor, x_sqn: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """min_c ||x_i - c||^2 for one block of centres, (N,) float64.

    Uses ||x||^2 + min_c (||c||^2 - 2 x.c): the (N, C) block is formed once, in the inputs' dtype,
    and reduced in place before anything is widened to float64.
    """
    c = c.to(device=x.device, dtype=x.dtype)
    block = x @ c.T
    block.mul_(-2.0).add_((c * c).sum(dim=1)[None, :])
    return (block.min(dim=1).values.to(torch.float64) + x_sqn).clamp_min_(0.0)


def _sqdist(x: torch.Tensor, x_sqn: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (N, C) in float64 via ||x||^2 + ||c||^2 - 2 x.c."""
    c64 = c.to(torch.float64)
    cross = (x @ c.to(x.dtype).T).to(torch.float64)
    return (x_sqn[:, None] + (c64 * c64).sum(dim=1)[None, :] - 2.0 * cross).clamp_min_(0.0)


def min_sqdist_to_centers(x: torch.Tensor, centers: torch.Tensor, *, block: int = _BLOCK,
                          x_sqn: torch.Tensor | None = None) -> torch.Tensor:
    """min_c ||x_i - c||^2 for each row of x, shape (N,), float64; +inf when there are no centres.

    The centres are processed in blocks of ``block`` rows, so memory stays O(N * block).
    """
    N = x.shape[0]
    out = torch.full((N,), float("inf"), dtype=torch.float64, device=x.device)
    if x_sqn is None:
        x_sqn = (x.to(torch.float64) ** 2).sum(dim=1)
    for start in range(0, centers.shape[0], block):
        torch.minimum(out, _min_sqdist(x, x_sqn, centers[start:start + block]), out=out)
    return out


def kcenter_greedy(x: torch.Tensor, n: int, *, centers: torch.Tensor | None = None,
                   rng: np.random.Generator | None = None, top: int = 64, refresh_every: int = 256) -> np.ndarray:
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
    top : int
        Initial number of candidates brought up to date per pick (doubles when needed).
    refresh_every : int
        Picks between full refreshes of all bounds.

    Returns
    -------
    ndarray of shape (n,)
        Distinct row positions in the order picked. Ties go to the lowest index.
    """
    N = x.shape[0]
    dev = x.device
    x_sqn = (x.to(torch.float64) ** 2).sum(dim=1)
    order: list[int] = []
    if centers is not None and centers.shape[0] > 0:
        S = min_sqdist_to_centers(x, centers, x_sqn=x_sqn)
    else:
        if rng is None:
            raise ValueError("kcenter_greedy needs centers or an rng to choose the first point")
        first = int(rng.integers(N))
        order.append(first)
        S = _sqdist(x, x_sqn, x[first:first + 1])[:, 0]
    picked = torch.zeros(N, dtype=torch.bool, device=dev)
    for i in order:
        picked[i] = True
    S.masked_fill_(picked, -1.0)  # picked points carry -1: never the argmax again
    # stamp[i]: number of picks already folded into S[i]
    stamp = torch.full((N,), len(order), dtype=torch.long, device=dev)
    picks = x.new_empty((n, x.shape[1]))
    for k, i in enumerate(order):
        picks[k] = x[i]
    since_refresh = 0
    T = min(top, N)
    while len(order) < n:
        m = len(order)
        if since_refresh >= refresh_every:
            lag = int(m - stamp.min())
            if lag:
                S = torch.minimum(S, min_sqdist_to_centers(x, picks[m - lag:m], x_sqn=x_sqn))
                S.masked_fill_(picked, -1.0)
                stamp.fill_(m)
            since_refresh = 0
        while True:
            k = min(T + 1, N)
            vals, cand = torch.topk(S, k)
            c = cand[:T] if k > T else cand
            stale = stamp[c] < m
            if bool(stale.any()):
                # candidates seen at the last pick need one distance; the rest, their whole lag
                for group in (c[stale & (stamp[c] == m - 1)], c[stale & (stamp[c] < m - 1)]):
                    if group.numel():
                        lo = int(stamp[group].min())
                        d2 = min_sqdist_to_centers(x[group], picks[lo:m], x_sqn=x_sqn[group])
                        S[group] = torch.where(picked[group], S[group], torch.minimum(S[group], d2))
                        stamp[group] = m
            cvals = S[c]
            best = cvals.max()
            bound = vals[T] if k > T else torch.tensor(-2.0, dtype=S.dtype, device=dev)
            if best > bound or k <= T:
                break
            if T >= N:
                break
            T = min(2 * T, N)  # a tie with, or a loss to, an unchecked bound: look further
        # lowest index among the exact maxima of the candidates
        ties = c[cvals == best]
        nxt = int(ties.min())
        order.append(nxt)
        picks[m] = x[nxt]
        picked[nxt] = True
        S[nxt] = -1.0
        since_refresh += 1
        T = max(min(top, N), T // 2)
    return np.asarray(order, dtype=np.int64)
