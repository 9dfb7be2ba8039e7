"""DropQuery (Gupte et al., TMLR 2024): dropout-inconsistent candidates, then one per k-means cluster."""
from __future__ import annotations

import numpy as np
import torch

from ..kernels.dropquery import candidate_threshold, dropout_disagreement
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register
from .clue import weighted_kmeans

__all__ = ["DropQuery"]


def _rows(z, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (ascending) of a tensor or row source, as float64 numpy."""
    if isinstance(z, torch.Tensor):
        return z[torch.as_tensor(idx, device=z.device)].detach().to("cpu", torch.float64).numpy()
    return np.asarray(z[idx], dtype=np.float64)


@register
class DropQuery(Strategy):
    """DropQuery (Gupte, Aklilu, Nirschl & Yeung-Levy, "Revisiting Active Learning in the Era of
    Vision Foundation Models", TMLR 2024; code: github.com/sanketx/AL-foundation-models).

    1. Pass every candidate's features through the model's linear head M = 3 times with dropout
       (rate 0.75) on the features, and count the passes whose predicted class differs from
       the prediction on the intact features
       (:func:`~activebatch.kernels.dropquery.dropout_disagreement`).
    2. The candidate set is the items whose disagreement exceeds half of the passes (at least 2
       of 3). As in the authors' code, while it holds fewer than 25 n items the count threshold
       is lowered by one, down to "any disagreement".
    3. Fewer than n candidates: all of them plus uniformly drawn other items. Otherwise k-means
       with n clusters on the candidates' L2-normalised embeddings (k-means++ start, 100
       iterations, unweighted; scikit-learn's ``KMeans`` where the authors use faiss), and from
       each cluster the member nearest its centre.

    The picks are ordered by their disagreement (the fraction of passes whose prediction
    changed, which is each pick's score), ties to the lowest position.

    This is a model-level strategy: the dropout acts on the inputs of the final linear layer,
    so it reads the head (``evidence.learner.model.head``) and the ``embeddings`` (the head's
    inputs) and recomputes the logits; it cannot run from arrays alone. The paper's classifier is
    a linear probe on frozen foundation-model features, trained with the same dropout on its
    inputs (:class:`~activebatch.learning.models.LinearHead` with ``dropout=0.75`` and precomputed
    features is that setting); with a deeper model the dropout acts on its penultimate layer.
    The masks are independent for every candidate, feature and pass, drawn from the rng. The
    paper's cold start (centroid-based initial pool) is not part of this query step.

    Parameters
    ----------
    passes : int, default 3
        M, dropout passes per candidate.
    dropout : float, default 0.75
        Dropout rate p on the features (kept values scaled by 1 / (1 - p)).
    threshold : float, default 0.5
        A candidate needs more than this fraction of passes to disagree (before relaxation).
    min_candidates : int, default 25
        The threshold is relaxed while the candidate set holds fewer than min_candidates * n
        items (0: never relaxed).
    max_iter : int, default 100
        k-means iterations.

    Needs scikit-learn (``pip install 'activebatch[clustering]'``).
    """

    name = "dropquery"
    randomized = True
    needs = frozenset({"learner", "embeddings"})
    score_name = "fraction of dropout passes whose prediction differs from the intact one (larger first)"

    def __init__(self, passes: int = 3, dropout: float = 0.75, threshold: float = 0.5, min_candidates: int = 25,
                 max_iter: int = 100) -> None:
        self.passes = check_scalar(passes, "passes", int, min_val=1)
        self.dropout = check_scalar(dropout, "dropout", float, min_val=0.0, max_val=1.0, include_max=False)
        self.threshold = check_scalar(threshold, "threshold", float, min_val=0.0, max_val=1.0, include_max=False)
        self.min_candidates = check_scalar(min_candidates, "min_candidates", int, min_val=0)
        self.max_iter = check_scalar(max_iter, "max_iter", int, min_val=1)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        from ..utils.extras import require

        require("sklearn", "clustering", "the dropquery strategy (k-means)")
        head = evidence.learner.model.head
        if not isinstance(head, torch.nn.Linear):
            raise TypeError("dropquery needs a model whose final layer 'head' is an nn.Linear")
        z = evidence.stream("embeddings")
        counts = dropout_disagreement(z, head.weight, head.bias, passes=self.passes, p=self.dropout, rng=rng)
        t = candidate_threshold(counts, self.passes, self.threshold, n, self.min_candidates)
        cand = np.flatnonzero(counts > t)
        if cand.size < n:
            rest = np.setdiff1d(np.arange(counts.size), cand, assume_unique=True)
            picks = np.concatenate([cand, rng.choice(rest, size=n - cand.size, replace=False)])
        else:
            X = _rows(z, cand)
            X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
            centres, labels = weighted_kmeans(X, n, None, n_init=1, max_iter=self.max_iter,
                                              seed=int(rng.integers(2**31 - 1)))
            d2 = ((X - centres[labels]) ** 2).sum(axis=1)
            # The member nearest each non-empty cluster's centre: sort by (cluster, distance, position).
            order = np.lexsort((np.arange(cand.size), d2, labels))
            first = np.ones(cand.size, dtype=bool)
            first[1:] = labels[order][1:] != labels[order][:-1]
            chosen = order[first]
            if chosen.size < n:   # duplicate embeddings left clusters empty: the most uncertain others
                rest = np.setdiff1d(np.arange(cand.size), chosen, assume_unique=True)
                rest = rest[np.lexsort((rest, -counts[cand[rest]]))]
                chosen = np.concatenate([chosen, rest[:n - chosen.size]])
            picks = cand[chosen]
        picks = picks[np.lexsort((picks, -counts[picks]))]
        return Selection(picks, scores=counts[picks] / self.passes)
