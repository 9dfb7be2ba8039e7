"""EPIG: prediction-oriented Bayesian active learning (the expected predictive information gain)."""
from __future__ import annotations

from ..kernels.epig import epig_scores
from .base import ScoreStrategy, register

__all__ = ["EPIG"]


@register
class EPIG(ScoreStrategy):
    """EPIG: the n candidates whose labels are most informative about predictions on target inputs.

    Bickford Smith, Kirsch, Farquhar, Gal, Foster & Rainforth, "Prediction-Oriented Bayesian
    Active Learning", AISTATS 2023. Where BALD (``bald``) values information about the
    parameters, EPIG values information about the labels y* of target inputs x* drawn from the
    distribution the model will be used on:

        EPIG(x) = E_{x*} [ I(y; y* | x, x*) ],

    estimated from the S stochastic passes ``mc_probs`` on the candidates and the same S passes
    ``target_mc_probs`` on T target inputs, with p(y, y*) = (1/S) sum_s p_s(y) p_s(y*) and the
    expectation over x* an average over the T targets (see
    :func:`activebatch.kernels.epig.epig_scores`). EPIG never exceeds BALD, and candidates
    whose parameter uncertainty does not bear on the targets (outliers, irrelevant regions of
    input space) score low. The scores are computed independently (top-n), in nats.

    EPIG has no options of its own: its estimator's sizes are those of the evidence (S passes,
    T targets). :meth:`activebatch.Learner.evidence` draws 1,000 target inputs uniformly from
    the pool by default (the paper's choice when no separate target set is given); give pool
    indices of inputs from the deployment distribution as ``Learner.evidence(targets=...)``,
    or the passes on them as ``target_mc_probs``.
    """

    name = "epig"
    fields = ("mc_probs", "target_mc_probs")
    rowwise = False
    score_name = "expected predictive information gain E_x* I(y; y* | x, x*) in nats (larger = more informative)"
    score = staticmethod(epig_scores)
