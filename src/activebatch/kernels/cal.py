"""Contrastive Active Learning (CAL) scores: divergence from the nearest labeled neighbours.

Margatina, Vernikos, Barrault & Aletras, "Active Learning by Acquiring Contrastive Examples",
EMNLP 2021, Algorithm 1. Each candidate x gets the mean, over its k nearest labeled items x_l in
embedding space (Euclidean distance), of KL(p(y | x_l) || p(y | x)).

The candidates are processed a block of rows at a time (the row-block rule of
:func:`~activebatch.kernels.rowblocks.rows_per_block`, on the widest of the L distances, the d
embedding columns and the k x K gathered neighbour probabilities), so neither an N x L distance
matrix nor a copy of a memory-mapped pool is ever held whole. Distances and divergences are
computed in float64.
"""
from __future__ import annotations

from typing import Any

import torch

from .factors import _to_torch
from .rowblocks import rows_per_block

__all__ = ["knn_labeled", "cal_scores"]


def _whole(value: Any, device: torch.device) -> torch.Tensor:
    return _to_torch(value if isinstance(value, torch.Tensor) else value[:], device, torch.float64)


def _normalized(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit Euclidean norm (all-zero rows stay zero)."""
    return torch.nn.functional.normalize(x, dim=1)


def _smallest_k(d2: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of each row and their columns; ties go to the lowest column.

    ``topk`` finds them in O(L) per row; only rows where the k-th value is tied with a value
    left out are sorted (stably) to pick the lowest columns among the ties.
    """
    vals, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
    tied = (d2 <= vals[:, -1:]).sum(dim=1) > k
    if bool(tied.any()):
        rows = tied.nonzero().reshape(-1)
        srt = torch.sort(d2[rows], dim=1, stable=True)
        vals[rows], idx[rows] = srt.values[:, :k], srt.indices[:, :k]
    return vals, idx


class _Labeled:
    """The labeled embeddings once, in float64 (unit rows when normalising), with their squared norms."""

    def __init__(self, labeled_embeddings_L_d: Any, device: torch.device, normalize: bool) -> None:
        lab = _whole(labeled_embeddings_L_d, device)
        if lab.shape[0] == 0:
            raise ValueError("the nearest labeled neighbours need at least one labeled item, got none")
        self.lab = _normalized(lab) if normalize else lab
        self.sq = (self.lab * self.lab).sum(dim=1)
        self.normalize = normalize

    def nearest(self, rows: Any, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared distances and positions of the k nearest labeled items of one block of rows."""
        zb = _to_torch(rows, device, torch.float64)
        if self.normalize:
            zb = _normalized(zb)
        d2 = torch.addmm(self.sq[None, :], zb, self.lab.T, alpha=-2.0).add_((zb * zb).sum(dim=1, keepdim=True))
        return _smallest_k(d2.clamp_min_(0.0), k)


def _device(x: Any) -> torch.device:
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def knn_labeled(embeddings_N_d: Any, labeled_embeddings_L_d: Any, k: int, *,
                normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest labeled items of every candidate, by Euclidean distance.

    Parameters
    ----------
    embeddings_N_d : tensor, array or memory map of shape (N, d)
        The candidates; row sources are read a block of rows at a time.
    labeled_embeddings_L_d : tensor or array of shape (L, d), L >= 1
    k : int
        Neighbours per candidate; min(k, L) are returned.
    normalize : bool, default False
        Scale every row to unit length first (the released code of CAL's authors).

    Returns
    -------
    sqdist : tensor of shape (N, min(k, L)), float64
        Squared distances, nearest first; ties go to the lowest labeled position.
    index : tensor of shape (N, min(k, L)), int64
        Positions of the neighbours among the labeled rows.
    """
    N, d = int(embeddings_N_d.shape[0]), int(embeddings_N_d.shape[1])
    device = _device(embeddings_N_d)
    lab = _Labeled(labeled_embeddings_L_d, device, normalize)
    L = int(lab.lab.shape[0])
    k = min(int(k), L)
    out_d = torch.empty((N, k), dtype=torch.float64, device=device)
    out_i = torch.empty((N, k), dtype=torch.int64, device=device)
    rows = rows_per_block(max(L, d))
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        out_d[start:stop], out_i[start:stop] = lab.nearest(embeddings_N_d[start:stop], k, device)
    return out_d, out_i


def cal_scores(probs_N_K: Any, embeddings_N_d: Any, labeled_embeddings_L_d: Any, *,
               labeled_probs_L_K: Any = None, labels_L: Any = None, k: int = 10,
               normalize: bool = False) -> torch.Tensor:
    """CAL's contrastive score of every candidate, shape (N,), float64 (nats; larger = more contrastive).

    s(x) = (1/k) sum_{l in kNN(x)} KL(q_l || p(x)), where q_l is the labeled neighbour's predicted
    distribution ``labeled_probs_L_K[l]`` (the paper) or, given ``labels_L`` instead, its one-hot
    gold label, for which KL(e_y || p(x)) = -log p_y(x) (the cross-entropy variant of the
    authors' code). A class the candidate gives probability 0 but a neighbour does not makes the
    score +inf.

    Parameters
    ----------
    probs_N_K : tensor, array or memory map of shape (N, K)
    embeddings_N_d : tensor, array or memory map of shape (N, d)
    labeled_embeddings_L_d : tensor or array of shape (L, d), L >= 1
    labeled_probs_L_K : tensor or array of shape (L, K), optional
    labels_L : tensor or array of int, shape (L,), optional
        Exactly one of ``labeled_probs_L_K`` and ``labels_L`` is given.
    k : int, default 10
        Neighbours per candidate (min(k, L) are used).
    normalize : bool, default False
        Find the neighbours on unit-length embeddings.
    """
    if (labeled_probs_L_K is None) == (labels_L is None):
        raise ValueError("give exactly one of labeled_probs_L_K and labels_L")
    N, d = int(embeddings_N_d.shape[0]), int(embeddings_N_d.shape[1])
    device = _device(embeddings_N_d)
    K = int(probs_N_K.shape[1])
    if labels_L is not None:
        y = torch.as_tensor(labels_L, device=device).to(torch.int64).reshape(-1)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= K):
            raise ValueError(f"labels must be class indices in 0..{K - 1} (probs has {K} classes)")
        q = None
    else:
        q = _whole(labeled_probs_L_K, device)
        q_negent = torch.special.xlogy(q, q).sum(dim=1)          # sum_k q log q, (L,)
    lab = _Labeled(labeled_embeddings_L_d, device, normalize)
    L = int(lab.lab.shape[0])
    k = min(int(k), L)
    if (q is not None and q.shape[0] != L) or (q is None and y.shape[0] != L):
        raise ValueError(f"the labeled items' probabilities or labels must have {L} rows (one per labeled embedding)")
    out = torch.empty(N, dtype=torch.float64, device=device)
    rows = rows_per_block(max(L, d, k * K))
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        _, nb = lab.nearest(embeddings_N_d[start:stop], k, device)
        p = _to_torch(probs_N_K[start:stop], device, torch.float64)
        if q is None:
            kl = -torch.log(p.gather(1, y[nb]))                                  # (B, k)
        else:
            cross = torch.special.xlogy(q[nb], p[:, None, :]).sum(dim=2)          # sum_k q log p, (B, k)
            kl = (q_negent[nb] - cross).clamp_min_(0.0)
        out[start:stop] = kl.mean(dim=1)
    return out
