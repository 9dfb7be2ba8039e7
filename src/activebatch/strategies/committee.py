"""Query by committee: disagreement among committee members.

The members' class probabilities come in the ``mc_probs`` evidence field, shape (C, N, K): the
members of a :class:`~activebatch.learning.committee.Committee` (independently initialised networks,
Beluch et al., CVPR 2018) or C stochastic forward passes with dropout. Scores follow Settles,
"Active Learning Literature Survey" (2009), section 3.2; each strategy takes the n candidates
the committee disagrees on most, ties to the lowest index.
"""
from __future__ import annotations

import numpy as np
import torch

from ..learning.evidence import Evidence
from .base import Strategy, _ranked, register

__all__ = ["VoteEntropy", "ConsensusEntropy", "KLDivergence", "vote_entropy_scores",
           "consensus_entropy_scores", "kl_divergence_scores"]


def vote_entropy_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """Vote entropy -sum_y V(y)/C log(V(y)/C), shape (N,), float64 (nats).

    V(y) counts the members whose most probable class is y (ties in a member's probabilities go
    to the lowest class index). Dagan & Engelson, "Committee-Based Sampling for Training
    Probabilistic Classifiers", ICML 1995.
    """
    C, _, K = mc_probs.shape
    votes = torch.nn.functional.one_hot(mc_probs.argmax(dim=2), K).sum(dim=0).to(torch.float64)   # (N, K)
    frac = votes / C
    return -torch.special.xlogy(frac, frac).sum(dim=1)


def consensus_entropy_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the consensus distribution P_C = mean over members, shape (N,), float64.

    The "soft" vote entropy of Settles (2009), eq. 3.2 with the consensus probability.
    """
    p = mc_probs.to(torch.float64).mean(dim=0)
    return -torch.special.xlogy(p, p).sum(dim=1)


def kl_divergence_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """Mean KL divergence of each member from the consensus, 1/C sum_c KL(P_c || P_C), shape (N,).

    McCallum & Nigam, "Employing EM and Pool-Based Active Learning for Text Classification",
    ICML 1998. It equals H(P_C) - mean_c H(P_c), the mutual information that BALD estimates
    from dropout samples.
    """
    p = mc_probs.to(torch.float64)
    consensus = p.mean(dim=0, keepdim=True)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, consensus)).sum(dim=2)   # (C, N)
    return kl.mean(dim=0).clamp_min(0.0)


@register
class VoteEntropy(Strategy):
    """Query by committee with vote entropy (:func:`vote_entropy_scores`): largest first."""

    name = "vote_entropy"
    needs = frozenset({"mc_probs"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(vote_entropy_scores(evidence.mc_probs), n, largest=True)


@register
class ConsensusEntropy(Strategy):
    """Query by committee with the entropy of the consensus (:func:`consensus_entropy_scores`)."""

    name = "consensus_entropy"
    needs = frozenset({"mc_probs"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(consensus_entropy_scores(evidence.mc_probs), n, largest=True)


@register
class KLDivergence(Strategy):
    """Query by committee with the mean KL divergence from the consensus
    (:func:`kl_divergence_scores`)."""

    name = "kl_divergence"
    needs = frozenset({"mc_probs"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(kl_divergence_scores(evidence.mc_probs), n, largest=True)
