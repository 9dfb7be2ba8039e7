"""Ranked batch-mode selection: uncertainty traded against similarity to the labeled and chosen items.

Cardoso, Silva, Canuto, Moro & Gonçalves, "Ranked batch-mode active learning", Information
Sciences 379 (2017), as implemented by modAL's ``uncertainty_batch_sampling``. Picks are made one
at a time; at step t, with |U| candidates not yet picked and |L| labeled-or-picked items,

    score(x) = alpha (1 - sim(x)) + (1 - alpha) u(x),    alpha = |U| / (|U| + |L|),

where u is the uncertainty and sim(x) = 1 / (1 + min Euclidean distance from x to the labeled
items and the earlier picks); each pick then counts as labeled. With no labeled items (a cold
start) the first pick is the candidate with the smallest mean distance to all candidates.

The minimum distance of every candidate is kept and lowered after each pick, so a pick costs
O(N d); the initial minimum over the labeled set, and the cold start's mean distances, are
computed a block of candidate rows at a time (:func:`~activebatch.kernels.rowblocks.rows_per_block`),
never as a whole N x L (or N x N) matrix, and memory-mapped embeddings are never read whole.
Squared distances use |a|^2 + |b|^2 - 2 a.b in float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .factors import _to_torch
from .rowblocks import rows_per_block

__all__ = ["ranked_batch"]


def _device(x: Any) -> torch.device:
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


class _Rows:
    """Float64 blocks of a tensor or row source, with the rows' squared norms."""

    def __init__(self, x: Any, device: torch.device) -> None:
        self.x, self.device = x, device
        self.n, self.d = int(x.shape[0]), int(x.shape[1])
        self.sq = torch.empty(self.n, dtype=torch.float64, device=device)
        for start, stop, xb in self.blocks(self.d):
            self.sq[start:stop] = (xb * xb).sum(dim=1)

    def blocks(self, width: int):
        rows = rows_per_block(max(width, self.d))
        for start in range(0, self.n, rows):
            stop = min(start + rows, self.n)
            yield start, stop, _to_torch(self.x[start:stop], self.device, torch.float64)

    def row(self, i: int) -> torch.Tensor:
        return _to_torch(self.x[i:i + 1], self.device, torch.float64)[0]


def _min_sqdist(z: _Rows, centres: torch.Tensor) -> torch.Tensor:
    """min_c |z_i - c|^2 over the rows of ``centres`` (C, d), shape (N,), float64."""
    c_sq = (centres * centres).sum(dim=1)
    out = torch.empty(z.n, dtype=torch.float64, device=z.device)
    for start, stop, zb in z.blocks(centres.shape[0]):
        d2 = torch.addmm(c_sq[None, :], zb, centres.T, alpha=-2.0)
        out[start:stop] = d2.min(dim=1).values.add_(z.sq[start:stop]).clamp_min_(0.0)
    return out


def _most_central(z: _Rows) -> int:
    """The candidate with the smallest mean Euclidean distance to all candidates (ties: lowest)."""
    total = torch.zeros(z.n, dtype=torch.float64, device=z.device)
    for start, stop, zb in z.blocks(z.n):
        for cstart, cstop, cb in z.blocks(stop - start):
            d2 = torch.addmm(z.sq[cstart:cstop][None, :], zb, cb.T, alpha=-2.0)
            total[start:stop] += d2.add_(z.sq[start:stop, None]).clamp_min_(0.0).sqrt_().sum(dim=1)
    return int(torch.argmin(total))


def ranked_batch(embeddings_N_d: Any, uncertainty_N: Any, n: int, *,
                 labeled_embeddings_L_d: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The ranked batch of ``n`` candidates, in selection order, and each pick's score.

    Parameters
    ----------
    embeddings_N_d : tensor, array or memory map of shape (N, d)
        Row sources are read a block of rows at a time (once per pick).
    uncertainty_N : tensor or array of shape (N,)
        u(x), larger = more uncertain (modAL's default: 1 - max_k p_k).
    n : int
        1 <= n <= N.
    labeled_embeddings_L_d : tensor or array of shape (L, d), optional
        The labeled items; none (or L = 0) is a cold start.

    Returns
    -------
    order : ndarray of int64, shape (n,)
        Ties go to the lowest position.
    scores : ndarray of float64, shape (n,)
        alpha (1 - sim) + (1 - alpha) u of each pick when it was picked; +inf for a cold
        start's first pick, chosen as the most central candidate.
    """
    device = _device(embeddings_N_d)
    z = _Rows(embeddings_N_d, device)
    N = z.n
    u = torch.as_tensor(uncertainty_N).to(device=device, dtype=torch.float64).reshape(-1)
    if u.shape[0] != N:
        raise ValueError(f"uncertainty has {u.shape[0]} values but there are {N} candidates")
    L = 0 if labeled_embeddings_L_d is None else int(labeled_embeddings_L_d.shape[0])
    order: list[int] = []
    scores: list[float] = []
    taken = torch.zeros(N, dtype=torch.bool, device=device)
    if L > 0:
        lab = _to_torch(labeled_embeddings_L_d if isinstance(labeled_embeddings_L_d, torch.Tensor)
                        else labeled_embeddings_L_d[:], device, torch.float64)
        d2min = _min_sqdist(z, lab)
    else:
        first = _most_central(z)
        order.append(first)
        scores.append(float("inf"))
        taken[first] = True
        d2min = _min_sqdist(z, z.row(first)[None, :])
    while len(order) < n:
        t = len(order)                          # items picked so far, now counted as labeled
        alpha = (N - t) / (N + L)               # |U| / (|U| + |L|) with U the candidates left
        dissim = 1.0 - 1.0 / (1.0 + d2min.sqrt())
        score = alpha * dissim + (1.0 - alpha) * u
        score.masked_fill_(taken, float("-inf"))
        i = int(torch.argmax(score))            # the first maximum: ties go to the lowest position
        order.append(i)
        scores.append(float(score[i]))
        taken[i] = True
        if len(order) < n:
            torch.minimum(d2min, _min_sqdist(z, z.row(i)[None, :]), out=d2min)
    return np.asarray(order, dtype=np.int64), np.asarray(scores, dtype=np.float64)
