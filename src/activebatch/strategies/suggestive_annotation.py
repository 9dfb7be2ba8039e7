"""Suggestive annotation: the most uncertain candidates, then the most representative of them."""
from __future__ import annotations

import numpy as np

from ..kernels.maxcover import MAX_CACHED_VALUES, greedy_max_cover
from ..kernels.scores import mean_variance_scores, top_n
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register

__all__ = ["SuggestiveAnnotation"]


@register
class SuggestiveAnnotation(Strategy):
    """Suggestive annotation (Yang, Zhang, Chen, Zhang & Chen, "Suggestive Annotation: A Deep Active
    Learning Framework for Biomedical Image Segmentation", MICCAI 2017, section 2).

    1. Uncertainty: the disagreement of a committee trained on bootstrap resamples of the labels,
       the variance of the members' probabilities (the paper: of each pixel's, averaged over the
       image; here of each class's, averaged over the classes, which for two classes is the same),
       read from ``mc_probs`` (:func:`~activebatch.kernels.scores.mean_variance_scores`).
    2. S_c: the K = ``uncertain_factor`` * n most uncertain candidates (the paper takes K = 16 and
       n = |S_a| = 8, so K = 2 n; ties to the lowest position).
    3. S_a: n of them chosen greedily to maximise the representativeness
       F(S_a, S_u) = sum_{u in S_u} max_{s in S_a} cos(s, u) of the whole pool S_u (every
       candidate), the cosine between embeddings (the paper: the FCN's encoding descriptors); a
       generalized max-cover problem, for which the greedy is the paper's (1 - 1/e)
       approximation (:func:`~activebatch.kernels.maxcover.greedy_max_cover`, exact greedy).

    The paper's committee is trained on bootstrap resamples: use
    ``Committee(model, bootstrap=True)`` (:class:`~activebatch.learning.committee.Committee`), whose
    members' probabilities are the ``mc_probs`` of its evidence; any ``mc_probs`` (MC dropout, a
    committee without resampling) is accepted. The picks come in greedy order; each pick's score is
    the increase of F when it was added (the first: F of it alone). Deterministic.

    Memory and time: the greedy keeps one float64 value per pool item and the K x N candidate-pool
    similarities when K N <= ``max_cached_values`` (128 MiB by default), recomputing them by
    row blocks of the pool at each of the n steps otherwise; n steps of O(K N) (plus O(K N d) for
    the similarities, once or per step).

    Parameters
    ----------
    uncertain_factor : int, default 2
        K = min(uncertain_factor * n, N) most uncertain candidates are offered to the greedy
        (1: the n most uncertain, no representativeness).
    max_cached_values : int, default 16777216
        The most candidate-pool similarities kept between greedy steps.
    """

    name = "suggestive_annotation"
    needs = frozenset({"mc_probs", "embeddings"})
    score_name = "increase of the representativeness sum_u max_s cos(s, u) when picked (larger = more representative)"

    def __init__(self, uncertain_factor: int = 2, max_cached_values: int = MAX_CACHED_VALUES) -> None:
        self.uncertain_factor = check_scalar(uncertain_factor, "uncertain_factor", int, min_val=1)
        self.max_cached_values = check_scalar(max_cached_values, "max_cached_values", int, min_val=0)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        uncertainty = mean_variance_scores(evidence.mc_probs).detach().cpu().numpy()
        k = min(self.uncertain_factor * n, evidence.n_candidates)
        top = top_n(uncertainty, k, largest=True)
        positions, gains = greedy_max_cover(evidence.stream("embeddings"), top, n,
                                            max_cached_values=self.max_cached_values)
        return Selection(top[positions], scores=gains)
