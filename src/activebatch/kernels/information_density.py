"""Information density: informativeness weighted by the mean cosine similarity to the pool.

Settles & Craven, "An Analysis of Active Learning Strategies for Sequence Labeling Tasks",
EMNLP 2008 (information density): phi_ID(x) = phi(x) * ((1/U) sum_{u=1}^{U} sim(x, x^(u)))^beta with sim the
cosine similarity and the sum over all U unlabeled candidates (x itself included).

The mean similarity needs no U x U matrix: with unit vectors x^ = x / |x|,
(1/U) sum_u cos(x, x^(u)) = x^ . m, where m = (1/U) sum_u x^(u) is the mean unit vector. Two
passes over the rows (one for m, one for the dot products), a block of rows at a time
(:func:`~activebatch.kernels.rowblocks.rows_per_block`), cost O(U d) and never read a memory-mapped
pool whole. A zero row has cosine similarity 0 with everything. Computed in float64.
"""
from __future__ import annotations

from typing import Any

import torch

from .factors import _to_torch
from .rowblocks import rows_per_block

__all__ = ["mean_unit_vector", "mean_cosine_similarity", "information_density_scores"]


def _device(x: Any) -> torch.device:
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def _unit_blocks(embeddings_N_d: Any):
    """(start, stop, unit rows in float64) for each block of rows."""
    N, d = int(embeddings_N_d.shape[0]), int(embeddings_N_d.shape[1])
    rows = rows_per_block(d)
    device = _device(embeddings_N_d)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        zb = _to_torch(embeddings_N_d[start:stop], device, torch.float64)
        yield start, stop, torch.nn.functional.normalize(zb, dim=1)


def mean_unit_vector(embeddings_N_d: Any) -> torch.Tensor:
    """m = (1/N) sum_u x^(u) / |x^(u)|, shape (d,), float64 (zero rows count as zero vectors)."""
    N, d = int(embeddings_N_d.shape[0]), int(embeddings_N_d.shape[1])
    total = torch.zeros(d, dtype=torch.float64, device=_device(embeddings_N_d))
    for _, _, unit in _unit_blocks(embeddings_N_d):
        total += unit.sum(dim=0)
    return total / max(N, 1)


def mean_cosine_similarity(embeddings_N_d: Any) -> torch.Tensor:
    """(1/N) sum_u cos(x_i, x_u) for every row i (u over all N rows, i included), shape (N,), float64.

    Parameters
    ----------
    embeddings_N_d : tensor, array or memory map of shape (N, d)
        Row sources are read a block of rows at a time, twice.
    """
    m = mean_unit_vector(embeddings_N_d)
    out = torch.empty(int(embeddings_N_d.shape[0]), dtype=torch.float64, device=m.device)
    for start, stop, unit in _unit_blocks(embeddings_N_d):
        out[start:stop] = unit @ m
    return out


def information_density_scores(informativeness_N: torch.Tensor, density_N: torch.Tensor,
                               beta: float = 1.0) -> torch.Tensor:
    """phi(x) * max(density(x), 0)^beta, shape (N,), float64.

    Cosine similarities of the paper's non-negative feature vectors lie in [0, 1]; embeddings
    may have a negative mean similarity, which counts as no density (0), so that the score is
    defined for every beta >= 0 and such a candidate ranks below every candidate of positive
    density and informativeness.
    """
    phi = informativeness_N.to(torch.float64)
    dens = density_N.to(device=phi.device, dtype=torch.float64).clamp_min(0.0)
    return phi * dens.pow(float(beta))
