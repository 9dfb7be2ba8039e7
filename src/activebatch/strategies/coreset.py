"""Core-set selection (Sener & Savarese, ICLR 2018)."""
from __future__ import annotations

import numpy as np
import torch

from ..kernels import kcenter_greedy
from ..learning.evidence import Evidence
from .base import Selection, Strategy, register

__all__ = ["CoreSet"]


@register
class CoreSet(Strategy):
    """Greedy k-center core-set on penultimate-layer embeddings.

    Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
    ICLR 2018, Algorithm 1: furthest-first traversal conditioned on the embeddings of all labeled
    items: each pick is the candidate whose Euclidean distance to its nearest labeled-or-picked
    point is largest (the CORESET baseline of Ash et al., 2020). Ties go to the lowest index. With
    no labeled embeddings the first pick is uniformly random.

    A memory-mapped ``embeddings`` array (see :func:`activebatch.select`) is read in row blocks
    and never copied whole.
    """

    name = "coreset"
    needs = frozenset({"embeddings"})
    score_name = ("distance to the nearest labeled or earlier pick when picked (larger first; +inf for a "
                  "cold start's first pick)")
    # Without labeled embeddings (a cold start) the traversal starts from a random candidate.
    optional = frozenset({"labeled_embeddings"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        # stream(): a memory-mapped pool reaches the kernel unconverted; it reads row blocks.
        z = evidence.stream("embeddings")
        lab = evidence.get("labeled_embeddings") if evidence.has("labeled_embeddings") else None
        if isinstance(z, torch.Tensor) and lab is not None:
            lab = lab.to(z.device)
        order, dist = kcenter_greedy(z, n, centers=lab, rng=rng, return_distances=True)
        return Selection(order, scores=dist)
