"""Greedy furthest-first k-center traversal (Gonzalez 1985), as used by core-set selection.

Exact and fast by lazy evaluation. Every point keeps an upper bound S(i) >= its distance to the
nearest centre (distances only shrink as centres are added, so a bound stays valid however
stale). The points are visited in decreasing order of their bounds; a visited point gets its
exact float64 distance and joins a small *frontier* whose exact values are kept current, one
row-vector product per pick. The frontier's best point is the exact argmax as soon as it beats
the largest bound outside the frontier (which cannot be beaten: no true value exceeds its
bound). Otherwise the next block of points is visited.

Three things keep the work far below one pass over the pool per pick:

* the initial bounds may come from a random subset of the labeled centres (any subset gives an
  upper bound), so the N x L pass becomes N x 1024 plus exact distances for the few points that
  are ever visited;
* bulk passes run in the inputs' float32 and are widened by a rounding-error bound; exact
  distances to the labeled set are screened in float32 and only the near-minimal centres are
  evaluated in float64;
* the frontier is pruned, when it has doubled, by merging it back into the visiting order.

Points whose bounds missed a pick (in low dimension a pick lowers many neighbours) are visited
once and then kept exact in the frontier, so bounds never need a pass over the pool to catch up
with the picks; ``refresh_every`` can still ask for such passes.

Picks, ties included (lowest index), are those of the plain algorithm on float64 distances;
memory is O((N + L) d), never N x L.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .factors import _to_torch

__all__ = ["kcenter_greedy", "min_sqdist_to_centers"]

# Centres and pool rows per block of a bulk pass: 16,384 x 1,024 distances (64 MiB) at a time,
# wide enough for the matrix product to run near its peak rate. Pool rows are also the unit in
# which float16 inputs are widened.
_BLOCK = 1024
_ROWS = 16384
# Distances formed at once when screening exact distances to the labeled set (64 MiB float32).
_SCREEN = 1 << 24
# Points whose exact distances estimate the values the picks will have (sizing the subset bounds).
_SAMPLE = 256


class _ArrayRows:
    """Tensor-like row access to a numpy array, typically a memory map (float16, 32 or 64).

    Slices and position tensors return tensors of just those rows (float16 as float32), so a pool
    on disk is read a block at a time and never copied whole.
    """

    def __init__(self, a: Any) -> None:
        self.a = a
        self.shape = tuple(int(v) for v in a.shape)
        self.dtype = torch.float64 if np.dtype(a.dtype) == np.float64 else torch.float32
        self.device = torch.device("cpu")

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, slice):
            return _to_torch(self.a[key], self.device, self.dtype)
        idx = torch.as_tensor(key).reshape(-1).cpu().numpy()
        order = np.argsort(idx, kind="stable")  # ascending reads of the map, then back in order
        rows = _to_torch(self.a[idx[order]], self.device, self.dtype)
        out = torch.empty_like(rows)
        out[torch.from_numpy(order)] = rows
        return out.reshape(tuple(torch.as_tensor(key).shape) + self.shape[1:])


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Bulk passes run in float64 for float64 inputs and in float32 otherwise (half precision is
    widened a block at a time: its matrix products are slow and its rounding would swamp the
    bounds)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _sqnorms(x: torch.Tensor, rows: int = 16384) -> torch.Tensor:
    """||x_i||^2 in float64, a block of rows at a time (no float64 copy of x)."""
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        out[start:start + rows] = (x[start:start + rows].to(torch.float64) ** 2).sum(dim=1)
    return out


def _min_sqdist(x: torch.Tensor, x_sqn: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """min_c ||x_i - c||^2 for one block of centres, (N,) float64.

    Uses ||x||^2 + min_c (||c||^2 - 2 x.c): each (rows, C) block is formed in the working dtype
    and reduced in place before anything is widened to float64.
    """
    work = _work_dtype(x.dtype)
    c = c.to(device=x.device, dtype=work)
    c_sqn = (c * c).sum(dim=1)[None, :]
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _ROWS):
        block = torch.addmm(c_sqn, x[start:start + _ROWS].to(work), c.T, alpha=-2.0)  # ||c||^2 - 2 x.c
        out[start:start + _ROWS] = block.min(dim=1).values
    return out.add_(x_sqn).clamp_min_(0.0)


def min_sqdist_to_centers(x: torch.Tensor, centers: torch.Tensor, *, block: int = _BLOCK,
                          x_sqn: torch.Tensor | None = None) -> torch.Tensor:
    """min_c ||x_i - c||^2 for each row of x, shape (N,), float64; +inf when there are no centres.

    The centres are processed in blocks of ``block`` rows and the points in blocks of 16,384, so
    memory stays O(N + block * 16,384) beyond the output.
    """
    N = x.shape[0]
    out = torch.full((N,), float("inf"), dtype=torch.float64, device=x.device)
    if x_sqn is None:
        x_sqn = _sqnorms(x)
    for start in range(0, centers.shape[0], block):
        torch.minimum(out, _min_sqdist(x, x_sqn, centers[start:start + block]), out=out)
    return out


def _rounding_slack(dtype: torch.dtype, d: int, x_sqn: torch.Tensor, c_sqn_max: float) -> torch.Tensor | None:
    """Per-point bound on the rounding error of a squared distance computed in ``dtype``.

    A dot product of length d in precision eps errs by at most gamma_d |x||c| with
    gamma_d = d eps / (1 - d eps) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1);
    the norms and the sums add a few eps more. None for float64 (treated as exact).
    """
    if dtype == torch.float64:
        return None
    eps = torch.finfo(dtype).eps
    gamma = (d + 2) * eps / (1 - (d + 2) * eps)
    return 2.0 * gamma * (x_sqn + c_sqn_max) + 4 * eps * (x_sqn + c_sqn_max)


class _Labeled:
    """The labeled centres in the working dtype and in float64, for exact distances."""

    def __init__(self, centers: torch.Tensor, device: torch.device, work: torch.dtype):
        self.c64 = centers.to(device=device, dtype=torch.float64)
        self.sqn64 = (self.c64 ** 2).sum(dim=1)
        self.cw = centers.to(device=device, dtype=work)
        self.sqn_w = (self.cw * self.cw).sum(dim=1)

    def exact_min(self, xq: torch.Tensor, xq64: torch.Tensor, q_sqn: torch.Tensor,
                  tol: torch.Tensor | None) -> torch.Tensor:
        """Float64 min_c ||x_q - c||^2 over all labeled centres, shape (q,).

        With float32 work, every centre is screened in float32 (errors below ``tol`` per row) and
        only those within 2 tol of the float32 minimum, which must include the float64 argmin,
        are evaluated in float64.
        """
        if tol is None:
            return min_sqdist_to_centers(xq64, self.c64, x_sqn=q_sqn)
        L = self.cw.shape[0]
        out = torch.empty(xq.shape[0], dtype=torch.float64, device=xq.device)
        rows = max(1, _SCREEN // max(L, 1))
        for s in range(0, xq.shape[0], rows):
            xb = xq[s:s + rows].to(self.cw.dtype)
            D = torch.addmm(self.sqn_w[None, :], xb, self.cw.T, alpha=-2.0)  # ||c||^2 - 2 x.c
            lo = D.min(dim=1).values.to(torch.float64)
            thr = torch.nextafter((lo + 2.0 * tol[s:s + rows]).to(D.dtype), torch.tensor(float("inf"), dtype=D.dtype,
                                                                                      device=D.device))
            i, j = (D <= thr[:, None]).nonzero(as_tuple=True)
            v = (self.sqn64[j] - 2.0 * (xq64[s + i] * self.c64[j]).sum(dim=1)) + q_sqn[s + i]
            best = torch.full((xb.shape[0],), float("inf"), dtype=torch.float64, device=xq.device)
            out[s:s + rows] = best.scatter_reduce_(0, i, v, "amin").clamp_min_(0.0)
        return out


def _subset_bounds(x: torch.Tensor, x_sqn: torch.Tensor, lab: _Labeled, slack: torch.Tensor | None, n: int,
                   size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Upper bounds from a random subset of the labeled centres, grown while visits would cost more.

    A point must be visited (its distance to all L centres computed) when its bound reaches the
    values the picks will have; those are estimated by the n-th largest exact value, scaled from
    a random sample of 256 points. The subset doubles while the points above that estimate
    would cost more to visit than two passes of the subset. The seed is fixed: the picks never
    depend on the subset, only the work does.

    Returns the bounds (without rounding slack), the sample's positions and exact values, and
    whether the bounds still come from a strict subset.
    """
    N, L = x.shape[0], lab.cw.shape[0]
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(L, generator=gen).to(x.device)
    sample = torch.randperm(N, generator=gen)[:min(N, _SAMPLE)].to(x.device)
    vals = lab.exact_min(x[sample], x[sample].to(torch.float64), x_sqn[sample],
                         None if slack is None else slack[sample])
    k = max(1, min(vals.numel(), int(np.ceil(n * vals.numel() / N))))
    need = float(torch.topk(vals, k).values[-1])
    used = min(size, L)
    S = min_sqdist_to_centers(x, lab.cw[perm[:used]], x_sqn=x_sqn)
    while used < L:
        bound = S if slack is None else S + slack
        visits = int((bound >= need).sum())
        if visits * L <= 2 * N * used:
            break
        more = min(2 * used, L)
        torch.minimum(S, min_sqdist_to_centers(x, lab.cw[perm[used:more]], x_sqn=x_sqn), out=S)
        used = more
    return S, sample, vals, used < L


