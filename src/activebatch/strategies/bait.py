"""BAIT: Batch Active learning via Information maTrices (Fisher embeddings)."""
from __future__ import annotations

import numpy as np
import torch

from ..kernels.bait import bait_select
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register

__all__ = ["Bait"]


@register
class Bait(Strategy):
    """BAIT (Ash, Goel, Krishnamurthy & Kakade, "Gone Fishing: Neural Active Learning with Fisher
    Embeddings", NeurIPS 2021, Algorithm 1).

    The batch minimises a bound on the error of the last layer's maximum-likelihood estimate,
    tr(M^{-1} F_U): F_U is the mean Fisher information of the last layer over the pool (the
    candidates and the labeled items) and M = lambda Id plus the Fisher of the labeled items and
    of the batch. The Fisher of an input is that of multinomial logistic regression on its
    embedding z with softmax output p, (diag p - p p^T) (kron) z z^T, whose K rows
    sqrt(p_k) (e_k - p) (kron) z are the loss gradients for each label weighted by sqrt(p_k)
    (the paper's Fisher embedding); the labeled items' Fisher uses the model's predictions on
    them (``labeled_probs``), as in the authors' code. The batch is chosen greedily: forward
    selection of 2n candidates, each the largest decrease of the objective, then backward
    removal down to n, each the smallest increase ("oversampling by two, then pruning"), with
    Woodbury updates. The weights follow the authors' reference code
    (``bait_sampling.py`` in github.com/JordanAsh/badge): the labeled Fisher enters as
    L / (L + n) times its mean and each pick's Fisher as n / (L + n) times its own.

    The K d-dimensional embeddings are never formed: each candidate keeps two K x K matrices
    that are updated in O(K^2 d) per step (see :mod:`activebatch.kernels.bait` for the exact
    costs), but the (K d) x (K d) matrices M^{-1} and M^{-1} F_U M^{-1} are needed; problems
    whose working memory, 8 (3 (K d)^2 + 3 N K^2) bytes, exceeds ``memory_limit_mib`` are
    refused with a message naming the shapes (K = 10 and d = 512 need about 0.6 GiB plus 2.4 kB
    per candidate; K = 100 and d = 512, 59 GiB).

    Parameters
    ----------
    lamb : float, default 1
        The regulariser lambda > 0 (the reference code's default).
    oversample : float, default 2
        Forward selection adds ceil(oversample n) candidates (at most all) before pruning to n
        (the paper's factor 2; 1 is plain forward greedy).
    memory_limit_mib : int, default 4096
        Bound on the working memory in MiB.

    The per-pick scores are the objective's decreases as the picks are added, in selection
    order (the order forward selection added them), to the labeled set and the earlier picks;
    they sum to the batch's total decrease. Deterministic; ties go to the lowest position.
    """

    name = "bait"
    needs = frozenset({"probs", "embeddings", "labeled_embeddings", "labeled_probs"})
    score_name = ("decrease of BAIT's objective tr(M^-1 F_U) as the pick is added, in selection order, to the "
                  "labeled set and the earlier picks (larger = more informative)")

    def __init__(self, lamb: float = 1.0, oversample: float = 2.0, memory_limit_mib: int = 4096) -> None:
        self.lamb = check_scalar(lamb, "lamb", float, min_val=0.0, include_min=False)
        self.oversample = check_scalar(oversample, "oversample", float, min_val=1.0)
        self.memory_limit_mib = check_scalar(memory_limit_mib, "memory_limit_mib", int, min_val=1)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        # stream(): memory-mapped candidate and labeled embeddings are read in row blocks.
        z = evidence.stream("embeddings")
        device = z.device if isinstance(z, torch.Tensor) else None
        res = bait_select(evidence.stream("probs"), z, evidence.get("labeled_probs"),
                          evidence.stream("labeled_embeddings"), n, lamb=self.lamb, oversample=self.oversample,
                          max_bytes=self.memory_limit_mib << 20, device=device)
        return Selection(res.indices, scores=res.decreases)
