"""Greedy furthest-first k-center traversal (Gonzalez 1985), as used by core-set selection.

Exact and fast by lazy evaluation. Every point keeps an upper bound S(i) >= its distance to the
nearest centre (distances only shrink as centres are added, so a bound stays valid however
stale). The points are visited in decreasing order of their bounds; a visited point gets its
exact float64 distance and joins a small *frontier* whose exact values are kept current. The
frontier's best point is the exact argmax as soon as it beats the largest bound outside the
frontier (which cannot be beaten: no true value exceeds its bound). Otherwise the next block of
points is visited.

What keeps the work far below one pass over the pool per pick:

* the labeled set is split into about sqrt(L / 8) spatial groups: each centre joins its
  nearest pivot (pivots chosen furthest-first), and a group's radius bounds its members'
  distances to the pivot, so ||x - p_g|| - r_g bounds from below x's distance to every member
  of group g (triangle inequality, ``_Pivots``). Where those bounds close, for a sample of
  points, a few per cent of the labeled set or more (clustered data, low intrinsic dimension),
  the labeled set is screened *by groups*: every point's first bound comes from the pivots and
  its nearest group; a visited point then screens its open groups nearest first, a few at a
  time, and closes unscreened every group whose lower bound reaches its screened minimum (that
  group cannot hold a nearer centre, and never will: the minimum only falls). A point is
  exact once every group is closed, often after forming a tenth of its distances;
* otherwise (isotropic high-dimensional data, where the bounds close nothing) it is screened
  *by prefix*: the initial bounds come from a subset of the labeled centres (any subset gives
  an upper bound), grown while that pays, so the N x L pass becomes N x 256 or so. The centres
  are ordered by a sample of exact values so that the subset and the screens meet first the
  centres that lower hard-to-cover points below the picks' values; a visited point is screened
  against the rest one block of centres at a time;
* either way a visited point is passed over (its tighter bound and its progress kept) as soon
  as its bound falls below both the frontier's best value (it cannot be the next pick) and a
  low estimate of the last pick's value (it is unlikely to be needed at all; when picks lower
  their neighbours and fall below it, it is lowered by extrapolating their decline); most
  points never finish the screen;
* the least of the groups' lower bounds bounds a point's distance to the whole labeled set;
  a visited point whose distance to the picks is below it has that as its exact value and is
  not screened at all (picks covering a region the labeled set does not reach make most of
  its points so);
* screens run in the inputs' float32 (float64 for float64 inputs), as matrix products, and
  are widened by a rounding-error bound; only the centres within that bound of a point's
  screened minimum are evaluated in float64, pair by pair, so every decision is taken on the
  same float64 value whichever product screened it;
* the frontier is pruned, when it has doubled, by merging it back into the visiting order;
* picks are made in batches: the frontier's leaders are followed through their own picks by a
  small table of pairwise distances for as long as that provably gives the exact next pick,
  and the frontier then catches up with the whole batch in one matrix product.

Points whose bounds missed a pick (in low dimension a pick lowers many neighbours) are brought
up to date when visited and then kept exact in the frontier, so bounds never need a pass over
the pool to catch up with the picks; ``refresh_every`` can still ask for such passes.

Picks, ties included (lowest index), are those of the plain algorithm on float64 distances;
memory is O((N + L) d), never N x L. A pick's value is exact when it is accepted, so the
distance each pick was chosen at can be returned at no extra work.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .factors import _to_torch, ascending

__all__ = ["kcenter_greedy", "min_sqdist_to_centers"]

# Centres and pool rows per block of a bulk pass: 16,384 x 1,024 distances (64 MiB) at a time,
# wide enough for the matrix product to run near its peak rate. Pool rows are also the unit in
# which float16 inputs are widened.
_BLOCK = 1024


_ROWS = 16384
# Distances formed at once when screening exact distances to the labeled set (64 MiB float32).
_SCREEN = 1 << 24
# Points whose exact distances estimate the values the picks will have (sizing the subset bounds).
_SAMPLE = 512
# Pivots whose groups bound the distance to the labeled set from below (see ``_Pivots``).
_PIVOTS = 64
# Share of the labeled set that the groups' bounds must close for a typical point to be used.
_GROUPS_PAY = 0.03
# Distances that one more matrix product costs in overhead, about 50 us (screening by groups).
_CALL = 4096


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
        key = torch.as_tensor(key)
        srt, inv = ascending(key.reshape(-1).cpu().numpy(), self.device)
        rows = _to_torch(self.a[srt], self.device, self.dtype)[inv]
        return rows.reshape(tuple(key.shape) + self.shape[1:])


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Bulk passes run in float64 for float64 inputs and in float32 otherwise (half precision is
    widened a block at a time: its matrix products are slow and its rounding would swamp the
    bounds)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _sqnorms(x: torch.Tensor, rows: int = 1024) -> torch.Tensor:
    """||x_i||^2 in float64, a block of rows at a time (no float64 copy of x; a block that stays
    in cache makes this about three times faster than 16,384 rows)."""
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        xb = x[start:start + rows].to(torch.float64)
        out[start:start + rows] = torch.einsum("ij,ij->i", xb, xb)  # about twice as fast as (xb ** 2).sum(1)
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


def _rounding_slack(dtype: torch.dtype, d: int, x_sqn: torch.Tensor, c_sqn_max: float) -> torch.Tensor:
    """Per-point bound on the rounding error of a squared distance computed in ``dtype``.

    A dot product of length d in precision eps errs by at most gamma_d |x||c| with
    gamma_d = d eps / (1 - d eps) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1);
    the norms and the sums add a few eps more. Float64 screens get their bound too: a matrix
    product's rounding depends on its shape, so the same distance screened in two products may
    differ in the last bits, and every value a decision is taken on comes from ``pairs64``.
    """
    return _gamma(torch.finfo(dtype).eps, d) * (x_sqn + c_sqn_max)


def _gamma(eps: float, d: int) -> float:
    """Relative rounding bound of a squared distance of length d in precision eps, as a multiple
    of ||x||^2 + ||c||^2: 2 gamma_{d+2} for the dot product, 4 eps for the norms and sums."""
    gamma = (d + 2) * eps / (1 - (d + 2) * eps)
    return 2.0 * gamma + 4 * eps


class _Labeled:
    """The labeled centres in the working dtype, in a fixed random order until ``permute``.

    The order decides which prefix gives the initial bounds and in which blocks a visited point
    is screened; it never changes the picks. Where the working dtype holds the centres exactly
    (float16 widens to float32 without rounding), their float64 values are the working values
    widened, formed only where needed; float64 centres screened in float32 keep a float64 copy
    (the rounding is within the screens' error bound).
    """

    def __init__(self, centers: torch.Tensor, device: torch.device, work: torch.dtype,
                 order: torch.Tensor | None = None):
        c = centers.to(device)
        if order is not None:
            c = c[order]
        self.cw = c.to(work)
        self.c64 = c if c.dtype == torch.float64 and work != torch.float64 else None
        self.sqn64 = _sqnorms(self.cw if self.c64 is None else self.c64)
        self.sqn_w = (self.cw * self.cw).sum(dim=1)

    def head(self, k: int) -> _Labeled:
        """The first k centres (views, no copies)."""
        out = object.__new__(_Labeled)
        out.sqn64, out.cw, out.sqn_w = self.sqn64[:k], self.cw[:k], self.sqn_w[:k]
        out.c64 = None if self.c64 is None else self.c64[:k]
        return out

    def screen(self, xq: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """||c||^2 - 2 x.c for centres lo:hi, shape (q, hi - lo), in the working dtype."""
        return torch.addmm(self.sqn_w[lo:hi], xq.to(self.cw.dtype), self.cw[lo:hi].T, alpha=-2.0)

    def pairs64(self, xq64: torch.Tensor, q_sqn: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Float64 ||x - c_j||^2 for row-centre pairs (one centre per row of xq64)."""
        cj = self.cw[j].to(torch.float64) if self.c64 is None else self.c64[j]
        return ((self.sqn64[j] - 2.0 * (xq64 * cj).sum(dim=1)) + q_sqn).clamp_min_(0.0)

    def permute(self, order: torch.Tensor) -> None:
        """Put the centres in this order (the screens follow it; the set is unchanged)."""
        self.cw, self.sqn64, self.sqn_w = self.cw[order], self.sqn64[order], self.sqn_w[order]
        if self.c64 is not None:
            self.c64 = self.c64[order]

    def exact_min(self, xq: torch.Tensor, xq64: torch.Tensor, q_sqn: torch.Tensor,
                  tol: torch.Tensor) -> torch.Tensor:
        """Float64 min_c ||x_q - c||^2 over all these centres, shape (q,), a block of rows at a
        time (see ``resolve``)."""
        L = self.cw.shape[0]
        out = torch.empty(xq.shape[0], dtype=torch.float64, device=xq.device)
        rows = max(1, _SCREEN // max(L, 1))
        for s in range(0, xq.shape[0], rows):
            e = slice(s, s + rows)
            out[e] = self.resolve(self.screen(xq[e], 0, L), xq64[e], q_sqn[e], tol[e])
        return out

    def resolve(self, D: torch.Tensor, xq64: torch.Tensor, q_sqn: torch.Tensor,
                tol: torch.Tensor) -> torch.Tensor:
        """Float64 minima of rows screened against every centre (``D`` from ``screen``), shape (q,).

        Screened values err by less than ``tol`` per row, so only the centres within 2 tol of a
        row's screened minimum, which must include the float64 argmin, are evaluated in float64.
        """
        lo = D.min(dim=1).values.to(torch.float64)
        i, j = (D <= _round_up(lo + 2.0 * tol, D.dtype)[:, None]).nonzero(as_tuple=True)
        best = torch.full((D.shape[0],), float("inf"), dtype=torch.float64, device=D.device)
        return best.scatter_reduce_(0, i, self.pairs64(xq64[i], q_sqn[i], j), "amin")


class _Pivots:
    """Lower bounds on a point's distance to the whole labeled set, by the triangle inequality.

    ``k`` pivots are chosen among the labeled centres by furthest-first traversal of a random
    sample of them (so that every centre is near one); each centre belongs to its nearest
    pivot's group, whose radius r_g is the largest float64 distance from the pivot to a member.
    For every member c of group g, ||x - c|| >= ||x - p_g|| - r_g, so min_g (||x - p_g|| - r_g)
    bounds the distance to every centre from below at the cost of k distances. Any assignment
    of centres to groups gives a valid bound (the radius is measured on the assignment made),
    so the float32 assignment never affects correctness, only tightness.
    """

    def __init__(self, lab: _Labeled, k: int) -> None:
        cw, L, dev = lab.cw, lab.cw.shape[0], lab.cw.device
        k = min(k, L)
        # furthest-first in the working dtype over the first centres of the (seeded random) order:
        # a sample that stays in cache, large enough to spread the pivots over the set
        m = min(L, max(16 * k, 1024))
        piv = torch.empty(k, dtype=torch.long, device=dev)
        piv[0] = 0
        dist = _sqdist_w(cw[:m], lab.sqn_w[:m], cw[:1])[:, 0]
        for g in range(1, k):
            piv[g] = dist.argmax()
            dist = torch.minimum(dist, _sqdist_w(cw[:m], lab.sqn_w[:m], cw[piv[g]][None])[:, 0])
        self.pw, self.pw_sqn = cw[piv], lab.sqn_w[piv]
        # every centre joins its nearest pivot's group, by one matrix product per block
        near = torch.empty(L, dtype=torch.long, device=dev)
        for s in range(0, L, _ROWS):
            near[s:s + _ROWS] = _sqdist_w(cw[s:s + _ROWS], lab.sqn_w[s:s + _ROWS], self.pw).argmin(dim=1)
        # The groups are anchored at the pivots' working values (exact in float64), the radii
        # measured in float64 from differences (no cancellation) to the centres' float64 values
        # and rounded up by a relative margin.
        self.p64 = self.pw.to(torch.float64)
        self.p_sqn = torch.einsum("ij,ij->i", self.p64, self.p64)
        r = torch.zeros(k, dtype=torch.float64, device=dev)
        for s in range(0, L, _BLOCK):
            e = slice(s, s + _BLOCK)
            c64 = cw[e].to(torch.float64) if lab.c64 is None else lab.c64[e]
            r.scatter_reduce_(0, near[e], (c64 - self.p64[near[e]]).norm(dim=1), "amax")
        self.r = r * (1 + 1e-12)
        self.idx, self.near = piv, near
        # rounding of a float64 squared distance of length d (see ``_rounding_slack``)
        self.gamma = _gamma(torch.finfo(torch.float64).eps, cw.shape[1])

    def screen(self, xq: torch.Tensor, q_sqn: torch.Tensor) -> torch.Tensor:
        """Squared distances to the pivots as the labeled set's screens form them, float64, (q, k)."""
        D = torch.addmm(self.pw_sqn, xq.to(self.pw.dtype), self.pw.T, alpha=-2.0)
        return D.to(torch.float64).add_(q_sqn[:, None])

    def bounds(self, D: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
        """Lower bounds on ||x_q - c||^2 over the members c of each group, float64, shape (q, k).

        ``D`` holds squared distances to the pivots that err by less than ``err`` (per row);
        they are lowered by it before the square root, so the bounds hold for the float64
        distances the decisions are taken on.
        """
        D = (D - err[:, None]).clamp_min_(0.0)
        lb = (D.sqrt_() - self.r[None, :]).clamp_min_(0.0)
        return lb.mul_(lb).mul_(1 - 1e-12)

    def group_lower_sq(self, xq64: torch.Tensor, q_sqn: torch.Tensor) -> torch.Tensor:
        """``bounds`` for float64 rows ``xq64``, from float64 distances to the pivots, shape (q, k)."""
        err = self.gamma * (q_sqn + self.p_sqn.max())
        return self.bounds(_sqdist(xq64, q_sqn, self.p64), err)

    def lower_sq(self, xq64: torch.Tensor, q_sqn: torch.Tensor) -> torch.Tensor:
        """A lower bound on min_c ||x_q - c||^2 over every labeled centre, float64, shape (q,)."""
        return self.group_lower_sq(xq64, q_sqn).min(dim=1).values


def _sqdist_w(c: torch.Tensor, c_sqn: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """||c_i - p_k||^2 in the working dtype, shape (rows, k) (choosing pivots only)."""
    return torch.addmm(c_sqn[:, None] + (p * p).sum(dim=1)[None, :], c, p.T, alpha=-2.0)


def _round_up(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``v`` in ``dtype``, rounded up (a threshold that must not exclude what it bounds)."""
    return torch.nextafter(v.to(dtype), torch.tensor(float("inf"), dtype=dtype, device=v.device))


def _subset_bounds(x: torch.Tensor, x_sqn: torch.Tensor, lab: _Labeled, slack: torch.Tensor | None, n: int,
                   size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, float]:
    """Bounds from the first centres of ``lab``, grown while visits would cost more.

    A point must be visited (screened against more centres) when its bound reaches the values
    the picks will have; those are estimated by the n-th largest exact value, scaled from a
    random sample of up to 512 points and erring low. The same sample orders the centres: each
    sample point is shared among the centres within that estimate of it, and the centres with
    the largest shares come first (ties keep the random order). The subset and every screen
    then meet early the centres that push points below the picks' values, above all those of
    the points that few centres cover. On isotropic data these are the centres near the middle
    (at N = L = 10,000, 25 million distances formed instead of 40 million with a random order);
    on clustered data they are spread over the clusters where the pool is hard to cover. The
    subset doubles while the points above the estimate would cost more to screen than two
    passes of the subset. The picks never depend on the order, the subset or the estimate,
    only the work does.

    Returns the minima over the subset (with ||x||^2, without rounding slack), the sample's
    positions and exact values, the subset size and the estimate; ``lab`` is reordered.
    """
    N, L = x.shape[0], lab.cw.shape[0]
    gen = torch.Generator().manual_seed(0)
    # the sample is screened against all centres at once: at most 64 MiB or the centres' size
    rows = min(N, _SAMPLE, max(_SCREEN // L, x.shape[1], 64))
    sample = torch.randperm(N, generator=gen)[:rows].to(x.device)
    xs, q = x[sample], x_sqn[sample]
    D = lab.screen(xs, 0, L)
    vals = lab.resolve(D, xs.to(torch.float64), q, 2.0 * slack[sample])
    # the rank of the n-th largest value in the sample, pushed two binomial standard deviations
    # down so that the estimate errs low: passing over a point the picks still need is costly
    k = n * vals.numel() / N
    k = max(1, min(vals.numel(), int(np.ceil(k + 2.0 * np.sqrt(k) + 2.0))))
    need = float(torch.topk(vals, k).values[-1])
    # A sample point counts for the centres within the estimate of it, shared equally among
    # them: a point that many centres cover is cheap to pass over whatever the order, one that
    # few cover is not, and its few centres should come early.
    within = (D < (need - q).to(D.dtype)[:, None]).to(torch.float32)
    del D
    share = torch.mv(within.T, 1.0 / within.sum(dim=1).clamp_min(1.0))
    del within
    lab.permute(torch.argsort(share, descending=True, stable=True))
    used = min(size, L)
    S = min_sqdist_to_centers(x, lab.cw[:used], x_sqn=x_sqn)
    while used < L:
        bound = S + slack
        visits = int((bound >= need).sum())
        if visits * L <= 2 * N * used:
            break
        more = min(2 * used, L)
        torch.minimum(S, min_sqdist_to_centers(x, lab.cw[used:more], x_sqn=x_sqn), out=S)
        used = more
    return S, sample, vals, used, need


def _sqdist(x64: torch.Tensor, x_sqn: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Float64 ||x_i - p_k||^2, shape (rows, k): how the frontier's values follow the picks."""
    p_sqn = torch.einsum("ij,ij->i", p, p)
    return torch.addmm(x_sqn[:, None] + p_sqn[None, :], x64, p.T, alpha=-2.0).clamp_min_(0.0)


def _leaders(ids: torch.Tensor, x64: torch.Tensor, x_sqn: torch.Tensor, E: torch.Tensor, first: int,
             tau: float, most: int, width: int = 64, values: list[float] | None = None) -> torch.Tensor:
    """Frontier positions of the next picks in order, ``first`` (the current argmax) leading.

    The ``width`` best frontier points are followed through the picks among themselves by a
    small table of their pairwise distances. A later pick among them is the exact next pick as
    long as its value still beats ``tau`` (every unvisited bound) and the value the next best
    frontier point had before this batch (values only fall as picks are added, so that stale
    value bounds every point outside the table). In the usual case where a pick hardly moves
    the others, this makes dozens of picks from one table and one frontier update.

    ``values``, when given, receives the value each pick after ``first`` had when it was chosen
    (its squared distance to the nearest centre or earlier pick, from the table).
    """
    nf = E.numel()
    if most <= 1 or nf <= 1:
        return torch.tensor([first], dtype=torch.long, device=E.device)
    w = min(width, nf)
    lead = torch.topk(E, min(w + 1, nf))
    cand = lead.indices[:w]
    bar = max(tau, float(lead.values[w])) if nf > w else tau
    at = (cand == first).nonzero()
    if not at.numel():  # ties reach past the table: this pick alone
        return torch.tensor([first], dtype=torch.long, device=E.device)
    v = E[cand].cpu().numpy().copy()
    D = _sqdist(x64[cand], x_sqn[cand], x64[cand]).cpu().numpy()
    cid = ids[cand].cpu().numpy()
    j = int(at)
    out = [j]
    while len(out) < most:
        np.minimum(v, D[:, j], out=v)
        v[j] = -np.inf
        j = int(v.argmax())
        if not v[j] > bar:
            break
        tie = np.flatnonzero(v == v[j])
        if tie.size > 1:  # ties go to the lowest index
            j = int(tie[np.argmin(cid[tie])])
        out.append(j)
        if values is not None:
            values.append(float(v[j]))
    return cand[torch.tensor(out, dtype=torch.long, device=E.device)]


class _Frontier:
    """Visited points whose exact values are kept current at every pick.

    Entries ``[:n]`` of four parallel arrays: the point's position in the pool, its float64 row,
    its squared norm and its exact value (squared distance to the nearest centre or pick). Picked
    entries stay in place, marked -inf (``dead`` of them), until ``compact``: cheaper than moving
    rows at every pick.
    """

    def __init__(self, cap: int, d: int, device: torch.device) -> None:
        self.ids = torch.empty(cap, dtype=torch.long, device=device)
        self.x = torch.empty((cap, d), dtype=torch.float64, device=device)
        self.sqn = torch.empty(cap, dtype=torch.float64, device=device)
        self.E = torch.empty(cap, dtype=torch.float64, device=device)
        self.n = self.dead = 0

    def best(self) -> float:
        """The largest value among the entries; -inf when there are none."""
        return float(self.E[:self.n].max()) if self.n else float("-inf")

    def add(self, ids: torch.Tensor, x64: torch.Tensor, sqn: torch.Tensor, vals: torch.Tensor) -> None:
        """Append points with their exact values, doubling the arrays when they are full."""
        k, n = ids.numel(), self.n
        if n + k > self.ids.numel():
            new = max(2 * self.ids.numel(), n + k)
            more = new - self.ids.numel()
            self.ids = torch.cat([self.ids, self.ids.new_empty(more)])
            self.x = torch.cat([self.x, self.x.new_empty((more, self.x.shape[1]))])
            self.sqn = torch.cat([self.sqn, self.sqn.new_empty(more)])
            self.E = torch.cat([self.E, self.E.new_empty(more)])
        self.ids[n:n + k], self.x[n:n + k], self.sqn[n:n + k], self.E[n:n + k] = ids, x64, sqn, vals
        self.n = n + k

    def argmax(self, best: float) -> int:
        """Entry of the value ``best`` (the current maximum) with the lowest pool index."""
        ties = (self.E[:self.n] == best).nonzero().squeeze(1)
        return int(ties[self.ids[ties].argmin()]) if ties.numel() > 1 else int(ties)

    def take(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mark the entries ``pos`` picked; their pool indices and float64 rows.

        Compacts once the dead entries reach half the frontier (or 64), so that the matrix
        products of ``lower`` stay on mostly live rows.
        """
        ids, rows = self.ids[pos], self.x[pos]
        self.E[pos] = float("-inf")
        self.dead += pos.numel()
        if self.dead >= max(64, self.n // 2):
            self.compact()
        return ids, rows

    def compact(self) -> None:
        """Drop the dead entries, keeping the order of the live ones."""
        alive = (self.E[:self.n] > float("-inf")).nonzero().squeeze(1)
        k = alive.numel()
        self.ids[:k], self.x[:k], self.sqn[:k], self.E[:k] = (
            self.ids[alive], self.x[alive], self.sqn[alive], self.E[alive])
        self.n, self.dead = k, 0

    def lower(self, p: torch.Tensor) -> None:
        """Fold new picks (float64 rows ``p``) into every value: the values stay exact."""
        if self.n:
            n = self.n
            torch.minimum(self.E[:n], _sqdist(self.x[:n], self.sqn[:n], p).min(dim=1).values, out=self.E[:n])

    def drain(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Empty the frontier; the pool indices and values of its live entries."""
        alive = self.E[:self.n] > float("-inf")
        ids, vals = self.ids[:self.n][alive], self.E[:self.n][alive]
        self.n = self.dead = 0
        return ids, vals


class _Traversal:
    """State of one lazy furthest-first traversal (see the module docstring).

    Per point: ``lab_lo``, the least screened squared distance to the labeled centres screened
    so far; ``lab_lb``, a lower bound on the distance to the labeled set (NaN: not yet formed);
    ``P``, the exact float64 squared distance to ``picks[:stamp]``; ``S``, an upper bound on the
    squared distance to every centre and pick (exact, as of ``picks[:stamp]``, where
    ``exact``). ``perm[ptr:]`` lists the points not yet visited in decreasing order of ``S``;
    visited points that became exact sit in ``front``, the ones passed over go back into that
    order. ``tau`` is the largest bound not yet visited (None: to be read again).

    The labeled set is screened in one of two ways, chosen once (``grouped``):

    * by spatial groups (``_Pivots``, each group a slice of ``lab``): ``mask`` has a bit per
      group that is screened or provably holds no nearer centre; all bits set, ``lab_lo`` is
      the distance to the labeled set;
    * by prefix: ``lab_lo`` covers ``lab[:lev]`` (all of it when ``lev == L``), the first
      ``L0`` of which (``sub_lo``) were screened in the first pass.

    Every value is a squared distance; only ``values`` (the pick values, recorded when asked)
    leave the class, as squared distances that ``kcenter_greedy`` turns into distances.
    """

    def __init__(self, x: Any, n: int, centers: torch.Tensor | None, rng: np.random.Generator | None,
                 top: int, refresh_every: int | None, bound_centers: int, record: bool) -> None:
        self.x = x
        self.N, self.d = x.shape
        self.dev = x.device
        self.n, self.top, self.refresh_every = n, top, refresh_every
        self.x_sqn = _sqnorms(x)
        self.L = 0 if centers is None else int(centers.shape[0])
        self.lab = self.piv = None
        self.k = 0
        if self.L:
            gen = torch.Generator().manual_seed(0)
            self.lab = _Labeled(centers, self.dev, _work_dtype(x.dtype),
                                order=torch.randperm(self.L, generator=gen).to(self.dev))
        # Centres screened per point and round: a point is passed over between rounds only, so
        # small labeled sets get finer rounds (an eighth of the set, at least 256 centres)
        self.block = max(256, min(_BLOCK, self.L // 8))
        c_sqn_max = max(float(self.x_sqn.max()), float(self.lab.sqn64.max()) if self.lab is not None else 0.0)
        self.slack = _rounding_slack(_work_dtype(x.dtype), self.d, self.x_sqn, c_sqn_max)
        self.tol = 2.0 * self.slack  # holds every candidate for a minimum
        self.order: list[int] = []
        self.values: list[float] | None = [] if record else None
        self.need = float("inf")  # estimated value of the last pick: screening stops early only below it
        self.trend: tuple[int, float] | None = None  # (picks, best value) when picks first fell below it
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (point, centre, screened value)
        self.lab_lb = torch.full((self.N,), float("nan"), dtype=torch.float64, device=self.dev)
        self.grouped = self.L > 8 * bound_centers and self._group(bound_centers)
        if self.grouped:
            self._group_bounds()
        else:
            if self.L > 8 * bound_centers or self.L > _PIVOTS:
                # lower bounds on the distance to the labeled set: a point whose distance to the
                # picks is below its bound needs no screen at all (its nearest centre is a pick)
                self.piv = _Pivots(self.lab, _PIVOTS) if self.piv is None else self.piv
            else:
                self.piv = None
            self._prefix_bounds(rng, bound_centers)
        self.front = _Frontier(max(4 * top, 256), self.d, self.dev)
        self.perm, self.ptr = self._resort()
        self.limit: int | None = None  # frontier size that triggers pruning
        self.tau: float | None = None

    def _group(self, bound_centers: int) -> bool:
        """Split the labeled set into spatial groups, each a slice of ``lab``; whether they pay.

        There are about sqrt(L / 8), at most ``_PIVOTS``, groups (16 for 2,000 centres, 35 for
        10,000). They pay where, for a random sample of points screened against the pivots and
        their nearest pivot's group, the groups' lower bounds close at least ``_GROUPS_PAY`` of
        the labeled set on average (clustered data, low intrinsic dimension); in
        high-dimensional isotropic data they close next to nothing, and the prefix screens
        serve better.
        """
        L = self.L
        # about sqrt(L / 8) groups: more bound the distances tighter, fewer make larger products
        self.piv = _Pivots(self.lab, min(_PIVOTS, max(2, round(math.sqrt(L / 8)))))
        k = self.piv.p64.shape[0]
        order = torch.argsort(self.piv.near, stable=True)
        self.lab.permute(order)
        size = torch.bincount(self.piv.near, minlength=k)
        hi = size.cumsum(0)
        self.g_size, self.g_lo, self.g_hi = size, (hi - size).tolist(), hi.tolist()
        self.g_of = torch.repeat_interleave(torch.arange(k, device=self.dev), size)  # group of each centre
        inv = torch.empty_like(order)
        inv[order] = torch.arange(L, device=self.dev)
        self.piv_pos = inv[self.piv.idx]  # the pivots' own positions in ``lab``
        self.k = k
        self.bits = torch.ones(k, dtype=torch.long, device=self.dev) << torch.arange(k, device=self.dev)
        if k < 2:
            return False
        gen = torch.Generator().manual_seed(1)
        sample = torch.randperm(self.N, generator=gen)[:min(self.N, _SAMPLE)].to(self.dev)
        xs, q, err = self.x[sample], self.x_sqn[sample], self.slack[sample]
        D = self.piv.screen(xs, q)
        lb = self.piv.bounds(D, err)
        ub, first = D.min(dim=1)
        for g in torch.unique(first).tolist():
            r = (first == g).nonzero().squeeze(1)
            m = self.lab.screen(xs[r], self.g_lo[g], self.g_hi[g]).min(dim=1).values.to(torch.float64) + q[r]
            ub[r] = torch.minimum(ub[r], m)
        closed = (lb >= (ub + err)[:, None]).to(torch.float64) @ size.to(torch.float64)
        return float(closed.mean()) >= _GROUPS_PAY * L

    def _prefix_bounds(self, rng: np.random.Generator | None, bound_centers: int) -> None:
        """Set every point's first bound ``S`` from the labeled set, or from a random first pick.

        With more than eight times ``bound_centers`` centres the bounds come from a subset
        (``_subset_bounds``), whose sample of exact values is kept exact; with fewer, every
        point's exact value is computed at once. Each bound includes the float32 rounding slack,
        so ``S`` is never below the true value.
        """
        x, N, dev, L, f64 = self.x, self.N, self.dev, self.L, torch.float64
        sample = sample_vals = None
        if L > 8 * bound_centers:
            sub_lo, sample, sample_vals, L0, self.need = _subset_bounds(x, self.x_sqn, self.lab, self.slack,
                                                                        self.n, bound_centers)
        elif L:
            sub_lo, L0 = min_sqdist_to_centers(x, self.lab.cw, x_sqn=self.x_sqn), L
        else:
            if rng is None:
                raise ValueError("kcenter_greedy needs centers or an rng to choose the first point")
            first = int(rng.integers(N))
            self.order.append(first)
            if self.values is not None:
                self.values.append(float("inf"))  # nothing to be far from yet
            sub_lo, L0 = torch.full((N,), float("inf"), dtype=f64, device=dev), 0
        self.sub_lo, self.L0 = sub_lo, L0
        self.lab_lo = sub_lo.clone()
        self.lev = torch.full((N,), L0, dtype=torch.long, device=dev)
        S = self.lab_lo if L else _min_sqdist(x, self.x_sqn, x[first:first + 1])
        self.S = S + self.slack
        self.exact = torch.zeros(N, dtype=torch.bool, device=dev)
        self._start()
        if sample is not None:  # the exact values computed to size the subset are kept
            self.S[sample] = sample_vals
            self.exact[sample] = True
            self.stamp[sample] = 0

    def _start(self) -> None:
        """The state shared by both ways of screening, once ``S`` and ``exact`` are set."""
        N, dev, f64 = self.N, self.dev, torch.float64
        self.P = torch.full((N,), float("inf"), dtype=f64, device=dev)
        self.stamp = torch.where(self.exact, len(self.order), 0)
        self.picked = torch.zeros(N, dtype=torch.bool, device=dev)
        self.picked[self.order] = True
        self.picks = torch.empty((max(self.n, 1), self.d), dtype=f64, device=dev)
        for k, i in enumerate(self.order):
            self.picks[k] = self.x[i].to(f64)
        self.folded = len(self.order)  # picks folded into every bound by the last refresh

    def _group_bounds(self) -> None:
        """Set every point's first bound ``S`` by groups.

        Every point is screened against the pivots and its nearest pivot's group
        (``_first_screen``); a random sample is then screened fully, both to keep its exact
        values and to estimate the value of the last pick (``need``). Each bound includes the rounding slack, so ``S``
        is never below the true value.
        """
        N, dev, f64 = self.N, self.dev, torch.float64
        self.lab_lo = torch.full((N,), float("inf"), dtype=f64, device=dev)
        self.mask = torch.zeros(N, dtype=torch.long, device=dev)
        for s in range(0, N, _ROWS):
            self._first_screen(torch.arange(s, min(s + _ROWS, N), device=dev), self.x[s:s + _ROWS])
        self.S = self.lab_lo + self.slack
        self.exact = torch.zeros(N, dtype=torch.bool, device=dev)
        self._start()
        self._estimate_need()

    def _first_screen(self, ids: torch.Tensor, xb: torch.Tensor) -> None:
        """Screen a block of points against the pivots and the group of their nearest pivot.

        The pivots are centres, so their screened distances bound the distance to the labeled
        set from above while bounding each group's distances from below (``lab_lb`` keeps the
        least of these). The nearest pivot's group holds the nearest centre for most points.
        """
        q = self.x_sqn[ids]
        D = self.piv.screen(xb, q)
        lb = self.piv.bounds(D, self.slack[ids])
        self.lab_lb[ids] = lb.min(dim=1).values
        lo = D.min(dim=1).values
        self.lab_lo[ids] = lo
        # pivots within the rounding window: candidates for the minimum
        i, j = (D <= (lo + self.tol[ids])[:, None]).nonzero(as_tuple=True)
        self.pairs.append((ids[i], self.piv_pos[j], D[i, j]))
        self._screen_pairs(ids, xb, torch.arange(ids.numel(), device=self.dev), D.argmin(dim=1))

    def _estimate_need(self) -> None:
        """Screen a random sample fully and estimate the value of the last pick from it.

        The estimate is the n-th largest exact value scaled from the sample, erring low: passing
        over a point the picks still need is costly. The sample's exact values are kept.
        """
        N, f64 = self.N, torch.float64
        gen = torch.Generator().manual_seed(0)
        sample = torch.randperm(N, generator=gen)[:min(N, _SAMPLE)].to(self.dev)
        xs = self.x[sample]
        b = self.lab_lo[sample] + self.slack[sample]
        self._screen(sample, xs, b, float("-inf"))
        vals = self._finalize(sample, xs)
        # the rank of the n-th largest value in the sample, pushed two binomial standard deviations
        # down so that the estimate errs low
        k = self.n * vals.numel() / N
        k = max(1, min(vals.numel(), int(np.ceil(k + 2.0 * np.sqrt(k) + 2.0))))
        self.need = float(torch.topk(vals.to(f64), k).values[-1])
        self.S[sample] = vals
        self.exact[sample] = True
        self.stamp[sample] = 0

    def _screen_pairs(self, u: torch.Tensor, xq: torch.Tensor, r: torch.Tensor, g: torch.Tensor) -> None:
        """Screen rows ``r`` of points ``u`` (rows ``xq``) against groups ``g``, pair by pair.

        Either one matrix product per group over the rows that need it, or, when fewer
        distances plus calls come out that way, one product of all the rows against every group
        any of them needs, the pairs not asked for masked out (few rows wanting small groups).
        ``lab_lo``, ``mask`` and the candidate ``pairs`` are updated. Each (point, group) pair
        must be new.
        """
        if not r.numel():
            return
        size, cw, f64 = self.g_size, self.lab.cw, torch.float64
        groups = torch.unique(g)
        rows, inv = torch.unique(r, return_inverse=True)
        width = int(size[groups].sum())
        found = []  # (row positions, screened minima, candidate rows, centres, values) per product
        if rows.numel() * width <= int(size[g].sum()) + _CALL * groups.numel():
            sel = torch.zeros((rows.numel(), self.k), dtype=torch.bool, device=self.dev)
            sel[inv, g] = True
            cols = torch.isin(self.g_of, groups).nonzero().squeeze(1)
            keep = sel[:, self.g_of[cols]]
            step = max(1, _SCREEN // max(width, 1))
            for s in range(0, rows.numel(), step):
                rr = rows[s:s + step]
                D = torch.addmm(self.lab.sqn_w[cols], xq[rr].to(cw.dtype), cw[cols].T, alpha=-2.0)
                found.append(self._candidates(u, rr, D.masked_fill_(~keep[s:s + step], float("inf")), cols))
        else:
            o = torch.argsort(g, stable=True)
            rs, gs = r[o], g[o]
            pos = 0
            for grp, c in enumerate(torch.bincount(gs, minlength=self.k).tolist()):
                if not c:
                    continue
                lo, hi = self.g_lo[grp], self.g_hi[grp]
                step = max(1, _SCREEN // max(hi - lo, 1))
                for s in range(pos, pos + c, step):
                    rr = rs[s:min(s + step, pos + c)]
                    found.append(self._candidates(u, rr, self.lab.screen(xq[rr], lo, hi), lo))
                pos += c
        rr, lo, i, j, v = (torch.cat(t) for t in zip(*found))
        uu = u[rr]
        self.lab_lo.scatter_reduce_(0, uu, lo.to(f64) + self.x_sqn[uu], "amin")
        ui = u[i]  # the candidates for the exact minimum, kept for ``_finalize``
        self.pairs.append((ui, j, v.to(f64) + self.x_sqn[ui]))
        self.mask.index_put_((u[r],), self.bits[g], accumulate=True)  # new bits: the sum is an or

    def _candidates(self, u: torch.Tensor, rr: torch.Tensor, D: torch.Tensor,
                    cols: torch.Tensor | int) -> tuple[torch.Tensor, ...]:
        """Rows ``rr`` (of points ``u``), their minima over ``D`` (screened against the centres
        ``cols``, or ``cols + j`` for an offset) and the (row, centre, value) triples within the
        rounding window of the lesser of each row's minimum here and its ``lab_lo`` (a superset
        of those within it of the final minimum, which ``_finalize`` keeps)."""
        lo = D.min(dim=1).values
        uu = u[rr]  # the window also holds below the minimum found so far
        sq = self.x_sqn[uu]
        win = _round_up(torch.minimum(lo.to(torch.float64) + sq, self.lab_lo[uu]) - sq + self.tol[uu], D.dtype)
        i, j = (D <= win[:, None]).nonzero(as_tuple=True)
        return rr, lo, rr[i], cols + j if isinstance(cols, int) else cols[j], D[i, j]

    def _screen(self, U: torch.Tensor, xq: torch.Tensor, b: torch.Tensor, best: float) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
        """Screen points ``U`` group by group while their bounds ``b`` could still beat ``best``.

        Each round, a point screens its open groups of nearest pivot, about ``block`` centres in
        the first round and twice as many in each next one (a point still live after a round is
        likely to need many more groups). A group whose lower bound reaches the point's screened
        minimum (plus its rounding bound) cannot hold a nearer centre and is closed unscreened;
        the minimum only falls, so that stays true. Returns the lowered bounds and which points have every group
        closed (their ``lab_lo`` is then the minimum over the whole labeled set).
        """
        Dp = self.piv.screen(xq, self.x_sqn[U])
        lb = self.piv.bounds(Dp, self.slack[U])
        budget = self.block
        while True:
            open_ = (self.mask[U, None] & self.bits[None, :]) == 0
            shut = open_ & (lb >= (self.lab_lo[U] + self.slack[U])[:, None])
            if bool(shut.any()):
                self.mask[U] += (shut.long() * self.bits[None, :]).sum(dim=1)  # new bits: the sum is an or
                open_ &= ~shut
            todo = open_.any(dim=1)
            live = todo & ~(b < best)
            if not bool(live.any()):
                return b, ~todo
            r = live.nonzero().squeeze(1)
            key = torch.where(open_[r], Dp[r], float("inf"))
            key, srt = torch.sort(key, dim=1, stable=True)
            sz = self.g_size[srt]
            take = ((sz.cumsum(dim=1) - sz) < budget) & (key < float("inf"))
            budget *= 2
            i, j = take.nonzero(as_tuple=True)
            self._screen_pairs(U, xq, r[i], srt[i, j])
            lo = self.lab_lo[U[r]]
            b[r] = torch.minimum(b[r], lo + self.slack[U[r]])

    def _lag(self, ids: torch.Tensor, vals: torch.Tensor, since: torch.Tensor, m: int,
             xq: torch.Tensor | None = None) -> torch.Tensor:
        """min(vals, squared distances of ``ids`` to picks[since:m]), float64.

        Brings values that are exact as of their stamps up to date with the picks made since.
        Points stamped in the later half of the picks so far and the rest go in two groups, each
        against the picks since its oldest stamp (a superset of picks is harmless); ``xq`` are
        the points' rows when already read.
        """
        vals = vals.clone()
        for g in (since >= m // 2, since < m // 2):
            if not bool(g.any()):
                continue
            lo = int(since[g].min())
            if lo < m:
                ig = ids[g]
                rows = (self.x[ig] if xq is None else xq[g]).to(torch.float64)
                vals[g] = torch.minimum(vals[g], min_sqdist_to_centers(rows, self.picks[lo:m],
                                                                       x_sqn=self.x_sqn[ig]))
        return vals

    def _finalize(self, F: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
        """Exact float64 squared distance of points ``F`` (fully screened) to the labeled centres.

        Screens keep, in ``pairs``, every centre within the rounding window of a point's
        screened minimum; only those, and (screening by prefix) the first subset when its
        minimum came close, are evaluated in float64. The pairs of ``F`` are consumed.
        """
        lo, q, t = self.lab_lo[F], self.x_sqn[F], self.tol[F]
        out = torch.full((F.numel(),), float("inf"), dtype=torch.float64, device=self.dev)
        xq64 = xq.to(torch.float64)
        if self.pairs:
            pi, pj, pd = (torch.cat(c) for c in zip(*self.pairs))
            # each point's position in F, -1 elsewhere: one gather per pair, no search
            at = torch.full((self.N,), -1, dtype=torch.long, device=self.dev)
            at[F] = torch.arange(F.numel(), device=self.dev)
            pos = at[pi]
            mine = pos >= 0
            self.pairs = [(pi[~mine], pj[~mine], pd[~mine])]
            pos, pj, pd = pos[mine], pj[mine], pd[mine]
            ok = pd <= lo[pos] + t[pos]
            pos, j = pos[ok], pj[ok]
            out.scatter_reduce_(0, pos, self.lab.pairs64(xq64[pos], q[pos], j), "amin")
        if self.grouped:  # every screen, the first included, kept its candidates
            return out
        # the subset screened in the first pass holds candidates only when its minimum is close
        near = self.sub_lo[F] <= lo + t
        if bool(near.any()):
            sub = self.lab.head(self.L0).exact_min(xq[near], xq64[near], q[near], self.slack[F][near])
            out[near] = torch.minimum(out[near], sub)
        return out

    def _visit(self, ids: torch.Tensor, m: int, best: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Bring points ``ids`` up to date; split them into exact (returned first) and passed over.

        Exact points catch up with the picks made since their stamps. The others are screened
        only while their bound could still beat ``best`` (the frontier's best exact value) and
        the estimated value of the last pick; one that falls below both first is passed over
        with its tighter bound in ``S`` and resumes where it stopped (``mask`` or ``lev``) if it
        is ever visited again. Fully screened points become exact.
        """
        # Passing over a point that a later pick will need costs a revisit for every block it
        # still lacks; below the estimated value of the last pick that is unlikely.
        best = min(best, self.need)
        S, L = self.S, self.L
        ex = self.exact[ids]
        E = ids[ex]
        if E.numel():  # exact but stale: only the picks made since
            S[E] = self._lag(E, S[E], self.stamp[E], m)
            self.stamp[E] = m
        U = ids[~ex]
        if not U.numel():
            return E, U
        xq = self.x[U]
        self.P[U] = self._lag(U, self.P[U], self.stamp[U], m, xq)
        self.stamp[U] = m
        if self.piv is not None:
            # a point whose distance to the picks is below its lower bound on the distance to the
            # labeled set has that distance as its exact value: no screen needed
            lb = self.lab_lb[U]
            fresh = torch.isnan(lb)
            if bool(fresh.any()):
                lb[fresh] = self.piv.lower_sq(xq[fresh].to(torch.float64), self.x_sqn[U[fresh]])
                self.lab_lb[U[fresh]] = lb[fresh]
            covered = self.P[U] < lb
            if bool(covered.any()):
                R = U[covered]
                S[R] = self.P[R]
                self.exact[R] = True
                E = torch.cat([E, R])
                U, xq = U[~covered], xq[~covered]
                if not U.numel():
                    return E, U
        b = torch.minimum(S[U], self.P[U])
        if L:
            lo = self.lab_lo[U]
            b = torch.minimum(b, lo + self.slack[U])
        if self.grouped:
            b, done = self._screen(U, xq, b, best)
        else:
            b = self._screen_prefix(U, xq, b, best)
            done = self.lev[U] >= L
        F = U[done]
        if F.numel():
            v = torch.minimum(self.P[F], self._finalize(F, xq[done])) if L else self.P[F]
            S[F] = v
            self.exact[F] = True
        out = U[~done]
        S[out] = b[~done]
        return torch.cat([E, F]), out

    def _screen_prefix(self, U: torch.Tensor, xq: torch.Tensor, b: torch.Tensor, best: float) -> torch.Tensor:
        """Screen points ``U`` against further blocks of ``lab`` while their bounds ``b`` could
        still beat ``best``; the lowered bounds (``lab_lo`` and ``lev`` are updated)."""
        L, x_sqn, slack, tol = self.L, self.x_sqn, self.slack, self.tol
        while True:
            lv = self.lev[U]
            live = (lv < L) & ~(b < best)
            if not bool(live.any()):
                return b
            for level in torch.unique(lv[live]).tolist():
                r = (live & (lv == level)).nonzero().squeeze(1)
                u, hi = U[r], min(level + self.block, L)
                D = self.lab.screen(xq[r], level, hi)
                new = torch.minimum(self.lab_lo[u], D.min(dim=1).values.to(torch.float64) + x_sqn[u])
                self.lab_lo[u] = new
                self.lev[u] = hi
                # the candidates for the exact minimum, kept for ``_finalize``
                i, j = (D <= _round_up(new - x_sqn[u] + tol[u], D.dtype)[:, None]).nonzero(as_tuple=True)
                self.pairs.append((u[i], j + level, D[i, j].to(torch.float64) + x_sqn[u[i]]))
                new = new + slack[u]
                b[r] = torch.minimum(b[r], new)

    def _resort(self) -> tuple[torch.Tensor, int]:
        """A new visiting order: every unpicked point by decreasing bound (ties by index)."""
        ids = (~self.picked).nonzero().squeeze(1)
        return ids[torch.argsort(self.S[ids], descending=True, stable=True)], 0

    def _insert(self, ids: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Put points back into the visiting order by their bounds.

        The unvisited part of the order is still sorted, so this is a merge, linear in N, not a
        new sort; the visited part is dropped.
        """
        S, rest = self.S, self.perm[self.ptr:]
        ids = ids[torch.argsort(S[ids], descending=True)]
        # the order is descending; searchsorted wants ascending keys, hence the negation
        dest = torch.searchsorted(-S[rest], -S[ids]) + torch.arange(ids.numel(), device=self.dev)
        out = torch.empty(rest.numel() + ids.numel(), dtype=torch.long, device=self.dev)
        keep = torch.ones(out.numel(), dtype=torch.bool, device=self.dev)
        keep[dest] = False
        out[dest] = ids
        out[keep] = rest
        return out, 0

    def _flush(self, m: int) -> torch.Tensor:
        """Return the frontier's exact values (as of ``m`` picks) to the bounds; their ids.

        The frontier empties; its points stay exact, stamped ``m``, so a later visit only
        catches them up with the picks made since.
        """
        ids, vals = self.front.drain()
        self.S[ids] = vals
        self.exact[ids] = True
        self.stamp[ids] = m
        return ids

    def _refresh(self, m: int) -> None:
        """Fold picks since the last refresh into every bound (one pass over the pool), re-sort.

        Only inexact bounds are lowered: exact ones catch up through their stamps when visited.
        """
        self._flush(m)
        r = min_sqdist_to_centers(self.x, self.picks[self.folded:m], x_sqn=self.x_sqn)
        r = r + self.slack
        self.S = torch.where(~self.exact & ~self.picked, torch.minimum(self.S, r), self.S)
        self.folded = m
        self.perm, self.ptr = self._resort()
        self.limit, self.tau = None, None

    def _prune(self, m: int) -> None:
        """Merge the frontier, grown past ``limit``, back into the visiting order."""
        self.perm, self.ptr = self._insert(self._flush(m))
        self.limit, self.tau = None, None

    def _next_bound(self) -> float:
        """The largest bound not yet visited; -inf when every point has been visited."""
        return float(self.S[self.perm[self.ptr]]) if self.ptr < self.perm.numel() else float("-inf")

    def _track_decline(self, m: int, best: float) -> None:
        """Lower ``need`` by extrapolating the picks' decline once they fall below it.

        The picks are then already below the estimated last value: they lowered the values
        (clustered data, where a pick covers its neighbours), which the sample of distances to
        the labeled set cannot foresee. Extrapolating the decline of the best value over the
        picks still to make lets points be screened ahead of the picks rather than a few at a
        time between them. Only the work depends on ``need``, never the picks.
        """
        if float("-inf") < best < self.need:
            if self.trend is None:
                self.trend = (m, best)
            elif m - self.trend[0] >= 16:
                m0, b0 = self.trend
                self.need = min(self.need, best - (b0 - best) / (m - m0) * (self.n - m))

    def _grow(self, m: int, best: float) -> float:
        """Visit blocks of points until the frontier's best value beats every unvisited bound.

        A tie with an unvisited bound also needs a visit (it may hold a lower index). Blocks
        double within one pick. Exact points join the frontier; passed-over ones return to the
        visiting order. Returns the frontier's best value; ``tau`` is current on return.
        """
        step = min(self.top, self.N)
        while not best > self.tau and self.ptr < self.perm.numel():
            ids = self.perm[self.ptr:self.ptr + step]
            self.ptr += ids.numel()
            fin, passed = self._visit(ids, m, best)
            if fin.numel():
                self.front.add(fin, self.x[fin].to(torch.float64), self.x_sqn[fin], self.S[fin])
                best = self.front.best()
            if passed.numel():
                self.perm, self.ptr = self._insert(passed)
            self.tau = self._next_bound()
            step *= 2
        return best

    def _pick(self, m: int, best: float) -> None:
        """Make the next picks, a batch from the frontier's leaders, and lower the frontier by them.

        ``best`` must be the frontier's maximum and beat ``tau`` (or nothing be left to visit),
        so the lowest-index entry of that value is the exact next pick; ``_leaders`` extends it
        to a batch only as far as each later pick is provably the exact next one.
        """
        fr = self.front
        first = fr.argmax(best)
        if self.values is not None:
            self.values.append(best)
        nf = fr.n
        pos = _leaders(fr.ids[:nf], fr.x[:nf], fr.sqn[:nf], fr.E[:nf], first, self.tau, self.n - m,
                       values=self.values)
        b = pos.numel()
        ids, rows = fr.take(pos)
        self.order.extend(ids.tolist())
        self.picked[ids] = True
        self.picks[m:m + b] = rows
        fr.lower(self.picks[m:m + b])

    def run(self) -> None:
        """Pick until ``n`` points are in ``order``.

        Before each batch: fold picks into all bounds when ``refresh_every`` asks, else prune a
        frontier that has doubled; then grow the frontier until its best point is provably the
        next pick, and pick.
        """
        while len(self.order) < self.n:
            m = len(self.order)
            if self.refresh_every is not None and m - self.folded >= self.refresh_every:
                self._refresh(m)
            elif self.limit is not None and self.front.n > self.limit:
                self._prune(m)
            if self.tau is None:
                self.tau = self._next_bound()
            best = self.front.best()
            self._track_decline(m, best)
            best = self._grow(m, best)
            if self.limit is None:
                self.limit = 2 * self.front.n + 4 * self.top
            self._pick(m, best)


def kcenter_greedy(x: torch.Tensor, n: int, *, centers: torch.Tensor | None = None,
                   rng: np.random.Generator | None = None, top: int = 256, refresh_every: int | None = None,
                   bound_centers: int = 64,
                   return_distances: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
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
        With more than eight times this many labeled centres, the labeled set is screened by
        spatial groups where their bounds pay, else the initial bounds use a subset of at least
        this size, doubled while that pays; with fewer, every point's exact value is computed
        in one pass (points that start exact never churn through visits when picks lower their
        neighbours). The picks never depend on it, only the work does.
    return_distances : bool
        Also return each pick's core-set distance. The picks are the same either way.

    Returns
    -------
    indices : ndarray of shape (n,)
        Distinct row positions in the order picked. Ties go to the lowest index.
    distances : ndarray of shape (n,), float64
        Only with ``return_distances``: for each pick, its Euclidean distance to the nearest
        labeled centre or earlier pick when it was chosen, i.e. the value the greedy maximised
        (the square root of the float64 squared distance the decision was taken on). It never
        increases along the picks. A cold start's first pick has distance +inf.
    """
    if not isinstance(x, torch.Tensor):  # a numpy array or memory map: read in row blocks
        x = _ArrayRows(x)
    if centers is not None and not isinstance(centers, torch.Tensor):
        centers = torch.from_numpy(np.array(centers))
    t = _Traversal(x, n, centers, rng, top, refresh_every, bound_centers, record=return_distances)
    t.run()
    indices = np.asarray(t.order, dtype=np.int64)
    if not return_distances:
        return indices
    return indices, np.sqrt(np.asarray(t.values, dtype=np.float64))
