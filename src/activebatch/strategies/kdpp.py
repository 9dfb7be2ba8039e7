"""k-DPP sampling on gradient embeddings: the BADGE paper's Appendix F comparison."""
from __future__ import annotations

import numpy as np

from ..kernels import gradient_embedding_factors
from ..kernels.kdpp import KernelRankWarning, kdpp_mcmc
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, call_noting, register

__all__ = ["KDPP"]


@register
class KDPP(Strategy):
    """k-DPP on the gradient-embedding kernel (Ash et al., ICLR 2020, Appendix F).

    Samples the batch from a k-DPP with L_ij = <g_i, g_j>, the inner products of BADGE's
    hallucinated gradient embeddings, by Kang's (2013) exchange Markov chain with
    floor(5 k ln k) steps, as in the paper. The kernel is never formed as a matrix.

    When n exceeds the kernel's rank no n-subset has positive probability: the batch is then a
    maximal independent set padded with uniform picks, and a
    :class:`~activebatch.kernels.kdpp.KernelRankWarning` says so (also in the selection's ``notes``).

    Parameters
    ----------
    steps : int, optional
        Chain length (default floor(5 k ln k) for a batch of k).
    """

    name = "kdpp"
    randomized = True
    needs = frozenset({"probs", "embeddings"})

    def __init__(self, steps: int | None = None) -> None:
        self.steps = check_scalar(steps, "steps", int, min_val=1, allow_none=True)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        z = evidence.embeddings
        u = gradient_embedding_factors(evidence.probs.to(z.device))
        picked, notes = call_noting(KernelRankWarning, kdpp_mcmc, u, z, n, rng, steps=self.steps)
        return Selection(rng.permutation(picked), notes=notes)  # a DPP sample is a set: no selection order
