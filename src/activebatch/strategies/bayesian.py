"""The Bayesian family: acquisition functions on MC-dropout samples.

Every strategy here reads ``mc_probs`` (S, N, K): the softmax outputs of S stochastic forward
passes with consistent dropout masks (Gal & Ghahramani, ICML 2016; Gal, Islam & Ghahramani, "Deep
Bayesian Active Learning with Image Data", ICML 2017). The top-n scores rank the candidates
independently; BatchBALD chooses the batch jointly. Ties go to the lowest index and results are
ordered from the most to the least informative.
"""
from __future__ import annotations

import numpy as np
import torch

from ..learning.evidence import Evidence
from ..kernels.batchbald import bald_scores, greedy_batchbald
from .base import Strategy, _ranked, register
from .uncertainty import entropy_scores, least_confidence_scores, margin_scores

__all__ = ["BALD", "BatchBALD", "VarRatio", "MeanSTD", "LeastConfidenceDropout", "MarginDropout",
           "EntropyDropout", "mc_mean", "var_ratio_scores", "mean_std_scores"]


def mc_mean(mc_probs: torch.Tensor) -> torch.Tensor:
    """The MC-averaged predictive (1/S) sum_s p_s, shape (N, K), float64."""
    return mc_probs.to(torch.float64).mean(dim=0)


def var_ratio_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """Variation ratio 1 - max_k mean_s p_s(k) (larger = more uncertain), shape (N,)."""
    return 1.0 - mc_mean(mc_probs).max(dim=1).values


def mean_std_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """Mean standard deviation (1/K) sum_k sqrt(E_s[p_s(k)^2] - E_s[p_s(k)]^2), shape (N,).

    The standard deviation is over the S samples (population form, 1/S), as in Kampffmeyer,
    Salberg & Jenssen (CVPR Workshops 2016).
    """
    p = mc_probs.to(torch.float64)
    mean = p.mean(dim=0)
    var = ((p * p).mean(dim=0) - mean * mean).clamp_min(0.0)
    return var.sqrt().mean(dim=1)


class _MCScore(Strategy):
    needs = frozenset({"mc_probs"})


@register
class BALD(_MCScore):
    """BALD: the n candidates of largest mutual information between label and parameters.

    Houlsby, Huszar, Ghahramani & Lengyel (2011), "Bayesian Active Learning for Classification
    and Preference Learning"; with MC dropout as in Gal, Islam & Ghahramani (ICML 2017):
    I(y; w | x) = H[(1/S) sum_s p_s] - (1/S) sum_s H[p_s]. High when the samples disagree
    confidently. Scores are computed independently, so a batch can hold near-duplicates
    (see ``batchbald``).
    """

    name = "bald"

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(bald_scores(evidence.mc_probs), n, largest=True)


@register
class BatchBALD(_MCScore):
    """BatchBALD: greedy maximisation of the joint mutual information I(y_1, ..., y_n; w).

    Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse Batch Acquisition for Deep
    Bayesian Active Learning", NeurIPS 2019, Algorithm 1. The joint MI is submodular, so the
    greedy batch is within 1 - 1/e of the best batch; the first pick is BALD's top choice, later
    picks avoid candidates whose information the batch already holds. Joint entropies are exact
    while the batch so far has at most ``max_exact_configs`` label configurations, and estimated
    from ``num_samples`` sampled configurations beyond (see
    :func:`activebatch.kernels.greedy_batchbald`).

    Parameters
    ----------
    num_samples : int, default 40,000
        Sampled label configurations for the Monte-Carlo joint entropies (the authors' value).
    max_exact_configs : int, optional
        Largest number of configurations K^|A| handled exactly; default ``num_samples``.
    lazy : bool, default True
        Lazy evaluation of the greedy step (same choices as full evaluation when exact).
    """

    name = "batchbald"

    def __init__(self, num_samples: int = 40_000, max_exact_configs: int | None = None,
                 lazy: bool = True) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if max_exact_configs is not None and (isinstance(max_exact_configs, bool)
                                              or not isinstance(max_exact_configs, (int, np.integer))
                                              or max_exact_configs < 1):
            raise ValueError(f"max_exact_configs must be a positive integer or None, got {max_exact_configs!r}")
        self.num_samples = int(num_samples)
        self.max_exact_configs = None if max_exact_configs is None else int(max_exact_configs)
        self.lazy = bool(lazy)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        res = greedy_batchbald(evidence.mc_probs, n, rng, num_samples=self.num_samples,
                               max_exact_configs=self.max_exact_configs, lazy=self.lazy)
        return res.indices


@register
class VarRatio(_MCScore):
    """Variation ratios: the n candidates of largest 1 - max_k of the MC-averaged probabilities.

    Freeman (1965), as used for deep active learning by Gal, Islam & Ghahramani (ICML 2017),
    section 3. On the averaged predictive it ranks like ``least_confidence_dropout``.
    """

    name = "var_ratio"

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(var_ratio_scores(evidence.mc_probs), n, largest=True)


@register
class MeanSTD(_MCScore):
    """Mean STD: the n candidates of largest mean (over classes) standard deviation of p_s.

    Kampffmeyer, Salberg & Jenssen (CVPR Workshops 2016), a baseline of Gal, Islam & Ghahramani
    (ICML 2017).
    """

    name = "mean_std"

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(mean_std_scores(evidence.mc_probs), n, largest=True)


@register
class LeastConfidenceDropout(_MCScore):
    """Least confidence on the MC-averaged predictive: the smallest max_k mean_s p_s(k)."""

    name = "least_confidence_dropout"

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(least_confidence_scores(mc_mean(evidence.mc_probs)), n, largest=False)


@register
class MarginDropout(_MCScore):
    """Margin on the MC-averaged predictive: the smallest gap between its two largest classes."""

    name = "margin_dropout"

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(margin_scores(mc_mean(evidence.mc_probs)), n, largest=False)


@register
class EntropyDropout(_MCScore):
    """Max entropy on the MC-averaged predictive, H[(1/S) sum_s p_s] (Gal, Islam & Ghahramani,
    ICML 2017, "Max Entropy")."""

    name = "entropy_dropout"

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        return _ranked(entropy_scores(mc_mean(evidence.mc_probs)), n, largest=True)
