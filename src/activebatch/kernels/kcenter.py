"""Greedy furthest-first k-center traversal (Gonzalez 1985), as used by core-set selection.

Exact and fast by lazy evaluation. Every point keeps an upper bound S(i) >= its distance to the
nearest centre (distances only shrink as centres are added, so a bound stays valid however
stale). The points are visited in decreasing order of their bounds; a visited point gets its
exact float64 distance and joins a small *frontier* whose exact values are kept current. The
frontier's best point is the exact argmax as soon as it beats the largest bound outside the
frontier (which cannot be beaten: no true value exceeds its bound). Otherwise the next block of
points is visited.

What keeps the work far below one pass over the pool per pick:

* the initial bounds come from a subset of the labeled centres (any subset gives an upper
  bound), grown while that pays, so the N x L pass becomes N x 256 or so. The centres are
  ordered by a sample of exact values so that the subset and the screens below meet first the
  centres that lower hard-to-cover points below the picks' values;
* a visited point is screened against the rest of the labeled set one block of centres at a
  time, and passed over (its tighter bound and its progress kept) as soon as that bound falls
  below both the frontier's best value (it cannot be the next pick) and a low estimate of the
  last pick's value (it is unlikely to be needed at all; when picks lower their neighbours and
  fall below it, it is lowered by extrapolating their decline); most points never finish the
  screen;
* bulk passes and screens run in the inputs' float32, widened by a rounding-error bound; only
  the centres within that bound of a point's float32 minimum are evaluated in float64;
* the frontier is pruned, when it has doubled, by merging it back into the visiting order;
* picks are made in batches: the frontier's leaders are followed through their own picks by a
  small table of pairwise distances for as long as that provably gives the exact next pick,
  and the frontier then catches up with the whole batch in one matrix product.

Points whose bounds missed a pick (in low dimension a pick lowers many neighbours) are brought
up to date when visited and then kept exact in the frontier, so bounds never need a pass over
the pool to catch up with the picks; ``refresh_every`` can still ask for such passes.

Picks, ties included (lowest index), are those of the plain algorithm on float64 distances;
memory is O((N + L) d), never N x L.
"""
from __future__ import annotations

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

    def head(self, k: int) -> "_Labeled":
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
                  tol: torch.Tensor | None) -> torch.Tensor:
        """Float64 min_c ||x_q - c||^2 over all these centres, shape (q,), a block of rows at a
        time (see ``resolve``)."""
        L = self.cw.shape[0]
        out = torch.empty(xq.shape[0], dtype=torch.float64, device=xq.device)
        rows = max(1, _SCREEN // max(L, 1))
        for s in range(0, xq.shape[0], rows):
            e = slice(s, s + rows)
            out[e] = self.resolve(self.screen(xq[e], 0, L), xq64[e], q_sqn[e], None if tol is None else tol[e])
        return out

    def resolve(self, D: torch.Tensor, xq64: torch.Tensor, q_sqn: torch.Tensor,
                tol: torch.Tensor | None) -> torch.Tensor:
        """Float64 minima of rows screened against every centre (``D`` from ``screen``), shape (q,).

        With float64 work (``tol`` None) the screen is exact. With float32 work, screened values
        err by less than ``tol`` per row, so only the centres within 2 tol of a row's screened
        minimum, which must include the float64 argmin, are evaluated in float64.
        """
        if tol is None:
            return (D.min(dim=1).values + q_sqn).clamp_min_(0.0)
        lo = D.min(dim=1).values.to(torch.float64)
        i, j = (D <= _round_up(lo + 2.0 * tol, D.dtype)[:, None]).nonzero(as_tuple=True)
        best = torch.full((D.shape[0],), float("inf"), dtype=torch.float64, device=D.device)
        return best.scatter_reduce_(0, i, self.pairs64(xq64[i], q_sqn[i], j), "amin")


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
    vals = lab.resolve(D, xs.to(torch.float64), q, None if slack is None else 2.0 * slack[sample])
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
        bound = S if slack is None else S + slack
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
             tau: float, most: int, width: int = 64) -> torch.Tensor:
    """Frontier positions of the next picks in order, ``first`` (the current argmax) leading.

    The ``width`` best frontier points are followed through the picks among themselves by a
    small table of their pairwise distances. A later pick among them is the exact next pick as
    long as its value still beats ``tau`` (every unvisited bound) and the value the next best
    frontier point had before this batch (values only fall as picks are added, so that stale
    value bounds every point outside the table). In the usual case where a pick hardly moves
    the others, this makes dozens of picks from one table and one frontier update.
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
    return cand[torch.tensor(out, dtype=torch.long, device=E.device)]


def kcenter_greedy(x: torch.Tensor, n: int, *, centers: torch.Tensor | None = None,
                   rng: np.random.Generator | None = None, top: int = 256, refresh_every: int | None = None,
                   bound_centers: int = 256) -> np.ndarray:
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
        With more than eight times this many labeled centres, the initial bounds use a subset
        of at least this size, doubled while that pays; with fewer, every point's exact value
        is computed in one pass (points that start exact never churn through visits when picks
        lower their neighbours). The picks never depend on it, only the work does.

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
    L = 0 if centers is None else int(centers.shape[0])
    lab = None
    if L:
        gen = torch.Generator().manual_seed(0)
        lab = _Labeled(centers, dev, work, order=torch.randperm(L, generator=gen).to(dev))
    c_sqn_max = max(float(x_sqn.max()), float(lab.sqn64.max()) if lab is not None else 0.0)
    slack = _rounding_slack(work, d, x_sqn, c_sqn_max)
    tol = None if slack is None else 2.0 * slack  # window that holds every candidate for a minimum
    order: list[int] = []
    sample = sample_vals = None
    need = float("inf")  # estimated value of the last pick: screening stops early only below it
    trend = None  # (picks, best value) when the picks first fell below that estimate
    # Per point: lab_lo, the least float32-screened distance to the labeled centres lab[:lev]
    # (all of them when lev == L); P, the exact float64 distance to picks[:stamp]; S, an upper bound
    # on the distance to every centre and pick (exact, at picks[:stamp], where ``exact``).
    if L > 8 * bound_centers:
        sub_lo, sample, sample_vals, L0, need = _subset_bounds(x, x_sqn, lab, slack, n, bound_centers)
    elif L:
        sub_lo, L0 = min_sqdist_to_centers(x, lab.cw, x_sqn=x_sqn), L
    else:
        if rng is None:
            raise ValueError("kcenter_greedy needs centers or an rng to choose the first point")
        first = int(rng.integers(N))
        order.append(first)
        sub_lo, L0 = torch.full((N,), float("inf"), dtype=f64, device=dev), 0
    lab_lo = sub_lo.clone()
    lev = torch.full((N,), L0, dtype=torch.long, device=dev)
    S = lab_lo if L else _min_sqdist(x, x_sqn, x[first:first + 1])
    S = S.clone() if slack is None else S + slack
    exact = torch.full((N,), slack is None and L0 == L, dtype=torch.bool, device=dev)
    P = torch.full((N,), float("inf"), dtype=f64, device=dev)
    stamp = torch.where(exact, len(order), 0)
    if sample is not None:  # the exact values computed to size the subset are kept
        S[sample] = sample_vals
        exact[sample] = True
        stamp[sample] = 0
    picked = torch.zeros(N, dtype=torch.bool, device=dev)
    picked[order] = True
    picks = torch.empty((max(n, 1), d), dtype=f64, device=dev)
    for k, i in enumerate(order):
        picks[k] = x[i].to(f64)
    folded = len(order)  # picks folded into every bound by the last refresh
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (point, centre, float32 value)

    def lag(ids: torch.Tensor, vals: torch.Tensor, since: torch.Tensor, m: int,
            xq: torch.Tensor | None = None) -> torch.Tensor:
        """min(vals, distances of ``ids`` (rows ``xq`` when already read) to picks[since:m]), float64.

        Points seen in the later half of the picks so far and the rest go in two groups, each
        against the picks since its oldest stamp (a superset of picks is harmless).
        """
        vals = vals.clone()
        for g in (since >= m // 2, since < m // 2):
            if not bool(g.any()):
                continue
            lo = int(since[g].min())
            if lo < m:
                ig = ids[g]
                rows = (x[ig] if xq is None else xq[g]).to(f64)
                vals[g] = torch.minimum(vals[g], min_sqdist_to_centers(rows, picks[lo:m], x_sqn=x_sqn[ig]))
        return vals

    def finalize(F: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
        """Exact float64 distance of points F (fully screened) to the labeled centres."""
        if tol is None:
            return lab_lo[F]  # screened in float64: already exact
        nonlocal pairs
        lo, q, t = lab_lo[F], x_sqn[F], tol[F]
        out = torch.full((F.numel(),), float("inf"), dtype=f64, device=dev)
        xq64 = xq.to(f64)
        if pairs:
            pi, pj, pd = (torch.cat(c) for c in zip(*pairs))
            mine = torch.isin(pi, F)
            pairs = [(pi[~mine], pj[~mine], pd[~mine])]
            Fs, o = torch.sort(F)
            pos = o[torch.searchsorted(Fs, pi[mine])]
            ok = pd[mine] <= lo[pos] + t[pos]
            pos, j = pos[ok], pj[mine][ok]
            out.scatter_reduce_(0, pos, lab.pairs64(xq64[pos], q[pos], j), "amin")
        # the subset screened in the first pass holds candidates only when its minimum is close
        near = sub_lo[F] <= lo + t
        if bool(near.any()):
            sub = lab.head(L0).exact_min(xq[near], xq64[near], q[near], slack[F][near])
            out[near] = torch.minimum(out[near], sub)
        return out

    def visit(ids: torch.Tensor, m: int, best: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Bring points ``ids`` up to date; split them into exact (returned first) and passed over.

        A point is screened against further blocks of labeled centres only while its bound could
        still beat ``best`` (the frontier's best exact value) and the estimated value of the last
        pick; one that falls below both first is passed over with its tighter bound and resumes
        from there if it is ever visited again.
        """
        # Passing over a point that a later pick will need costs a revisit for every block it
        # still lacks; below the estimated value of the last pick that is unlikely.
        best = min(best, need)
        ex = exact[ids]
        E = ids[ex]
        if E.numel():  # exact but stale: only the picks made since
            S[E] = lag(E, S[E], stamp[E], m)
            stamp[E] = m
        U = ids[~ex]
        if not U.numel():
            return E, U
        xq = x[U]
        P[U] = lag(U, P[U], stamp[U], m, xq)
        stamp[U] = m
        b = torch.minimum(S[U], P[U])
        if L:
            b = torch.minimum(b, lab_lo[U] if slack is None else lab_lo[U] + slack[U])
        while True:
            lv = lev[U]
            live = (lv < L) & ~(b < best)
            if not bool(live.any()):
                break
            for level in torch.unique(lv[live]).tolist():
                r = (live & (lv == level)).nonzero().squeeze(1)
                u, hi = U[r], min(level + _BLOCK, L)
                D = lab.screen(xq[r], level, hi)
                new = torch.minimum(lab_lo[u], D.min(dim=1).values.to(f64) + x_sqn[u])
                lab_lo[u] = new
                lev[u] = hi
                if tol is not None:  # the float32 candidates for the exact minimum, kept for later
                    i, j = (D <= _round_up(new - x_sqn[u] + tol[u], D.dtype)[:, None]).nonzero(as_tuple=True)
                    pairs.append((u[i], j + level, D[i, j].to(f64) + x_sqn[u[i]]))
                    new = new + slack[u]
                b[r] = torch.minimum(b[r], new)
        # fully screened points join the frontier; passing them over would save no screening
        done = lev[U] >= L
        F = U[done]
        if F.numel():
            v = torch.minimum(P[F], finalize(F, xq[done])) if L else P[F]
            S[F] = v
            exact[F] = True
        out = U[~done]
        S[out] = b[~done]
        return torch.cat([E, F]), out

    # The frontier: visited points with exact values kept current at every pick.
    cap = max(4 * top, 256)
    f_ids = torch.empty(cap, dtype=torch.long, device=dev)
    f_x = torch.empty((cap, d), dtype=f64, device=dev)
    f_sqn = torch.empty(cap, dtype=f64, device=dev)
    f_E = torch.empty(cap, dtype=f64, device=dev)
    nf = dead = 0  # entries in the frontier; picked ones among them (marked -inf)

    def flush(m: int) -> torch.Tensor:
        """Return the frontier's exact values to the bounds (the frontier empties); its ids."""
        nonlocal nf, dead
        alive = f_E[:nf] > float("-inf")  # picked entries are left in place, marked -inf
        ids = f_ids[:nf][alive]
        S[ids] = f_E[:nf][alive]
        exact[ids] = True
        stamp[ids] = m
        nf, dead = 0, 0
        return ids

    def resort() -> tuple[torch.Tensor, int]:
        ids = (~picked).nonzero().squeeze(1)
        return ids[torch.argsort(S[ids], descending=True, stable=True)], 0

    def insert(ids: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Put points back into the visiting order by their bounds. The unvisited part of the order
        is still sorted, so this is a merge, linear in N, not a new sort."""
        rest = perm[ptr:]
        ids = ids[torch.argsort(S[ids], descending=True)]
        # the order is descending; searchsorted wants ascending keys, hence the negation
        dest = torch.searchsorted(-S[rest], -S[ids]) + torch.arange(ids.numel(), device=dev)
        out = torch.empty(rest.numel() + ids.numel(), dtype=torch.long, device=dev)
        keep = torch.ones(out.numel(), dtype=torch.bool, device=dev)
        keep[dest] = False
        out[dest] = ids
        out[keep] = rest
        return out, 0

    perm, ptr = resort()
    limit = None  # frontier size that triggers pruning
    tau = None  # the largest bound not yet visited (None: to be read again)
    T = min(top, N)
    while len(order) < n:
        m = len(order)
        if refresh_every is not None and m - folded >= refresh_every:
            flush(m)
            r = min_sqdist_to_centers(x, picks[folded:m], x_sqn=x_sqn)
            if slack is not None:
                r = r + slack
            S = torch.where(~exact & ~picked, torch.minimum(S, r), S)
            folded = m
            perm, ptr = resort()
            limit, tau = None, None
        elif limit is not None and nf > limit:
            perm, ptr = insert(flush(m))
            limit, tau = None, None
        if tau is None:
            tau = float(S[perm[ptr]]) if ptr < perm.numel() else float("-inf")
        best = float(f_E[:nf].max()) if nf else float("-inf")
        if float("-inf") < best < need:
            # The picks are already below the estimated last value: they lowered the values
            # (clustered data, where a pick covers its neighbours), which the sample of
            # distances to the labeled set cannot foresee. Extrapolate the decline of the best
            # value since then over the picks still to make, so that points are screened ahead
            # of the picks rather than a few at a time between them.
            if trend is None:
                trend = (m, best)
            elif m - trend[0] >= 16:
                need = min(need, best - (trend[1] - best) / (m - trend[0]) * (n - m))
        step = T
        while not best > tau and ptr < perm.numel():  # a tie with an unvisited bound: look further
            ids = perm[ptr:ptr + step]
            ptr += ids.numel()
            fin, passed = visit(ids, m, best)
            k = fin.numel()
            if nf + k > f_ids.numel():
                new = max(2 * f_ids.numel(), nf + k)
                f_ids = torch.cat([f_ids, torch.empty(new - f_ids.numel(), dtype=torch.long, device=dev)])
                f_x = torch.cat([f_x, torch.empty((new - f_x.shape[0], d), dtype=f64, device=dev)])
                f_sqn = torch.cat([f_sqn, torch.empty(new - f_sqn.numel(), dtype=f64, device=dev)])
                f_E = torch.cat([f_E, torch.empty(new - f_E.numel(), dtype=f64, device=dev)])
            if k:
                f_ids[nf:nf + k] = fin
                f_x[nf:nf + k] = x[fin].to(f64)
                f_sqn[nf:nf + k] = x_sqn[fin]
                f_E[nf:nf + k] = S[fin]
                nf += k
                best = float(f_E[:nf].max())
            if passed.numel():
                perm, ptr = insert(passed)
            tau = float(S[perm[ptr]]) if ptr < perm.numel() else float("-inf")
            step *= 2
        if limit is None:
            limit = 2 * nf + 4 * top
        ties = (f_E[:nf] == best).nonzero().squeeze(1)
        first = int(ties[f_ids[ties].argmin()]) if ties.numel() > 1 else int(ties)
        pos = _leaders(f_ids[:nf], f_x[:nf], f_sqn[:nf], f_E[:nf], first, tau, n - m)
        b = pos.numel()
        order.extend(f_ids[pos].tolist())
        picked[f_ids[pos]] = True
        picks[m:m + b] = f_x[pos]
        # picks stay in the frontier as dead entries (-inf) until the next prune: cheaper than
        # moving rows at every pick
        f_E[pos] = float("-inf")
        dead += b
        if dead >= max(64, nf // 2):  # compact: drop the dead entries
            alive = (f_E[:nf] > float("-inf")).nonzero().squeeze(1)
            k = alive.numel()
            f_ids[:k], f_x[:k], f_sqn[:k], f_E[:k] = f_ids[alive], f_x[alive], f_sqn[alive], f_E[alive]
            nf, dead = k, 0
        if nf:
            torch.minimum(f_E[:nf], _sqdist(f_x[:nf], f_sqn[:nf], picks[m:m + b]).min(dim=1).values, out=f_E[:nf])
    return np.asarray(order, dtype=np.int64)
