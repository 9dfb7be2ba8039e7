"""k-means++ seeding (D^2 sampling) on factorised gradient embeddings: the core of BADGE.

Exact and fast: centres are drawn by rejection sampling from a *stale* D^2 distribution.

Let S(i) be each point's squared distance to the nearest centre as of the last refresh and D(i)
its distance to the nearest centre now (D <= S, since centres are only added). A proposal i drawn
with probability S(i) / sum S and accepted with probability D(i) / S(i) is distributed exactly as
D(i) / sum D: the k-means++ law (Arthur & Vassilvitskii, 2007). Testing a proposal needs only its
distances to the few centres added since the refresh, so most steps never touch the pool; S is
refreshed for a whole block of new centres at once (two matrix products over the pool) when the
acceptance rate drops. Proposals are drawn and tested in vectorised chunks; after a proposal is
accepted the rest of its chunk is re-tested against the new centre, so the i.i.d. proposal
sequence is consumed in order and the law is exact.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .factors import DEFAULT_BLOCK_ROWS, GradientFactors

__all__ = ["kmeanspp_gradient", "badge_kmeanspp", "sample_d2", "accept_chunk", "current_d2"]


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
    return int(_locate(cs, x, weights)[0])


def _locate(cs: torch.Tensor, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Indices i with cs[i-1] <= x < cs[i] (never a zero-weight entry)."""
    idx = torch.searchsorted(cs, x, right=True)
    over = idx >= cs.shape[0]
    if bool(over.any()):  # u * total rounded up to total: take the last positive weight
        idx[over] = int(torch.nonzero(weights > 0)[-1, 0])
    return idx


def _sqdist(u: torch.Tensor, z: torch.Tensor, a: torch.Tensor, uc: torch.Tensor, zc: torch.Tensor,
            ac: torch.Tensor) -> torch.Tensor:
    """||g_i - g_c||^2 = a_i + a_c - 2 (u_i . u_c)(z_i . z_c), (n, c) in float64, clamped at 0."""
    uu = u @ uc.T
    zz = (z @ zc.to(z.dtype).T).to(torch.float64)
    return (a[:, None] + ac[None, :] - 2.0 * uu * zz).clamp_min_(0.0)


