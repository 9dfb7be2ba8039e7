"""Top-n uncertainty sampling on the softmax outputs.

The three classic scores of Settles, "Active Learning Literature Survey" (2009), section 3.1, used
as the CONF, MARG and ENTROPY baselines by Ash et al. (ICLR 2020, section 4). Each takes the n
most uncertain candidates; ties go to the lowest index, and the result is ordered from most to
least uncertain. The scores themselves live in :mod:`activebatch.kernels.scores`.
"""
from __future__ import annotations

from ..kernels.scores import entropy_scores, least_confidence_scores, margin_scores
from .base import ScoreStrategy, register

__all__ = ["LeastConfidence", "Margin", "Entropy"]


@register
class LeastConfidence(ScoreStrategy):
    """Least confidence: the n candidates with the smallest max class probability."""

    name = "least_confidence"
    fields = ("probs",)
    largest = False
    score_name = "max_k p_k (smaller = more uncertain)"
    score = staticmethod(least_confidence_scores)


@register
class Margin(ScoreStrategy):
    """Margin sampling (Roth & Small, 2006): the smallest gap between the top two probabilities."""

    name = "margin"
    fields = ("probs",)
    largest = False
    score_name = "p_(1) - p_(2) (smaller = more uncertain)"
    score = staticmethod(margin_scores)


@register
class Entropy(ScoreStrategy):
    """Entropy sampling (Wang & Shang, 2014): the largest predictive entropy."""

    name = "entropy"
    fields = ("probs",)
    score_name = "predictive entropy in nats (larger = more uncertain)"
    score = staticmethod(entropy_scores)
