"""Ranked batch-mode active learning (Cardoso et al., Information Sciences 2017)."""
from __future__ import annotations

import numpy as np
import torch

from ..kernels.ranked_batch import ranked_batch
from ..kernels.scores import least_confidence_scores, margin_scores
from ..learning.evidence import Evidence
from ..utils.validation import check_choice
from .base import Selection, Strategy, register

__all__ = ["RankedBatch"]

_MEASURES = ("least_confidence", "margin")


def _uncertainty(probs: torch.Tensor, measure: str) -> torch.Tensor:
    """u(x) in [0, 1], larger = more uncertain, float64."""
    if measure == "margin":
        return 1.0 - margin_scores(probs).to(torch.float64)
    return 1.0 - least_confidence_scores(probs).to(torch.float64)


@register
class RankedBatch(Strategy):
    """Ranked batch-mode active learning (Cardoso, Silva, Canuto, Moro & Gonçalves, "Ranked
    batch-mode active learning", Information Sciences 379:313-337, 2017), as implemented by
    modAL's ``uncertainty_batch_sampling``.

    The batch is built one pick at a time, each pick then counted as labeled. At every step the
    candidate with the largest

        alpha (1 - sim(x)) + (1 - alpha) u(x),    alpha = |U| / (|U| + |L|),

    is taken, where |U| is the number of candidates not yet picked, |L| the number of labeled
    items plus the picks so far (so alpha shifts weight from diversity to uncertainty as the
    batch grows), u the uncertainty and sim(x) = 1 / (1 + d(x)) with d(x) the Euclidean distance
    from x to the nearest labeled item or earlier pick (modAL's similarity on its default
    metric). The distances are kept per candidate and lowered after each pick (O(N d) a pick;
    :mod:`activebatch.kernels.ranked_batch`). Ties go to the lowest position.

    Without labeled embeddings (a cold start), the first pick is the candidate with the smallest
    mean distance to all candidates (modAL's cold start; O(N^2 d) in row blocks), and its score is
    +inf. (Unlike modAL, that first pick is not offered again.)

    Parameters
    ----------
    measure : {"least_confidence", "margin"}, default "least_confidence"
        u(x): 1 - max_k p_k (modAL's classifier uncertainty) or 1 - (p_(1) - p_(2)).

    Memory-mapped ``probs`` and ``embeddings`` are read a block of rows at a time.
    """

    name = "ranked_batch"
    needs = frozenset({"probs", "embeddings"})
    # Without labeled embeddings (a cold start) the first pick is the most central candidate.
    optional = frozenset({"labeled_embeddings"})
    score_name = ("alpha (1 - similarity to the nearest labeled item or earlier pick) + (1 - alpha) uncertainty "
                  "when picked (+inf for a cold start's first pick)")

    def __init__(self, measure: str = "least_confidence") -> None:
        self.measure = check_choice(measure, "measure", _MEASURES)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        u = evidence.rowwise(lambda p: _uncertainty(p, self.measure), "probs")
        z = evidence.stream("embeddings")
        lab = evidence.stream("labeled_embeddings") if evidence.has("labeled_embeddings") else None
        order, scores = ranked_batch(z, u, n, labeled_embeddings_L_d=lab)
        return Selection(order, scores=scores)
