"""Diverse mini-batch active learning: informativeness pre-filter, then weighted k-means."""
from __future__ import annotations

import numpy as np
import torch

from ..kernels.scores import entropy_scores, least_confidence_scores, margin_scores
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import Strategy, register

__all__ = ["DiverseMiniBatch", "informativeness"]

_MEASURES = ("margin", "entropy", "least_confidence")


def informativeness(probs: torch.Tensor, measure: str = "margin") -> torch.Tensor:
    """Non-negative informativeness, larger = more informative, shape (N,), float64.

    ``"margin"``: 1 - (p_(1) - p_(2)); ``"least_confidence"``: 1 - max_k p_k; ``"entropy"``:
    predictive entropy in nats.
    """
    if measure == "margin":
        return 1.0 - margin_scores(probs).to(torch.float64)
    if measure == "least_confidence":
        return 1.0 - least_confidence_scores(probs).to(torch.float64)
    if measure == "entropy":
        return entropy_scores(probs)
    raise ValueError(f"measure must be one of {_MEASURES}, got {measure!r}")


@register
class DiverseMiniBatch(Strategy):
    """Diverse mini-batch active learning (Zhdanov, "Diverse mini-batch Active Learning",
    arXiv:1901.05954, 2019).

    1. Pre-filter the beta * n most informative candidates (margin by default).
    2. Cluster them into n clusters with k-means on the embeddings, each point weighted by its
       informativeness (scikit-learn's ``KMeans`` with ``sample_weight``, k-means++ start).
    3. From every cluster take the member nearest to its centre.

    The batch is ordered by the informativeness of the chosen items (most informative first).
    When k-means leaves fewer than n non-empty clusters (duplicate embeddings), the rest of the
    batch is the most informative pre-filtered items not yet taken. When every pre-filtered
    weight is zero the clustering is unweighted.

    This strategy was registered as ``cluster_margin`` before that name was given to Citovsky et
    al.'s Cluster-Margin (NeurIPS 2021, :class:`~activebatch.strategies.cluster_margin.ClusterMargin`),
    which clusters hierarchically and samples the clusters round-robin.

    Parameters
    ----------
    beta : int, default 10
        Pre-filter factor; min(beta * n, N) candidates are clustered.
    measure : {"margin", "entropy", "least_confidence"}, default "margin"
        Informativeness used for the pre-filter and as k-means weights.
    n_init : int, default 1
        k-means restarts (the best inertia is kept).
    """

    name = "diverse_minibatch"
    randomized = True
    needs = frozenset({"probs", "embeddings"})

    def __init__(self, beta: int = 10, measure: str = "margin", n_init: int = 1) -> None:
        self.beta = check_scalar(beta, "beta", int, min_val=1)
        self.measure = check_choice(measure, "measure", _MEASURES)
        self.n_init = check_scalar(n_init, "n_init", int, min_val=1)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        from ..utils.extras import require

        require("sklearn", "clustering", "the diverse_minibatch strategy (k-means)")
        from sklearn.cluster import KMeans

        z = evidence.embeddings
        info = informativeness(evidence.probs.to(z.device), self.measure)
        m = min(self.beta * n, evidence.n_candidates)
        # The m most informative, ties to the lowest index (stable sort).
        top = torch.sort(-info, stable=True).indices[:m]
        X = z.index_select(0, top).detach().to("cpu", torch.float64).numpy()
        w = info.index_select(0, top).detach().cpu().numpy()
        weights = w if w.sum() > 0 else None
        km = KMeans(n_clusters=n, init="k-means++", n_init=self.n_init,
                    random_state=int(rng.integers(2**31 - 1)))
        labels = km.fit_predict(X, sample_weight=weights)
        d2 = ((X - km.cluster_centers_[labels]) ** 2).sum(axis=1)
        # Nearest member of each non-empty cluster: sort by (cluster, distance, position).
        order = np.lexsort((np.arange(m), d2, labels))
        first = np.ones(m, dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        chosen = order[first]
        if chosen.size < n:
            rest = np.setdiff1d(np.arange(m), chosen, assume_unique=True)   # in informativeness order
            chosen = np.concatenate([chosen, rest[:n - chosen.size]])
        chosen = chosen[np.lexsort((chosen, -w[chosen]))]
        return top.cpu().numpy()[chosen]
