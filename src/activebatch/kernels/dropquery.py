"""DropQuery's uncertainty: how often dropout on the features changes a linear head's prediction.

Gupte, Aklilu, Nirschl & Yeung-Levy, "Revisiting Active Learning in the Era of Vision Foundation
Models", TMLR 2024. Each candidate's features z are passed through the linear classifier
(W, b) M times with dropout (rate p, kept values scaled by 1 / (1 - p), as ``torch.nn.Dropout``
in training mode), and the passes whose predicted class differs from the prediction on the
intact features are counted. Candidates whose count exceeds a fraction of M form the candidate
set, the threshold lowered until the set is large enough (the authors' released code).

The features are read a block of rows at a time (:func:`~activebatch.kernels.rowblocks.rows_per_block`),
so a memory-mapped pool is never read whole; the logits are computed in float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .factors import _to_torch
from .rowblocks import rows_per_block

__all__ = ["dropout_disagreement", "candidate_threshold"]


def dropout_disagreement(embeddings_N_d: Any, weight_K_d: torch.Tensor, bias_K: torch.Tensor | None, *,
                         passes: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """For every candidate, the number of dropout passes whose argmax class differs from the
    argmax of the intact logits z W^T + b (argmax ties go to the lowest class).

    Parameters
    ----------
    embeddings_N_d : tensor, array or memory map of shape (N, d)
        The classifier's inputs.
    weight_K_d, bias_K : tensors of shape (K, d) and (K,) (bias optional)
        The linear classifier.
    passes : int
        M, the number of dropout passes.
    p : float
        Dropout rate, 0 <= p < 1: each feature of each candidate in each pass is zeroed
        independently with probability p.
    rng : numpy.random.Generator
        Draws the masks (block by block, pass by pass).

    Returns
    -------
    ndarray of int64, shape (N,)
        Counts in 0..M.
    """
    N, d = int(embeddings_N_d.shape[0]), int(embeddings_N_d.shape[1])
    device = weight_K_d.device
    W = weight_K_d.detach().to(torch.float64)
    b = None if bias_K is None else bias_K.detach().to(device=device, dtype=torch.float64)
    scale = 1.0 / (1.0 - p)
    out = np.zeros(N, dtype=np.int64)
    rows = rows_per_block(d)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        zb = _to_torch(embeddings_N_d[start:stop], device, torch.float64)
        base = torch.addmm(b, zb, W.T) if b is not None else zb @ W.T
        y0 = base.argmax(dim=1)
        count = torch.zeros(stop - start, dtype=torch.int64, device=device)
        for _ in range(passes):
            keep = torch.from_numpy(rng.random((stop - start, d)) >= p).to(device)
            dropped = zb * keep * scale
            logits = torch.addmm(b, dropped, W.T) if b is not None else dropped @ W.T
            count += (logits.argmax(dim=1) != y0).to(torch.int64)
        out[start:stop] = count.cpu().numpy()
    return out


def candidate_threshold(counts_N: np.ndarray, passes: int, threshold: float, n: int, min_candidates: int) -> int:
    """The count t such that the candidates are the items with counts > t.

    It starts at the largest t in 0..M with t / M <= threshold, so that counts > t exactly when
    count / M > threshold (t = 1 for the paper's M = 3 and threshold 0.5: at least 2 of 3 passes
    disagree, the authors' ``mismatch > M // 2``), and is
    lowered by one while fewer than ``min_candidates * n`` items exceed it and t > 0 (the
    authors' code: 25 * n).
    """
    t = max(c for c in range(passes + 1) if c / passes <= threshold)   # threshold >= 0: c = 0 qualifies
    counts = np.asarray(counts_N)
    while t > 0 and int(np.count_nonzero(counts > t)) < min_candidates * n:
        t -= 1
    return t
