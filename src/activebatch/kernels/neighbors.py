"""Exact nearest neighbours and radius (ball) graphs in row blocks, never an N x N matrix.

The low-budget strategies need, on pools of 10^5 rows, the k nearest neighbours of every point
(TypiClust's typicality), every point's distance to the nearest point of another cluster
(ProbCover's purity radius) and the graph of pairs closer than a radius (ProbCover's balls).
Each is computed one tile of distances at a time (at most :data:`~activebatch.kernels.rowblocks.BLOCK_VALUES`
values: :func:`~activebatch.kernels.rowblocks.rows_per_block` rows of 4,096 columns), keeping only
k values per row or the sparse edges.

Exactness. Every distance reported or compared with a threshold is the *reference* value
:func:`pair_sqdist`: ``((a - b) ** 2).sum()`` over the float64 rows, a symmetric function of the
pair. Tiles are computed faster, as ``||x||^2 + ||y||^2 - 2 x.y`` by a matrix product on
mean-centred rows in the inputs' precision (float32, or float64 for float64 inputs), and each
entry is trusted only where a rounding-error bound (Higham, *Accuracy and Stability of
Numerical Algorithms*, 3.1: ``gamma_d (||x||^2 + ||y||^2)`` and a few unit roundoffs more)
decides the question; the pairs within that bound of a threshold, or of a row's k-th smallest
value, are recomputed as reference values. So the neighbours, their distances and the edges are
those of a brute-force computation of the reference values, ties included, in any precision.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .rowblocks import BLOCK_VALUES, rows_per_block

__all__ = ["greedy_max_coverage", "knn_sqdist", "nearest_other_sqdist", "pair_sqdist", "radius_graph",
           "within_radius"]

#: Columns of one tile of distances to other rows; its rows are ``rows_per_block`` of this (2,048).
TILE_COLUMNS = 4096
#: Side of the square tiles of a pass of rows against themselves (2,896: BLOCK_VALUES values).
TILE_SIDE = math.isqrt(BLOCK_VALUES)
_EPS64 = float(np.finfo(np.float64).eps)


def pair_sqdist(a: np.ndarray, b: np.ndarray, rows_a: Any = None, rows_b: Any = None) -> np.ndarray:
    """Reference squared distances ``((a[i] - b[j]) ** 2).sum()`` in float64 of paired rows.

    Parameters
    ----------
    a, b : arrays of shape (n_a, d), (n_b, d)
    rows_a, rows_b : int arrays of the same length P, optional
        The pairs (default: row i of ``a`` with row i of ``b``).

    Returns
    -------
    ndarray of float64, shape (P,)
    """
    if rows_a is None:
        rows_a = np.arange(len(a))
        rows_b = np.arange(len(b)) if rows_b is None else rows_b
    rows_a = np.asarray(rows_a, dtype=np.int64)
    rows_b = np.asarray(rows_b, dtype=np.int64)
    out = np.empty(rows_a.size, dtype=np.float64)
    step = rows_per_block(a.shape[1])
    for s in range(0, rows_a.size, step):
        diff = np.asarray(a[rows_a[s:s + step]], dtype=np.float64) - np.asarray(b[rows_b[s:s + step]],
                                                                                 dtype=np.float64)
        out[s:s + step] = (diff ** 2).sum(axis=-1)
    return out


#: Below this many multiply-adds a pass runs on one torch thread: on small problems (a TypiClust
#: cluster of a few hundred rows) thread start-up and barriers cost more than the work, up to 10x
#: on two busy cores.
PARALLEL_WORK = 1 << 28


@contextlib.contextmanager
def _threads_for(macs: float) -> Iterator[None]:
    """One torch thread for the duration, when ``macs`` multiply-adds are too few to share."""
    old = torch.get_num_threads()
    if macs >= PARALLEL_WORK or old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _work_dtype(*arrays: np.ndarray) -> torch.dtype:
    """float64 when every input is float64, float32 otherwise (float16 is widened)."""
    return torch.float64 if all(np.dtype(a.dtype) == np.float64 for a in arrays) else torch.float32


class _Operand:
    """Rows ``x[order]`` (all of x in order by default) centred on ``mu`` in the working dtype, with
    their squared norms; ``src``/``at`` give the source rows for reference values."""

    def __init__(self, x: np.ndarray, mu: np.ndarray, work: torch.dtype, order: np.ndarray | None = None) -> None:
        self.src = x
        self.order = order
        self.n, self.d = int(x.shape[0]), int(x.shape[1])
        self.w = torch.empty((self.n, self.d), dtype=work)
        self.sqn64 = np.empty(self.n, dtype=np.float64)
        step = rows_per_block(self.d)
        for s in range(0, self.n, step):
            rows = x[s:s + step] if order is None else x[order[s:s + step]]
            blk = torch.from_numpy(np.asarray(rows, dtype=np.float64) - mu).to(work)
            self.w[s:s + step] = blk
            b64 = blk.to(torch.float64)
            self.sqn64[s:s + step] = torch.einsum("ij,ij->i", b64, b64).numpy()
        self.sqn_w = torch.einsum("ij,ij->i", self.w, self.w)
        self.max_sqn64 = float(self.sqn64.max()) if self.n else 0.0

    def at(self, rows: np.ndarray) -> np.ndarray:
        """Positions in ``src`` of the operand's rows ``rows``."""
        return rows if self.order is None else self.order[rows]