def kcenter_greedy(x: torch.Tensor, n: int, *, centers: torch.Tensor | None = None,
                   rng: np.random.Generator | None = None, top: int = 256, refresh_every: int | None = None,
                   bound_centers: int = 1024) -> np.ndarray:
    """Greedy furthest-first traversal: repeatedly pick the point furthest from all centres.

    Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
    ICLR 2018, Algorithm 1 (k-Center-Greedy): with s the labeled set, repeat
    u = argmax_{i not in s} min_{j in s} ||x_i - x_j||, s = s + {u}.

    Every decision is taken on distances computed in float64 (as the plain algorithm does);
    float32 or float16 inputs only make the bulk passes faster, and those passes yield upper
    bounds widened by a rounding-error bound, never decisions.

    Parameters
    ----------
    x : tensor or array of shape (N, d)
        Candidate embeddings; a numpy array or memory map (float16/32/64) is read in row blocks.
    n : int
        Number of points to pick.
    centers : tensor or array of shape (L, d), optional
        Embeddings of the already labeled items, which the traversal is conditioned on.
    rng : numpy.random.Generator, optional
        Used only when there are no centres: the first point is then drawn uniformly.
    top : int
        Points visited at once when the frontier must grow (doubles within one pick).
    refresh_every : int, optional
        Fold the latest picks into every point's bound (one pass over the pool) after this many
        picks; default: never (the frontier keeps the points that matter exact).
    bound_centers : int
        With more than twice this many labeled centres, the initial bounds use a random subset
        of at least this size, doubled while that pays (a fixed seed: the picks never depend
        on it, only the work does).

    Returns
    -------
    ndarray of shape (n,)
        Distinct row positions in the order picked. Ties go to the lowest index.
    """
    if not isinstance(x, torch.Tensor):  # a numpy array or memory map: read in row blocks
        x = _ArrayRows(x)
    if centers is not None and not isinstance(centers, torch.Tensor):
        centers = torch.from_numpy(np.array(centers))
    N, d = x.shape
    dev = x.device
    f64 = torch.float64
    work = _work_dtype(x.dtype)
    x_sqn = _sqnorms(x)
    lab = _Labeled(centers, dev, work) if centers is not None and centers.shape[0] > 0 else None
    c_sqn_max = max(float(x_sqn.max()), float(lab.sqn64.max()) if lab is not None else 0.0)
    slack = _rounding_slack(work, d, x_sqn, c_sqn_max)
    order: list[int] = []
    subset = lab is not None and lab.cw.shape[0] > 2 * bound_centers
    sample = sample_vals = None
    if subset:
        S, sample, sample_vals, subset = _subset_bounds(x, x_sqn, lab, slack, n, bound_centers)
    elif lab is not None:
        S = min_sqdist_to_centers(x, lab.cw, x_sqn=x_sqn)
    else:
        if rng is None:
            raise ValueError("kcenter_greedy needs centers or an rng to choose the first point")
        first = int(rng.integers(N))
        order.append(first)
        S = _min_sqdist(x, x_sqn, x[first:first + 1])
    # S: upper bound on each point's squared distance to its nearest centre. exact[i]: S[i] is the
    # float64 distance to the labeled centres and to picks[:stamp[i]].
    exact = torch.full((N,), slack is None and not subset, dtype=torch.bool, device=dev)
    if slack is not None:
        S = S + slack
    if sample is not None:  # the exact values computed to size the subset are kept
        S[sample] = sample_vals
        exact[sample] = True
    picked = torch.zeros(N, dtype=torch.bool, device=dev)
    picked[order] = True
    stamp = torch.full((N,), len(order), dtype=torch.long, device=dev)
    picks = torch.empty((max(n, 1), d), dtype=f64, device=dev)
    for k, i in enumerate(order):
        picks[k] = x[i].to(f64)
    folded = len(order)  # picks folded into every bound by the last refresh

    def visit(ids: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact float64 distances of points ``ids`` to the labeled centres and picks[:m]."""
        xq = x[ids]
        xq64 = xq.to(f64)
        val = S[ids].clone()
        ex, st = exact[ids], stamp[ids]
        fresh = ~ex
        if bool(fresh.any()):  # first visit: the whole distance, labeled set and picks
            f = ids[fresh]
            v = torch.full((f.numel(),), float("inf"), dtype=f64, device=dev)
            if lab is not None:
                v = lab.exact_min(xq[fresh], xq64[fresh], x_sqn[f], None if slack is None else slack[f])
            if folded:
                v = torch.minimum(v, min_sqdist_to_centers(xq64[fresh], picks[:folded], x_sqn=x_sqn[f]))
            if m > folded:
                v = torch.minimum(v, min_sqdist_to_centers(xq64[fresh], picks[folded:m], x_sqn=x_sqn[f]))
            val[fresh] = v
        lag = ex & (st < m)
        if bool(lag.any()):  # exact but stale: only the picks made since (a superset is harmless)
            lo = int(st[lag].min())
            v = min_sqdist_to_centers(xq64[lag], picks[lo:m], x_sqn=x_sqn[ids[lag]])
            val[lag] = torch.minimum(val[lag], v)
        return val, xq64

    # The frontier: visited points with exact values kept current at every pick.
    cap = max(4 * top, 256)
    f_ids = torch.empty(cap, dtype=torch.long, device=dev)
    f_x = torch.empty((cap, d), dtype=f64, device=dev)
    f_sqn = torch.empty(cap, dtype=f64, device=dev)
    f_E = torch.empty(cap, dtype=f64, device=dev)
    nf = 0

    def flush(m: int) -> None:
        """Return the frontier's exact values to the bounds (the frontier empties)."""
        nonlocal nf
        ids = f_ids[:nf]
        S[ids] = f_E[:nf]
        exact[ids] = True
        stamp[ids] = m
        nf = 0

    def resort() -> tuple[torch.Tensor, int]:
        ids = (~picked).nonzero().squeeze(1)
        return ids[torch.argsort(S[ids], descending=True, stable=True)], 0

    def merge(m: int) -> tuple[torch.Tensor, int]:
        """Empty the frontier back into the visiting order, which outside it is still sorted:
        a merge, linear in N, instead of a new sort."""
        fid, fval = f_ids[:nf].clone(), f_E[:nf].clone()
        flush(m)
        rest = perm[ptr:]
        o = torch.argsort(fval, descending=True)
        fid, fval = fid[o], fval[o]
        # the order is descending; searchsorted wants ascending keys, hence the negation
        dest = torch.searchsorted(-S[rest], -fval) + torch.arange(fid.numel(), device=dev)
        out = torch.empty(rest.numel() + fid.numel(), dtype=torch.long, device=dev)
        keep = torch.ones(out.numel(), dtype=torch.bool, device=dev)
        keep[dest] = False
        out[dest] = fid
        out[keep] = rest
        return out, 0

    perm, ptr = resort()
    limit = None  # frontier size that triggers pruning
    T = min(top, N)
    while len(order) < n:
        m = len(order)
        if refresh_every is not None and m - folded >= refresh_every:
            flush(m)
            r = min_sqdist_to_centers(x, picks[folded:m], x_sqn=x_sqn)
            if slack is not None:
                r = r + slack
            lower = (r < S) & ~picked
            S = torch.where(lower, r, S)
            exact &= ~lower | (slack is None)
            stamp = torch.where(lower | ~exact, torch.full_like(stamp, m), stamp)
            folded = m
            perm, ptr = resort()
            limit = None
        elif limit is not None and nf > limit:
            perm, ptr = merge(m)
            limit = None
        tau = float(S[perm[ptr]]) if ptr < perm.numel() else float("-inf")
        best = float(f_E[:nf].max()) if nf else float("-inf")
        step = T
        while not best > tau and ptr < perm.numel():  # a tie with an unvisited bound: look further
            ids = perm[ptr:ptr + step]
            ptr += ids.numel()
            val, xq64 = visit(ids, m)
            k = ids.numel()
            if nf + k > f_ids.numel():
                new = max(2 * f_ids.numel(), nf + k)
                f_ids = torch.cat([f_ids, torch.empty(new - f_ids.numel(), dtype=torch.long, device=dev)])
                f_x = torch.cat([f_x, torch.empty((new - f_x.shape[0], d), dtype=f64, device=dev)])
                f_sqn = torch.cat([f_sqn, torch.empty(new - f_sqn.numel(), dtype=f64, device=dev)])
                f_E = torch.cat([f_E, torch.empty(new - f_E.numel(), dtype=f64, device=dev)])
            f_ids[nf:nf + k] = ids
            f_x[nf:nf + k] = xq64
            f_sqn[nf:nf + k] = x_sqn[ids]
            f_E[nf:nf + k] = val
            nf += k
            best = float(f_E[:nf].max())
            tau = float(S[perm[ptr]]) if ptr < perm.numel() else float("-inf")
            step *= 2
        if limit is None:
            limit = 2 * nf + 4 * top
        pos = (f_E[:nf] == best).nonzero().squeeze(1)
        j = int(pos[torch.argmin(f_ids[pos])]) if pos.numel() > 1 else int(pos[0])
        nxt = int(f_ids[j])
        order.append(nxt)
        picked[nxt] = True
        picks[m] = f_x[j]
        nf -= 1
        if j != nf:  # the last frontier entry takes the pick's place
            f_ids[j], f_x[j], f_sqn[j], f_E[j] = f_ids[nf], f_x[nf], f_sqn[nf], f_E[nf]
        if nf:
            p = picks[m]
            dist = torch.mv(f_x[:nf], p).mul_(-2.0).add_(torch.dot(p, p)).add_(f_sqn[:nf]).clamp_min_(0.0)
            torch.minimum(f_E[:nf], dist, out=f_E[:nf])
    return np.asarray(order, dtype=np.int64)
