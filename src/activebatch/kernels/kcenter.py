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
_BLOCK = 256


def _sqnorms(x: torch.Tensor, rows: int = 16384) -> torch.Tensor:
    """||x_i||^2 in float64, a block of rows at a time (no float64 copy of x)."""
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        out[start:start + rows] = (x[start:start + rows].to(torch.float64) ** 2).sum(dim=1)
    return out


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
        x_sqn = _sqnorms(x)
    for start in range(0, centers.shape[0], block):
        torch.minimum(out, _min_sqdist(x, x_sqn, centers[start:start + block]), out=out)
    return out


def _rounding_slack(x: torch.Tensor, x_sqn: torch.Tensor, c_sqn_max: float) -> torch.Tensor | None:
    """Per-point bound on the rounding error of a squared distance computed in x's dtype.

    A dot product of length d in precision eps errs by at most gamma_d |x||c| with
    gamma_d = d eps / (1 - d eps) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1);
    the norms and the sums add a few eps more. None for float64 inputs (treated as exact).
    """
    if x.dtype == torch.float64:
        return None
    eps = torch.finfo(x.dtype).eps
    d = x.shape[1] + 2
    gamma = d * eps / (1 - d * eps)
    return 2.0 * gamma * (x_sqn + c_sqn_max) + 4 * eps * (x_sqn + c_sqn_max)


def kcenter_greedy(x: torch.Tensor, n: int, *, centers: torch.Tensor | None = None,
                   rng: np.random.Generator | None = None, top: int = 64, refresh_every: int = 1024) -> np.ndarray:
    """Greedy furthest-first traversal: repeatedly pick the point furthest from all centres.

    Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
    ICLR 2018, Algorithm 1 (k-Center-Greedy): with s the labeled set, repeat
    u = argmax_{i not in s} min_{j in s} ||x_i - x_j||, s = s + {u}.

    Every decision is taken on distances computed in float64 (as the plain algorithm does);
    float32 inputs only make the bulk passes over the pool faster, and those passes yield upper
    bounds widened by a rounding-error bound, never decisions.

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
        Picks between passes that fold the latest picks into every point's bound.

    Returns
    -------
    ndarray of shape (n,)
        Distinct row positions in the order picked. Ties go to the lowest index.
    """
    N = x.shape[0]
    dev = x.device
    x_sqn = _sqnorms(x)
    has_centers = centers is not None and centers.shape[0] > 0
    c64 = centers.to(device=dev, dtype=torch.float64) if has_centers else None
    c_sqn_max = float(max(float(x_sqn.max()), float((c64 ** 2).sum(1).max()) if has_centers else 0.0))
    slack = _rounding_slack(x, x_sqn, c_sqn_max)
    order: list[int] = []
    if has_centers:
        S = min_sqdist_to_centers(x, centers, x_sqn=x_sqn)
    else:
        if rng is None:
            raise ValueError("kcenter_greedy needs centers or an rng to choose the first point")
        first = int(rng.integers(N))
        order.append(first)
        S = _min_sqdist(x, x_sqn, x[first:first + 1])
    # S: upper bound on each point's squared distance to its nearest centre. exact[i]: S[i] is the
    # float64 distance to the labeled centres and to picks[:stamp[i]].
    exact = torch.full((N,), slack is None, dtype=torch.bool, device=dev)
    if slack is not None:
        S = S + slack
    picked = torch.zeros(N, dtype=torch.bool, device=dev)
    for i in order:
        picked[i] = True
    S.masked_fill_(picked, -1.0)  # picked points carry -1: never the argmax again
    stamp = torch.full((N,), len(order), dtype=torch.long, device=dev)
    picks = torch.empty((n, x.shape[1]), dtype=torch.float64, device=dev)
    for k, i in enumerate(order):
        picks[k] = x[i].to(torch.float64)
    folded = len(order)  # picks folded into every bound by the last refresh
    T = min(top, N)
    while len(order) < n:
        m = len(order)
        if m - folded >= refresh_every:
            r = min_sqdist_to_centers(x, picks[folded:m].to(x.dtype), x_sqn=x_sqn)
            if slack is not None:
                r = r + slack
            lower = (r < S) & ~picked
            S = torch.where(lower, r, S)
            exact &= ~lower | (slack is None)
            stamp = torch.where(lower | ~exact, torch.full_like(stamp, m), stamp)
            folded = m
        while True:
            k = min(T + 1, N)
            vals, cand = torch.topk(S, k)
            c = cand[:T] if k > T else cand
            _make_exact(x, x_sqn, c, S, exact, stamp, picked, c64, picks, m)
            cvals = S[c]
            best = cvals.max()
            if k <= T or T >= N or best > vals[T]:
                break
            T = min(2 * T, N)  # a tie with, or a loss to, an unchecked bound: look further
        ties = c[cvals == best]  # lowest index among the exact maxima
        nxt = int(ties.min())
        order.append(nxt)
        picks[m] = x[nxt].to(torch.float64)
        picked[nxt] = True
        S[nxt] = -1.0
        T = max(min(top, N), T // 2)
    return np.asarray(order, dtype=np.int64)


def _make_exact(x: torch.Tensor, x_sqn: torch.Tensor, c: torch.Tensor, S: torch.Tensor, exact: torch.Tensor,
                stamp: torch.Tensor, picked: torch.Tensor, c64: torch.Tensor | None, picks: torch.Tensor,
                m: int) -> None:
    """Bring candidates ``c`` to their float64 distance to the labeled centres and picks[:m]."""
    c = c[~picked[c]]
    fresh = c[~exact[c]]
    if fresh.numel():  # first visit of a bounded point: its full distance, in float64
        xf = x[fresh].to(torch.float64)
        d2 = torch.full((fresh.numel(),), float("inf"), dtype=torch.float64, device=x.device)
        if c64 is not None:
            d2 = torch.minimum(d2, min_sqdist_to_centers(xf, c64, x_sqn=x_sqn[fresh]))
        if m:
            d2 = torch.minimum(d2, min_sqdist_to_centers(xf, picks[:m], x_sqn=x_sqn[fresh]))
        S[fresh] = d2
        exact[fresh] = True
        stamp[fresh] = m
    stale = c[exact[c] & (stamp[c] < m)]
    # candidates seen at the last pick need one distance; the rest, their whole lag
    for group in (stale[stamp[stale] == m - 1], stale[stamp[stale] < m - 1]):
        if group.numel():
            lo = int(stamp[group].min())
            d2 = min_sqdist_to_centers(x[group].to(torch.float64), picks[lo:m], x_sqn=x_sqn[group])
            S[group] = torch.minimum(S[group], d2)
            stamp[group] = m
