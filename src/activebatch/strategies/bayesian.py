"""The Bayesian family: acquisition functions on MC-dropout samples.

Every strategy here reads ``mc_probs`` (S, N, K): the softmax outputs of S stochastic forward
passes with consistent dropout masks (Gal & Ghahramani, ICML 2016; Gal, Islam & Ghahramani, "Deep
Bayesian Active Learning with Image Data", ICML 2017). The top-n scores rank the candidates
independently; BatchBALD chooses the batch jointly. Ties go to the lowest index (BatchBALD's
ties after saturation: at random by default) and results are ordered from the most to the least
informative.
"""
from __future__ import annotations

import numpy as np

from ..kernels.batchbald import BatchBALDSaturationWarning, bald_scores, greedy_batchbald
from ..kernels.scores import (
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    mc_mean,
    mean_std_scores,
    var_ratio_scores,
)
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import ScoreStrategy, Selection, Strategy, call_noting, register

__all__ = ["BALD", "BatchBALD", "VarRatio", "MeanSTD", "LeastConfidenceDropout", "MarginDropout",
           "EntropyDropout"]


def _mc(score):
    """``score`` applied to the MC-averaged predictive (1/S) sum_s p_s."""
    def on_mean(mc_probs_S_N_K):
        return score(mc_mean(mc_probs_S_N_K))
    on_mean.__doc__ = f"{score.__name__} of the MC-averaged predictive."
    return on_mean


class _MCScore(ScoreStrategy):
    fields = ("mc_probs",)
    rowwise = False


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
    score_name = "mutual information I(y; w | x) in nats (larger = more informative)"
    score = staticmethod(bald_scores)


@register
class BatchBALD(Strategy):
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
    ties : {"random", "lowest"}, default "random"
        Picks after saturation, when the batch labels identify the parameter sample in every
        sampled configuration and every gain estimate is exactly zero (the joint MI has reached
        what S samples can hold, at most ln S nats): drawn uniformly at random, or the lowest
        index as the authors' ``argmax`` (which follows the pool's order). A
        :class:`~activebatch.kernels.BatchBALDSaturationWarning` and the selection's notes say
        after how many picks it happened.
    """

    name = "batchbald"
    needs = frozenset({"mc_probs"})
    score_name = ("conditional gain I(y_1..y_t; w) - I(y_1..y_{t-1}; w) of each pick in nats "
                  "(the joint mutual information added)")

    def __init__(self, num_samples: int = 40_000, max_exact_configs: int | None = None,
                 lazy: bool = True, ties: str = "random") -> None:
        self.num_samples = check_scalar(num_samples, "num_samples", int, min_val=1)
        self.max_exact_configs = check_scalar(max_exact_configs, "max_exact_configs", int, min_val=1,
                                              allow_none=True)
        self.lazy = check_scalar(lazy, "lazy", bool)
        self.ties = check_choice(ties, "ties", ("random", "lowest"))

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        res, notes = call_noting(BatchBALDSaturationWarning, greedy_batchbald, evidence.mc_probs, n, rng,
                                 num_samples=self.num_samples, max_exact_configs=self.max_exact_configs,
                                 lazy=self.lazy, ties=self.ties)
        return Selection(res.indices, scores=res.gains, notes=notes)


@register
class VarRatio(_MCScore):
    """Variation ratios: the n candidates of largest 1 - max_k of the MC-averaged probabilities.

    Freeman (1965), as used for deep active learning by Gal, Islam & Ghahramani (ICML 2017),
    section 3. On the averaged predictive it ranks like ``least_confidence_dropout``.
    """

    name = "var_ratio"
    score_name = "1 - max_k of the MC-averaged probabilities (larger = more uncertain)"
    score = staticmethod(var_ratio_scores)


@register
class MeanSTD(_MCScore):
    """Mean STD: the n candidates of largest mean (over classes) standard deviation of p_s.

    Kampffmeyer, Salberg & Jenssen (CVPR Workshops 2016), a baseline of Gal, Islam & Ghahramani
    (ICML 2017).
    """

    name = "mean_std"
    score_name = "mean over classes of the std of p_s(k) (larger = more uncertain)"
    score = staticmethod(mean_std_scores)


@register
class LeastConfidenceDropout(_MCScore):
    """Least confidence on the MC-averaged predictive: the smallest max_k mean_s p_s(k)."""

    name = "least_confidence_dropout"
    largest = False
    score_name = "max_k of the MC-averaged probabilities (smaller = more uncertain)"
    score = staticmethod(_mc(least_confidence_scores))


@register
class MarginDropout(_MCScore):
    """Margin on the MC-averaged predictive: the smallest gap between its two largest classes."""

    name = "margin_dropout"
    largest = False
    score_name = "p_(1) - p_(2) of the MC-averaged probabilities (smaller = more uncertain)"
    score = staticmethod(_mc(margin_scores))


@register
class EntropyDropout(_MCScore):
    """Max entropy on the MC-averaged predictive, H[(1/S) sum_s p_s] (Gal, Islam & Ghahramani,
    ICML 2017, "Max Entropy")."""

    name = "entropy_dropout"
    score_name = "entropy of the MC-averaged probabilities in nats (larger = more uncertain)"
    score = staticmethod(_mc(entropy_scores))