def _operands(x: np.ndarray, y: np.ndarray | None,
              order: np.ndarray | None = None) -> tuple[_Operand, _Operand, float]:
    """The two operands (``y`` None: the same rows, ``x[order]``) and the rounding coefficient ``c``:
    a tile entry differs from the reference value by at most ``c * (||x||^2 + ||y||^2)`` (centred
    norms)."""
    x = _as_2d(x)
    work = _work_dtype(x) if y is None else _work_dtype(x, _as_2d(y))
    mu = x.mean(axis=0, dtype=np.float64) if len(x) else np.zeros(x.shape[1])   # no float64 copy of x
    X = _Operand(x, mu, work, order)
    Y = X if y is None else _Operand(_as_2d(y), mu, work)
    eps = float(torch.finfo(work).eps)
    d = X.d + 2
    gamma = d * eps / (1 - d * eps)
    gamma64 = d * _EPS64 / (1 - d * _EPS64)
    # dot product and norms (3 gamma), centring and the additions (16 eps), the reference value's own
    # rounding (4 gamma64); generous, which costs only a few more recomputed pairs
    return X, Y, 4 * gamma + 16 * eps + 4 * gamma64


def _as_2d(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got shape {x.shape}")
    if x.dtype not in (np.float16, np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def _tiles(X: _Operand, Y: _Operand):
    """Yield ``(r0, r1, c0, c1, tile)``: approximate squared distances of rows r0:r1 of X to rows
    c0:c1 of Y in the working dtype, a row block at a time (all its column tiles in order)."""
    cols = max(1, min(Y.n, TILE_COLUMNS))
    rows = rows_per_block(max(cols, X.d))
    for r0 in range(0, X.n, rows):
        r1 = min(r0 + rows, X.n)
        xw, xs = X.w[r0:r1], X.sqn_w[r0:r1, None]
        for c0 in range(0, Y.n, cols):
            c1 = min(c0 + cols, Y.n)
            tile = torch.addmm(Y.sqn_w[None, c0:c1], xw, Y.w[c0:c1].T, alpha=-2.0)
            yield r0, r1, c0, c1, tile.add_(xs)


def _sym_side(n: int, d: int) -> int:
    """Side of the square tiles of a symmetric pass: at most BLOCK_VALUES values and row blocks
    of at most BLOCK_VALUES values of the features."""
    return max(1, min(TILE_SIDE, rows_per_block(d), n))


def _sym_tiles(X: _Operand, skip: Any = None):
    """Yield ``(r0, r1, c0, c1, tile)`` for the tiles on and above the diagonal of X against itself
    (r0 <= c0): each unordered pair of rows is in exactly one tile (a diagonal tile holds both
    orders). ``skip(r0, r1, c0, c1)`` may say that a tile is not needed (it is then not computed)."""
    side = _sym_side(X.n, X.d)
    for r0 in range(0, X.n, side):
        r1 = min(r0 + side, X.n)
        xw, xs = X.w[r0:r1], X.sqn_w[r0:r1, None]
        for c0 in range(r0, X.n, side):
            c1 = min(c0 + side, X.n)
            if skip is not None and skip(r0, r1, c0, c1):
                continue
            tile = torch.addmm(X.sqn_w[None, c0:c1], xw, X.w[c0:c1].T, alpha=-2.0)
            yield r0, r1, c0, c1, tile.add_(xs)


class _Pairs:
    """Growable parallel arrays of pairs (and values), appended a tile at a time.

    Appending copies into a few large buffers (grown by half when full) instead of keeping one
    small array per tile: thousands of small arrays kept alive between the tiles' large
    temporaries fragment the C heap, which then grows by megabytes per tile (3 GB over the 630
    tiles of a 100,000-row pass) and is never returned.
    """

    #: Entries of the first buffers.
    CAPACITY = 1 << 16

    def __init__(self, dtypes: tuple[Any, ...]) -> None:
        self.arrays = [np.empty(self.CAPACITY, dtype=dt) for dt in dtypes]
        self.size = 0

    def add(self, *parts: Any) -> None:
        m = int(len(parts[0]))
        if self.size + m > self.arrays[0].size:
            cap = max(self.size + m, self.arrays[0].size + self.arrays[0].size // 2)
            for i, a in enumerate(self.arrays):
                grown = np.empty(cap, dtype=a.dtype)
                grown[:self.size] = a[:self.size]
                self.arrays[i] = grown
        for a, part in zip(self.arrays, parts):
            a[self.size:self.size + m] = part.numpy() if isinstance(part, torch.Tensor) else part
        self.size += m

    def view(self) -> list[np.ndarray]:
        return [a[:self.size] for a in self.arrays]


def _k_smallest(X: _Operand, coef: float, k: int, *, skip_self: bool,
                groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each row of X, the k smallest reference squared distances to the rows of X (ascending)
    and their positions, skipping a row's own position (``skip_self``) and, with ``groups``
    (the start of each run of equal labels, rows sorted by label), rows of its own label; +inf
    and -1 where fewer than k rows qualify. Ties: the lowest position.

    One pass over the tiles on and above the diagonal. Each row keeps the k smallest tile values
    seen so far; the pairs that may still be among its k smallest reference values (within twice
    the rounding bound of that running k-th value, which only decreases) are kept, and resolved
    in float64 at the end.
    """
    inf = float("inf")
    run = torch.full((X.n, k), inf, dtype=X.w.dtype)
    slack = torch.from_numpy(2 * coef * (X.sqn64 + X.max_sqn64))
    found = _Pairs((np.int64, np.int64, np.float64))
    bounds = None if groups is None else np.append(groups, X.n)

    def same_label(r0: int, r1: int, c0: int, c1: int) -> list[tuple[int, int, int, int]]:
        # rectangles of the tile where rows and columns share a label (labels sorted: diagonal runs)
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            lo_r, hi_r, lo_c, hi_c = max(a, r0), min(b, r1), max(a, c0), min(b, c1)
            if lo_r < hi_r and lo_c < hi_c:
                out.append((lo_r - r0, hi_r - r0, lo_c - c0, hi_c - c0))
        return out

    def one_label(r0: int, r1: int, c0: int, c1: int) -> bool:
        rects = same_label(r0, r1, c0, c1)
        return len(rects) == 1 and rects[0] == (0, r1 - r0, 0, c1 - c0)

    def update(rows: slice, cols0: int, t: torch.Tensor) -> None:
        # The k + 3 smallest of each row of the tile: the running k smallest, and (almost always)
        # every candidate; a row whose k + 3 are all candidates is compared whole.
        kk = min(k + 3, t.shape[1])
        vals, idx = torch.topk(t, kk, dim=1, largest=False)
        merged = torch.cat([run[rows], vals[:, :k]], dim=1)
        run[rows] = (torch.topk(merged, k, dim=1, largest=False).values if k > 1
                     else merged.min(dim=1, keepdim=True).values)
        thr = (run[rows, k - 1].to(torch.float64) + slack[rows]).to(t.dtype)
        within = (vals <= thr[:, None]) & (vals < inf)
        whole = within[:, -1].clone() if kk < t.shape[1] else torch.zeros(t.shape[0], dtype=torch.bool)
        within &= ~whole[:, None]
        r, j = within.nonzero(as_tuple=True)
        if r.numel():
            found.add(r + rows.start, idx[r, j] + cols0, vals[r, j])
        if whole.any():
            wr = whole.nonzero(as_tuple=True)[0]
            sub = t[wr]
            r, c = ((sub <= thr[wr, None]) & (sub < inf)).nonzero(as_tuple=True)
            found.add(wr[r] + rows.start, c + cols0, sub[r, c])

    for r0, r1, c0, c1, tile in _sym_tiles(X, skip=one_label if groups is not None else None):
        if groups is not None:
            for a, b, c, e in same_label(r0, r1, c0, c1):
                tile[a:b, c:e] = inf
        if skip_self and r0 == c0:
            tile.fill_diagonal_(inf)
        update(slice(r0, r1), c0, tile)
        if r0 != c0:
            update(slice(c0, c1), r0, tile.T)
    return _resolve_k(X, found, (run[:, k - 1].to(torch.float64) + slack).numpy(), k)


def _resolve_k(X: _Operand, found: _Pairs, thr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest reference values of each row among its candidate pairs (those within the
    final bound; every pair that can be among the k smallest is one of them)."""
    out_d = np.full((X.n, k), float("inf"))
    out_i = np.full((X.n, k), -1, dtype=np.int64)
    if not found.size:
        return out_d, out_i
    rows, cols, vals = found.view()
    keep = vals <= thr[rows]                      # against the final bound (tile values, then exact ones)
    rows, cols = rows[keep], cols[keep]
    exact = pair_sqdist(X.src, X.src, X.at(rows), X.at(cols))
    order = np.lexsort((cols, exact, rows))       # by row, then value, then position
    rows, cols, exact = rows[order], cols[order], exact[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    take = rank < k
    out_d[rows[take], rank[take]] = exact[take]
    out_i[rows[take], rank[take]] = cols[take]
    return out_d, out_i


def knn_sqdist(x: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of every row, by reference squared distance.

    Parameters
    ----------
    x : array of shape (N, d)
    k : int, 1 <= k <= N - 1

    Returns
    -------
    sqdist : ndarray of float64, shape (N, k)
        Ascending reference squared distances (:func:`pair_sqdist`) to the k nearest rows other
        than the row itself (duplicates of it count, at distance 0).
    index : ndarray of int64, shape (N, k)
        Their positions (ties: the lowest position first).
    """
    x = _as_2d(x)
    n, d = x.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
    with _threads_for(n * n * d / 2):
        X, _, coef = _operands(x, None)
        return _k_smallest(X, coef, int(k), skip_self=True)


def nearest_other_sqdist(x: Any, labels: Any) -> np.ndarray:
    """Every row's reference squared distance to the nearest row with another label (+inf if none).

    The rows are visited sorted by label, so that the tiles inside one label are skipped.

    Parameters
    ----------
    x : array of shape (N, d)
    labels : int array of shape (N,)

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    x = _as_2d(x)
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
    order = np.argsort(labels, kind="stable")
    srt = labels[order]
    groups = np.flatnonzero(np.r_[True, srt[1:] != srt[:-1]]) if srt.size else np.zeros(0, dtype=np.int64)
    with _threads_for(x.shape[0] ** 2 * x.shape[1] / 2):
        X, _, coef = _operands(x, None, order)
        d, _ = _k_smallest(X, coef, 1, skip_self=False, groups=groups)
    out = np.empty(X.n)
    out[order] = d[:, 0]
    return out


class EdgeLimitError(ValueError):
    """A radius graph would have more edges than the memory bound allows."""


def radius_graph(x: Any, radius_sq: float, *, max_edges: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The directed graph with an edge i -> j for every pair of rows with reference squared
    distance < ``radius_sq`` (each row's own edge included when ``radius_sq > 0``), as CSR.

    The graph is symmetric (the reference distance is): one pass over the tiles on and above the
    diagonal decides each unordered pair once and records both edges. Memory: the edges, 8 bytes
    each while the tiles are read (in buffers grown by half: up to 12) and 4 bytes in the result
    (up to 16 bytes an edge at the peak, when the CSR is filled), and one tile.

    Parameters
    ----------
    x : array of shape (N, d)
    radius_sq : float
        The squared radius (a strict inequality, as in ProbCover's reference code).
    max_edges : int, optional
        Raise :class:`EdgeLimitError` as soon as the graph is seen to have more edges.

    Returns
    -------
    indptr : ndarray of int64, shape (N + 1,)
    indices : ndarray of int32 (int64 for N >= 2^31), shape (E,)
        Row i's neighbours are ``indices[indptr[i]:indptr[i + 1]]`` (in no particular order).
    """
    x = _as_2d(x)
    with _threads_for(x.shape[0] ** 2 * x.shape[1] / 2):
        return _radius_graph(x, radius_sq, max_edges)


def _radius_graph(x: np.ndarray, radius_sq: float, max_edges: int | None) -> tuple[np.ndarray, np.ndarray]:
    X, _, coef = _operands(x, None)
    idx_dtype = np.int32 if X.n < 2**31 else np.int64
    slack = coef * (X.sqn64 + X.max_sqn64)
    lo_all = radius_sq - slack
    hi_all = radius_sq + slack
    counts = np.zeros(X.n, dtype=np.int64)
    edges = _Pairs((idx_dtype, idx_dtype))
    total = 0
    for r0, r1, c0, _c1, tile in _sym_tiles(X):
        lo = torch.from_numpy(lo_all[r0:r1]).to(tile.dtype)[:, None]
        hi = torch.from_numpy(hi_all[r0:r1]).to(tile.dtype)[:, None]
        r, c = (tile <= hi).nonzero(as_tuple=True)
        sure = tile[r, c] < lo[r, 0]
        rows, cols = r.numpy(), c.numpy()
        maybe = ~sure.numpy()
        if maybe.any():       # within the rounding bound of the radius: decided on reference values
            exact = pair_sqdist(X.src, X.src, X.at(rows[maybe] + r0), X.at(cols[maybe] + c0))
            maybe[maybe] = exact >= radius_sq
            rows, cols = rows[~maybe], cols[~maybe]
        rows = (rows + r0).astype(idx_dtype)
        cols = (cols + c0).astype(idx_dtype)
        if r0 != c0:       # the pairs below the diagonal: the same, reversed
            rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])
        total += rows.size
        if max_edges is not None and total > max_edges:
            raise EdgeLimitError(
                f"the radius graph has more than max_edges = {max_edges:,} edges (already {total:,} after the "
                f"pairs of the first {r1:,} of {X.n:,} rows; it would take about {16 * total / 2**30:.1f}+ GiB "
                f"to build): the radius is too large for this memory bound")
        counts += np.bincount(rows, minlength=X.n)
        edges.add(rows, cols)
    indptr = np.zeros(X.n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(total, dtype=idx_dtype)
    cursor = indptr[:-1].copy()
    all_rows, all_cols = edges.view()
    step = 1 << 22
    for s in range(0, total, step):     # counting sort by row, a slice of the edges at a time
        rows, cols = all_rows[s:s + step], all_cols[s:s + step]
        order = np.argsort(rows, kind="stable")
        rs = rows[order]
        rank = np.arange(rs.size) - np.searchsorted(rs, rs, side="left")
        indices[cursor[rs] + rank] = cols[order]
        cursor += np.bincount(rows, minlength=X.n)
    return indptr, indices


def within_radius(x: Any, centers: Any, radius_sq: float) -> np.ndarray:
    """Whether each row of ``x`` has a row of ``centers`` at reference squared distance < ``radius_sq``.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    x, centers = _as_2d(x), _as_2d(centers)
    with _threads_for(x.shape[0] * centers.shape[0] * x.shape[1]):
        return _within_radius(x, centers, radius_sq)


def _within_radius(x: np.ndarray, centers: np.ndarray, radius_sq: float) -> np.ndarray:
    X, C, coef = _operands(x, centers)
    out = np.zeros(X.n, dtype=bool)
    if C.n == 0:
        return out
    for r0, r1, c0, _c1, tile in _tiles(X, C):
        slack = coef * (X.sqn64[r0:r1] + C.max_sqn64)
        lo = torch.from_numpy(radius_sq - slack).to(tile.dtype)[:, None]
        hi = torch.from_numpy(radius_sq + slack).to(tile.dtype)[:, None]
        out[r0:r1] |= (tile < lo).any(dim=1).numpy()
        maybe = (tile < hi) & torch.from_numpy(~out[r0:r1])[:, None]
        mr, mc = maybe.nonzero(as_tuple=True)
        if mr.numel():
            mr, mc = mr.numpy() + r0, mc.numpy() + c0
            ok = pair_sqdist(X.src, C.src, X.at(mr), C.at(mc)) < radius_sq
            out[mr[ok]] = True
    return out


def _neighbours_of(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The concatenated neighbour lists of ``rows`` (a CSR gather)."""
    starts, stops = indptr[rows], indptr[rows + 1]
    lens = stops - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
    return indices[offsets].astype(np.int64, copy=False)


def greedy_max_coverage(indptr: np.ndarray, indices: np.ndarray, n: int, *, covered: Any = None,
                        order: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximum coverage on a symmetric graph: each pick is the row whose neighbour list holds
    the most rows not yet covered; its neighbours become covered.

    Exact: every row's count of uncovered neighbours is kept current (each covered row lowers
    the counts of its neighbours once, so the updates cost the edges), and each pick is the
    largest count, ties to the row earliest in ``order``. Once nothing is left to cover, the
    remaining picks are the rows not yet picked in ``order``, with gain 0.

    Parameters
    ----------
    indptr, indices : CSR of a symmetric graph on N rows (as :func:`radius_graph` returns)
    n : int, 1 <= n <= N
    covered : bool array of shape (N,), optional
        Rows covered before the first pick (by the labeled items' balls).
    order : int array, a permutation of 0..N-1, optional
        Preference among equal gains (default: the lowest position).

    Returns
    -------
    picks : ndarray of int64, shape (n,)
    gains : ndarray of int64, shape (n,)
        The number of rows each pick newly covered.
    """
    N = int(indptr.size - 1)
    if not 1 <= n <= N:
        raise ValueError(f"n must be between 1 and N = {N}, got {n}")
    order = np.arange(N) if order is None else np.asarray(order, dtype=np.int64)
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N)
    cov = np.zeros(N, dtype=bool) if covered is None else np.array(covered, dtype=bool)
    # key = gain * N + (N - 1 - rank): one argmax gives the largest gain, ties to the earliest rank
    key = np.diff(indptr).astype(np.int64) * N + (N - 1 - rank)

    def lower(rows: np.ndarray) -> None:
        nb = _neighbours_of(indptr, indices, rows)
        if nb.size > N // 8:
            key[:] -= np.bincount(nb, minlength=N) * N
        elif nb.size:
            np.subtract.at(key, nb, N)

    lower(np.flatnonzero(cov))
    picks = np.empty(n, dtype=np.int64)
    gains = np.zeros(n, dtype=np.int64)
    picked = np.zeros(N, dtype=bool)
    j = 0
    while j < n:
        p = int(np.argmax(key))
        gain = int(key[p] // N)
        if gain <= 0:
            break
        new = indices[indptr[p]:indptr[p + 1]].astype(np.int64)
        new = new[~cov[new]]
        cov[new] = True
        lower(new)
        picks[j], gains[j] = p, gain
        picked[p] = True
        j += 1
    if j < n:
        rest = order[~picked[order]]
        picks[j:] = rest[:n - j]
    return picks, gains
