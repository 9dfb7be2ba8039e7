"""Information density (Settles & Craven, EMNLP 2008): uncertainty weighted by representativeness."""
from __future__ import annotations

import torch

from ..kernels.information_density import information_density_scores, mean_cosine_similarity
from ..kernels.scores import entropy_scores, least_confidence_scores, margin_scores
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import ScoreStrategy, register

__all__ = ["InformationDensity"]

_MEASURES = ("entropy", "margin", "least_confidence")


def _informativeness(probs: torch.Tensor, measure: str) -> torch.Tensor:
    """Base informativeness phi(x) >= 0, larger = more informative, float64."""
    if measure == "entropy":
        return entropy_scores(probs)
    if measure == "margin":
        return 1.0 - margin_scores(probs).to(torch.float64)
    return 1.0 - least_confidence_scores(probs).to(torch.float64)


@register
class InformationDensity(ScoreStrategy):
    """Information density (Settles & Craven, "An Analysis of Active Learning Strategies for
    Sequence Labeling Tasks", EMNLP 2008, the information density equation phi^ID; also Settles,
    "Active Learning Literature Survey", 2009, density-weighted methods).

    Uncertainty sampling prefers outliers; information density weights a candidate's
    informativeness by how representative it is of the pool:

        phi_ID(x) = phi(x) * ( (1/U) sum_{u=1}^{U} sim(x, x^(u)) )^beta,

    with sim the cosine similarity of the embeddings and the mean taken over all U candidates
    (x included). The n largest scores are taken; ties go to the lowest position. The mean
    similarity is computed exactly in O(U d) as x^ . mean_u(x^(u)) on unit vectors
    (:mod:`activebatch.kernels.information_density`), never as a U x U matrix.

    The paper's experiments (sequence labeling with CRFs) use sequence entropy as the base
    measure and beta = 1; for one label per item sequence entropy is the predictive entropy, the
    default here. Its feature vectors are non-negative, so their similarities lie in [0, 1];
    a negative mean cosine similarity of embeddings is taken as 0 (no density).

    Parameters
    ----------
    measure : {"entropy", "margin", "least_confidence"}, default "entropy"
        phi: predictive entropy (nats), 1 - (p_(1) - p_(2)), or 1 - max_k p_k.
    beta : float, default 1.0
        Weight of the density term (the paper's value is 1; 0 gives plain uncertainty sampling).

    Memory-mapped ``probs`` and ``embeddings`` are read a block of rows at a time.
    """

    name = "information_density"
    fields = ("probs", "embeddings")
    largest = True
    rowwise = False
    score_name = "informativeness x (mean cosine similarity to the candidates)^beta (larger first)"

    def __init__(self, measure: str = "entropy", beta: float = 1.0) -> None:
        self.measure = check_choice(measure, "measure", _MEASURES)
        self.beta = check_scalar(beta, "beta", float, min_val=0.0)

    def score(self, probs: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """phi_ID of every candidate from whole tensors, shape (N,), float64."""
        phi = _informativeness(probs, self.measure)
        return information_density_scores(phi, mean_cosine_similarity(embeddings).to(phi.device), self.beta)

    def scores(self, evidence: Evidence) -> torch.Tensor:
        # Both terms stream memory-mapped fields in row blocks: phi row by row, the density in
        # two passes over the embeddings.
        phi = evidence.rowwise(lambda p: _informativeness(p, self.measure), "probs")
        density = mean_cosine_similarity(evidence.stream("embeddings"))
        return information_density_scores(phi, density.to(phi.device), self.beta)
