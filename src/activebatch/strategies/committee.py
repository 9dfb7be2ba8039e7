"""Query by committee: disagreement among committee members.

The members' class probabilities come in the ``mc_probs`` evidence field, shape (C, N, K): the
members of a :class:`~activebatch.learning.committee.Committee` (independently initialised networks,
Beluch et al., CVPR 2018) or C stochastic forward passes with dropout. Scores follow Settles,
"Active Learning Literature Survey" (2009), section 3.2 (see :mod:`activebatch.kernels.scores`);
each strategy takes the n candidates the committee disagrees on most, ties to the lowest index.
"""
from __future__ import annotations

from ..kernels.scores import consensus_entropy_scores, kl_divergence_scores, vote_entropy_scores
from .base import ScoreStrategy, register

__all__ = ["VoteEntropy", "ConsensusEntropy", "KLDivergence"]


class _CommitteeScore(ScoreStrategy):
    fields = ("mc_probs",)
    rowwise = False


@register
class VoteEntropy(_CommitteeScore):
    """Query by committee with vote entropy (:func:`~activebatch.kernels.scores.vote_entropy_scores`):
    largest first (Dagan & Engelson, ICML 1995)."""

    name = "vote_entropy"
    score_name = "vote entropy in nats (larger = more disagreement)"
    score = staticmethod(vote_entropy_scores)


@register
class ConsensusEntropy(_CommitteeScore):
    """Query by committee with the entropy of the consensus
    (:func:`~activebatch.kernels.scores.consensus_entropy_scores`)."""

    name = "consensus_entropy"
    score_name = "entropy of the consensus in nats (larger = more uncertain)"
    score = staticmethod(consensus_entropy_scores)


@register
class KLDivergence(_CommitteeScore):
    """Query by committee with the mean KL divergence from the consensus
    (:func:`~activebatch.kernels.scores.kl_divergence_scores`; McCallum & Nigam, ICML 1998)."""

    name = "kl_divergence"
    score_name = "mean KL divergence from the consensus in nats (larger = more disagreement)"
    score = staticmethod(kl_divergence_scores)