def badge_kmeanspp(probs: Any, z: Any, n: int, rng: np.random.Generator, *, init: str = "norm",
                   block_rows: int = DEFAULT_BLOCK_ROWS, return_d2: bool = False,
                   **tuning: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """BADGE selection from probabilities and embeddings (tensors, arrays or memory maps).

    Parameters
    ----------
    probs : (N, K) softmax outputs; z : (N, d) embeddings; n : number of centres;
    rng : numpy Generator; init : "norm" or "random" (see :func:`kmeanspp_gradient`).
    return_d2 : bool, default False
        Also return, for each centre, D^2 at the time it was chosen: its squared distance to
        the nearest earlier centre in gradient-embedding space (float64, shape (n,); +inf for
        the first centre, which has none; 0 for centres drawn uniformly once every remaining
        point coincides with a centre).
    """
    order, d2 = _kmeanspp(GradientFactors(z, probs=probs, block_rows=block_rows), n, rng, init=init, **tuning)
    return (order, d2) if return_d2 else order


def kmeanspp_gradient(u: torch.Tensor, z: torch.Tensor, n: int, rng: np.random.Generator, *,
                      init: str = "norm", **tuning: Any) -> np.ndarray:
    """k-means++ seeding of n centres on gradient embeddings g_i = u_i (outer) z_i.

    Arthur & Vassilvitskii (2007) seeding as used by BADGE (Ash et al., ICLR 2020, Algorithm 1):
    after the first centre, each further centre is drawn with probability proportional to its
    squared distance to the nearest centre chosen so far (D^2 sampling). Chosen points have
    distance zero and are never drawn again. Distances use the factorised form, so memory is
    O(N (K + d)); draws use exact rejection sampling from a stale D^2 (module docstring).

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
    return _kmeanspp(GradientFactors(z, u=u), n, rng, init=init, **tuning)[0]


def _kmeanspp(f: GradientFactors, n: int, rng: np.random.Generator, *, init: str = "norm",
              chunk: int = 1024, refresh_factor: float = 1.0,
              pending_block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Rejection-sampled k-means++ (module docstring): (centres in order, D^2 of each when chosen).

    Tuning (no effect on the law): ``chunk`` proposals are drawn and tested at once; the stale
    distances are refreshed when the expected work of the remaining proposals,
    remaining / acceptance-rate proposals x pending centres, exceeds ``refresh_factor`` times the
    work of a refresh, N x pending centres; ``pending_block`` bounds the proposal x centre blocks.
    """
    if init not in ("norm", "random"):
        raise ValueError(f"init must be 'norm' or 'random', got {init!r}")
    N, dev = f.N, f.device
    a = f.sqnorms()
    first = int(torch.argmax(a)) if init == "norm" else int(rng.integers(N))
    order = [first]
    d2s = [math.inf]   # D^2 of each centre when chosen (the first has no earlier centre)
    chosen = torch.zeros(N, dtype=torch.bool, device=dev)
    chosen[first] = True
    # Factors of the centres, kept small: n x (K + d), filled in place (growing them by
    # concatenation would copy all earlier centres at every step: quadratic in n).
    u0, z0 = f.rows(np.array([first]))
    CU = torch.empty((n, u0.shape[1]), dtype=u0.dtype, device=dev)
    CZ = torch.empty((n, z0.shape[1]), dtype=z0.dtype, device=dev)
    CA = torch.empty(n, dtype=a.dtype, device=dev)
    CU[0], CZ[0], CA[0] = u0[0], z0[0], a[first]
    cu, cz, ca = CU[:1], CZ[:1], CA[:1]
    # Stale distances S: exact with respect to centres [0, fresh).
    S = torch.full((N,), math.inf, dtype=torch.float64, device=dev)
    fresh = 0
    S, cs, total, fresh = _refresh(f, a, S, chosen, cu, cz, ca, fresh)
    rate = 1.0
    while len(order) < n:
        if not total > 0.0:
            d2s += [0.0] * (n - len(order))
            order += _uniform_rest(chosen, n - len(order), rng)
            break
        pending = len(order) - fresh
        remaining = n - len(order)
        # A refresh costs a pass over N points; it pays when the proposals still to come, at the
        # current acceptance rate, would cost more. A run of rejections drives the rate (and so
        # the wait) towards zero, which guarantees a refresh when every pending point is dead.
        if pending > 0 and remaining / max(rate, 1e-300) > refresh_factor * N:
            S, cs, total, fresh = _refresh(f, a, S, chosen, cu, cz, ca, fresh)
            rate = 1.0
            continue
        T = int(min(chunk, max(16, math.ceil(2 * (n - len(order)) / max(rate, 1e-3)))))
        x = torch.as_tensor(rng.random(T) * total, dtype=torch.float64, device=dev)
        v = torch.as_tensor(rng.random(T), dtype=torch.float64, device=dev)
        prop = _locate(cs, x, S)
        pu, pz = f.rows(prop.cpu().numpy())
        pa = a[prop]
        Sp = S[prop]
        D = current_d2(Sp, pu, pz, pa, cu, cz, ca, fresh, pending_block)
        D[chosen[prop]] = 0.0
        accepted, used = accept_chunk(v, Sp, D, prop, pu, pz, pa, n - len(order))
        for t in accepted:
            i = int(prop[t])
            order.append(i)
            d2s.append(float(D[t]))
            chosen[i] = True
            m = len(order)
            CU[m - 1], CZ[m - 1], CA[m - 1] = pu[t], pz[t], pa[t]
            cu, cz, ca = CU[:m], CZ[:m], CA[:m]
        rate = 0.5 * rate + 0.5 * (len(accepted) / max(used, 1))
    return np.asarray(order[:n], dtype=np.int64), np.asarray(d2s[:n], dtype=np.float64)


def accept_chunk(v: torch.Tensor, Sp: torch.Tensor, D: torch.Tensor, prop: torch.Tensor, pu: torch.Tensor,
                 pz: torch.Tensor, pa: torch.Tensor, room: int) -> tuple[list[int], int]:
    """The acceptance tests of one chunk of T proposals, in order (module docstring).

    Proposal t (pool row ``prop[t]``, factors ``pu[t]``, ``pz[t]``, squared norm ``pa[t]``) with
    uniform ``v[t]`` is accepted when v S < D (stale and current D^2, ``Sp`` and ``D``). After an
    acceptance the rest of the chunk is lowered in place by the new centre (its own repeats to 0),
    so the i.i.d. proposal sequence is consumed in order. At most ``room`` are accepted. Returns
    the accepted positions t (``D[t]`` is each one's D^2 when chosen) and the number of proposals
    consumed.
    """
    T = int(v.shape[0])
    pos, accepted = 0, []
    while pos < T and len(accepted) < room:
        ok = torch.nonzero(v[pos:] * Sp[pos:] < D[pos:])
        if ok.numel() == 0:
            break
        t = pos + int(ok[0, 0])
        accepted.append(t)
        pos = t + 1
        if pos < T:  # the rest of the chunk must see the new centre
            rest = _sqdist(pu[pos:], pz[pos:], pa[pos:], pu[t:t + 1], pz[t:t + 1], pa[t:t + 1])[:, 0]
            D[pos:] = torch.minimum(D[pos:], rest)
            D[pos:][prop[pos:] == prop[t]] = 0.0
    return accepted, (pos if accepted else T)


def _refresh(f: GradientFactors, a: torch.Tensor, S: torch.Tensor, chosen: torch.Tensor, cu: torch.Tensor,
             cz: torch.Tensor, ca: torch.Tensor, fresh: int):
    """Lower S by the centres [fresh:] in one pass over the pool (block matrix products)."""
    if fresh < cu.shape[0]:
        for start, stop, u, z in f.blocks():
            d2 = _sqdist(u, z, a[start:stop], cu[fresh:], cz[fresh:], ca[fresh:]).min(dim=1).values
            torch.minimum(S[start:stop], d2, out=S[start:stop])
    S.masked_fill_(chosen, 0.0)
    cs = torch.cumsum(S, dim=0)
    return S, cs, (float(cs[-1]) if cs.numel() else 0.0), cu.shape[0]


def current_d2(Sp: torch.Tensor, pu: torch.Tensor, pz: torch.Tensor, pa: torch.Tensor, cu: torch.Tensor,
               cz: torch.Tensor, ca: torch.Tensor, fresh: int, pending_block: int = 4096) -> torch.Tensor:
    """Current D^2 of proposals: their stale D^2 ``Sp``, lowered by the centres [fresh:] of
    (cu, cz, ca) added since the last refresh, ``pending_block`` centres at a time."""
    D = Sp.clone()
    for lo in range(fresh, cu.shape[0], pending_block):
        hi = min(lo + pending_block, cu.shape[0])
        D = torch.minimum(D, _sqdist(pu, pz, pa, cu[lo:hi], cz[lo:hi], ca[lo:hi]).min(dim=1).values)
    return D


def _uniform_rest(chosen: torch.Tensor, m: int, rng: np.random.Generator) -> list[int]:
    rest = torch.nonzero(~chosen)[:, 0].cpu().numpy()
    return [int(i) for i in rng.choice(rest, size=m, replace=False)]
