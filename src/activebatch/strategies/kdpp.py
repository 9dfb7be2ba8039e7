"""k-DPP sampling on gradient embeddings: the BADGE paper's Appendix F comparison."""
from __future__ import annotations

import numpy as np

from ..learning.evidence import Evidence
from ..kernels import gradient_embedding_factors
from ..kernels.kdpp import kdpp_mcmc
from .base import Strategy, register

__all__ = ["KDPP"]


@register
class KDPP(Strategy):
    """k-DPP on the gradient-embedding kernel (Ash et al., ICLR 2020, Appendix F).

    Samples the batch from a k-DPP with L_ij = <g_i, g_j>, the inner products of BADGE's
    hallucinated gradient embeddings, by Kang's (2013) exchange Markov chain with
    floor(5 k ln k) steps, as in the paper. The kernel is never formed as a matrix.

    Parameters
    ----------
    steps : int, optional
        Chain length (default floor(5 k ln k) for a batch of k).
    """

    name = "kdpp"
    needs = frozenset({"probs", "embeddings"})

    def __init__(self, steps: int | None = None) -> None:
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps must be a positive integer or None, got {steps!r}")
        self.steps = steps

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        z = evidence.embeddings
        u = gradient_embedding_factors(evidence.probs.to(z.device))
        picked = kdpp_mcmc(u, z, n, rng, steps=self.steps)
        return rng.permutation(picked)  # a DPP sample is a set: no selection order
