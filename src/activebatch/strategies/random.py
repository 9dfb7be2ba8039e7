"""Uniform random sampling: the baseline every active-learning curve is compared with."""
from __future__ import annotations

import numpy as np

from ..learning.evidence import Evidence
from .base import Strategy, register

__all__ = ["Random"]


@register
class Random(Strategy):
    """Choose n candidates uniformly at random without replacement (RAND in Ash et al., 2020)."""

    name = "random"
    randomized = True
    needs = frozenset()

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(evidence.n_candidates, size=n, replace=False)
