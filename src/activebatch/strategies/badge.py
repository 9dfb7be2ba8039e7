"""BADGE: Batch Active learning by Diverse Gradient Embeddings."""
from __future__ import annotations

import numpy as np
import torch

from ..kernels.kmeanspp import badge_kmeanspp
from ..learning.evidence import Evidence
from ..utils.validation import check_choice
from .base import Selection, Strategy, register

__all__ = ["Badge"]


@register
class Badge(Strategy):
    """BADGE (Ash, Zhang, Krishnamurthy, Langford & Agarwal, ICLR 2020, Algorithm 1).

    Each candidate x gets the hallucinated gradient embedding of the cross-entropy loss with
    respect to the final layer at the predicted label y^ = argmax p(x):
    g_x = (p(x) - e_y^) (outer) z(x), whose norm is a lower bound on the gradient norm for any
    label (Proposition 1) and so measures uncertainty, while its direction carries diversity.
    The batch is the k-means++ seeding of n centres on {g_x}: each further centre is drawn with
    probability proportional to its squared distance to the nearest chosen centre. The K*d
    embedding is never formed; distances use (u . u')(z . z') with u = p - e_y^.

    Parameters
    ----------
    init : {"norm", "random"}, default "norm"
        First centre: the largest gradient-embedding norm (the authors' released code), or uniform
        at random (the paper's Algorithm 1 and Arthur & Vassilvitskii's k-means++).

    Memory-mapped ``probs`` and ``embeddings`` (see :func:`activebatch.select`) are read in row
    blocks and never copied whole.
    """

    name = "badge"
    randomized = True
    needs = frozenset({"probs", "embeddings"})
    score_name = ("D^2: squared gradient-embedding distance to the nearest earlier pick when picked "
                  "(+inf for the first)")

    def __init__(self, init: str = "norm") -> None:
        self.init = check_choice(init, "init", ("norm", "random"))

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        # stream(): memory-mapped inputs reach the kernel unconverted; it reads them in row blocks.
        probs, z = evidence.stream("probs"), evidence.stream("embeddings")
        if isinstance(probs, torch.Tensor) and isinstance(z, torch.Tensor):
            probs = probs.to(z.device)
        order, d2 = badge_kmeanspp(probs, z, n, rng, init=self.init, return_d2=True)
        return Selection(order, scores=d2)
