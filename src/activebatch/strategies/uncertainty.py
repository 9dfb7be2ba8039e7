"""Top-n uncertainty sampling on the softmax outputs.

The three classic scores of Settles, "Active Learning Literature Survey" (2009), section 3.1, used
as the CONF, MARG and ENTROPY baselines by Ash et al. (ICLR 2020, section 4). Each takes the n
most uncertain candidates; ties go to the lowest index, and the result is ordered from most to
least uncertain.
"""
from __future__ import annotations

import numpy as np
import torch

from ..learning.evidence import Evidence
from .base import Strategy, _ranked, register

__all__ = ["LeastConfidence", "Margin", "Entropy", "least_confidence_scores", "margin_scores",
           "entropy_scores"]


def least_confidence_scores(probs: torch.Tensor) -> torch.Tensor:
    """max_k p_k (smaller = more uncertain), shape (N,)."""
    return probs.max(dim=1).values


def margin_scores(probs: torch.Tensor) -> torch.Tensor:
    """p_(1) - p_(2), the gap between the two largest probabilities (smaller = more uncertain)."""
    top2 = probs.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def entropy_scores(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy -sum_k p_k log p_k in nats (larger = more uncertain), with 0 log 0 = 0."""
    p = probs.to(torch.float64)
    return -torch.special.xlogy(p, p).sum(dim=1)


@register
class LeastConfidence(Strategy):
    """Least confidence: the n candidates with the smallest max class probability."""

    name = "least_confidence"
    needs = frozenset({"probs"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(evidence.rowwise(least_confidence_scores, "probs"), n, largest=False)


@register
class Margin(Strategy):
    """Margin sampling (Roth & Small, 2006): the smallest gap between the top two probabilities."""

    name = "margin"
    needs = frozenset({"probs"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(evidence.rowwise(margin_scores, "probs"), n, largest=False)


@register
class Entropy(Strategy):
    """Entropy sampling (Wang & Shang, 2014): the largest predictive entropy."""

    name = "entropy"
    needs = frozenset({"probs"})

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(evidence.rowwise(entropy_scores, "probs"), n, largest=True)
