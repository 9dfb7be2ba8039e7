"""Greedy maximisation of a generalized max-cover: the representativeness of Suggestive Annotation.

F(S_a, S_u) = sum_{u in S_u} max_{s in S_a} cos(s, u) (Yang, Zhang, Chen, Zhang & Chen, "Suggestive
Annotation", MICCAI 2017, section 2.3): how well the chosen set S_a represents the pool S_u. It is
a facility-location function, monotone and submodular, and the greedy algorithm that adds the
candidate of largest marginal gain n times reaches at least (1 - 1/e) of the best increase over
F of the empty set (Nemhauser, Wolsey & Fisher 1978), which is what the paper uses.

The greedy keeps the current max-similarity vector over the pool, cur_u = max_{s in S_a} cos(s, u)
(-1 while S_a is empty, the least a cosine can be, so the first gain is F({c}) + |S_u|), and
evaluates every remaining candidate's gain sum_u max(0, cos(c, u) - cur_u) in row blocks of the
pool: the K x N candidate-pool similarities are kept between steps when they fit in
``max_cached_values``, else recomputed block by block in each step (so a memory-mapped pool is read
once per pick). No N x N matrix is ever formed.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .rowblocks import rows_per_block

__all__ = ["greedy_max_cover", "representativeness", "MAX_CACHED_VALUES", "TIE_TOLERANCE"]

#: Candidate-pool similarities kept between greedy steps (float64: 128 MiB); beyond, recomputed.
MAX_CACHED_VALUES = 1 << 24
#: Gains closer than this times N to the largest count as tied (float64 sums of N cosines round at
#: about N * 1e-16); ties go to the lowest candidate position.
TIE_TOLERANCE = 1e-12


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length, float64; an all-zero row stays zero (cosine 0 with everything)."""
    x = x.to(torch.float64)
    return x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)


def _as_tensor(block: Any, device: torch.device) -> torch.Tensor:
    t = block if isinstance(block, torch.Tensor) else torch.from_numpy(np.array(block, dtype=np.float64))   # a copy
    return t.to(device)


def _rows(pool: Any, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows ``rows`` of the pool (tensor, array or memory map), reading a memory map in ascending order."""
    if isinstance(pool, torch.Tensor):
        return pool.index_select(0, torch.as_tensor(rows, device=pool.device)).to(device)
    order = np.argsort(rows, kind="stable")
    out = np.empty((rows.size,) + tuple(pool.shape[1:]), dtype=np.float64)
    out[order] = np.asarray(pool[rows[order]], dtype=np.float64)
    return torch.from_numpy(out).to(device)


def _blocks(pool: Any, block_rows: int, device: torch.device) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(start, stop, unit rows start:stop) of the pool, one block at a time."""
    n = int(pool.shape[0])
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        yield start, stop, _unit(_as_tensor(pool[start:stop], device))


def greedy_max_cover(pool_N_d: Any, candidates: Any, n: int, *, block_rows: int | None = None,
                     max_cached_values: int = MAX_CACHED_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """Choose ``n`` of the ``candidates`` (rows of the pool) greedily for F(S_a, S_u) (module docstring).

    Parameters
    ----------
    pool_N_d : tensor, array or memory map of shape (N, d)
        The descriptors of the whole pool S_u (embeddings); read in row blocks.
    candidates : array of int, shape (K,)
        Distinct rows of the pool that may be chosen (S_c).
    n : int
        1 <= n <= K.
    block_rows : int, optional
        Pool rows per block (default: the row-block rule for K-wide similarity rows).
    max_cached_values : int
        Keep the K x N similarities between steps when K * N is at most this.

    Returns
    -------
    positions : ndarray of int64, shape (n,)
        Positions into ``candidates``, in the order they were chosen. Ties (gains within
        ``TIE_TOLERANCE * N`` of the largest) go to the lowest position.
    gains : ndarray of float64, shape (n,)
        The increase of F when each was added (the first: F of the one-element set).
    """
    cand = np.asarray(candidates, dtype=np.int64).reshape(-1)
    K, N = int(cand.size), int(pool_N_d.shape[0])
    if not 1 <= n <= K:
        raise ValueError(f"n must be between 1 and the number of candidates ({K}), got {n}")
    device = pool_N_d.device if isinstance(pool_N_d, torch.Tensor) else torch.device("cpu")
    C = _unit(_rows(pool_N_d, cand, device))                                   # (K, d)
    rows = int(block_rows) if block_rows is not None else rows_per_block(max(K, int(C.shape[1])))
    cache: list[tuple[int, torch.Tensor]] | None = [] if K * N <= int(max_cached_values) else None
    cur = torch.full((N,), -1.0, dtype=torch.float64, device=device)
    available = torch.ones(K, dtype=torch.bool, device=device)
    picks: list[int] = []
    gains: list[float] = []
    last: int | None = None
    for step in range(n):
        gain = torch.zeros(K, dtype=torch.float64, device=device)
        if cache is not None and step > 0:
            for start, S in cache:
                seg = cur[start:start + S.shape[1]]
                seg.copy_(torch.maximum(seg, S[last]))                           # add the last pick to cur
                gain += (S - seg).clamp_min(0.0).sum(dim=1)
        else:
            for start, stop, U in _blocks(pool_N_d, rows, device):
                S = C @ U.T                                                      # (K, B) cosines
                seg = cur[start:stop]
                if last is not None:
                    seg.copy_(torch.maximum(seg, S[last]))
                gain += (S - seg).clamp_min(0.0).sum(dim=1)
                if cache is not None:
                    cache.append((start, S))
        gain = torch.where(available, gain, torch.tensor(-np.inf, dtype=torch.float64, device=device))
        # The first gain within rounding (TIE_TOLERANCE per pool item) of the largest: ties go to the
        # lowest position whatever the rounding of the sums (row order, blocks, cache).
        top = gain.max()
        best = int(torch.nonzero(gain >= top - TIE_TOLERANCE * max(N, 1))[0, 0])
        picks.append(best)
        gains.append(float(gain[best]) - (N if step == 0 else 0.0))             # the first: F({c}) itself
        available[best] = False
        last = best
    return np.asarray(picks, dtype=np.int64), np.asarray(gains, dtype=np.float64)


def representativeness(pool_N_d: Any, chosen: Any) -> float:
    """F(S_a, S_u) = sum over pool rows u of max over chosen rows s of cos(s, u) (0 for no rows chosen)."""
    chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)
    if chosen.size == 0:
        return 0.0
    device = pool_N_d.device if isinstance(pool_N_d, torch.Tensor) else torch.device("cpu")
    C = _unit(_rows(pool_N_d, chosen, device))
    total = 0.0
    for _, _, U in _blocks(pool_N_d, rows_per_block(max(chosen.size, int(C.shape[1]))), device):
        total += float((C @ U.T).max(dim=0).values.sum())
    return total
