"""CAL: Contrastive Active Learning (Margatina et al., EMNLP 2021)."""
from __future__ import annotations

from typing import Any

import torch

from ..kernels.cal import cal_scores
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import ScoreStrategy, register

__all__ = ["CAL"]


@register
class CAL(ScoreStrategy):
    """Contrastive Active Learning (Margatina, Vernikos, Barrault & Aletras, "Active Learning by
    Acquiring Contrastive Examples", EMNLP 2021, Algorithm 1).

    Contrastive examples are candidates close to labeled items in the model's feature space whose
    predictive distributions nevertheless differ. For each candidate x:

    1. find its k nearest *labeled* items x_l by Euclidean distance between embeddings
       (``embeddings`` and ``labeled_embeddings``; the paper uses BERT's [CLS] representation);
    2. score s(x) = (1/k) sum_l KL(p(y | x_l) || p(y | x)) (Algorithm 1, lines 3-6: the mean
       divergence of the candidate's prediction from each neighbour's);
    3. take the n largest scores (Algorithm 1, line 8); ties go to the lowest position.

    The neighbours' distributions p(y | x_l) are, as in the paper (Algorithm 1, line 3: "compute
    probabilities" of the neighbours with the current model) and its released code, the model's
    *predictions* on the labeled items (``labeled_probs``), not their one-hot gold labels.
    ``neighbour_probs="labels"`` uses the gold labels instead (``labels``): KL(e_y || p(x)) is
    -log p_y(x), the cross-entropy ablation of the authors' code (``--ce``).

    The authors' code finds the neighbours on L2-normalised [CLS] vectors (scikit-learn's
    ``KNeighborsClassifier`` on ``normalize(...)``); the default here is the plain Euclidean
    distance of the paper's description, ``normalize=True`` reproduces the code.

    Parameters
    ----------
    k : int, default 10
        Labeled neighbours per candidate (the paper's value); min(k, L) are used.
    neighbour_probs : {"predicted", "labels"}, default "predicted"
        The neighbours' distributions: the model's predictions (the paper) or the gold labels.
    normalize : bool, default False
        Find the neighbours on unit-length embeddings (the authors' released code).

    Candidates are processed a block of rows at a time (memory-mapped ``probs`` and
    ``embeddings`` are never read whole, and no N x L matrix is formed).
    """

    name = "cal"
    fields = ("probs", "embeddings", "labeled_embeddings", "labeled_probs")
    largest = True
    rowwise = False
    score_name = "mean KL(p(neighbour) || p(x)) over the k nearest labeled items, nats (larger first)"

    def __init__(self, k: int = 10, neighbour_probs: str = "predicted", normalize: bool = False) -> None:
        self.k = check_scalar(k, "k", int, min_val=1)
        self.neighbour_probs = check_choice(neighbour_probs, "neighbour_probs", ("predicted", "labels"))
        self.normalize = check_scalar(normalize, "normalize", bool)
        if self.neighbour_probs == "labels":
            # The gold-label variant reads the labels instead of the labeled items' predictions.
            self.fields = ("probs", "embeddings", "labeled_embeddings", "labels")
            self.needs = frozenset(self.fields)

    def score(self, probs: torch.Tensor, embeddings: torch.Tensor, labeled_embeddings: torch.Tensor,  # type: ignore[override]
              neighbours: Any) -> torch.Tensor:
        """CAL scores from the fields: ``neighbours`` is ``labeled_probs`` (L, K) or ``labels`` (L,)."""
        if self.neighbour_probs == "labels":
            return cal_scores(probs, embeddings, labeled_embeddings, labels_L=neighbours, k=self.k,
                              normalize=self.normalize)
        return cal_scores(probs, embeddings, labeled_embeddings, labeled_probs_L_K=neighbours, k=self.k,
                          normalize=self.normalize)

    def scores(self, evidence: Evidence) -> torch.Tensor:
        # stream(): memory-mapped candidates reach the kernel unconverted; it reads row blocks.
        probs, z = evidence.stream("probs"), evidence.stream("embeddings")
        if isinstance(probs, torch.Tensor) and isinstance(z, torch.Tensor):
            probs = probs.to(z.device)
        return self.score(probs, z, evidence.stream("labeled_embeddings"), evidence.get(self.fields[3]))
