"""Expected gradient length of the final layer, in closed form."""
from __future__ import annotations

from ..kernels.scores import egl_scores
from ..utils.validation import check_scalar
from .base import ScoreStrategy, register

__all__ = ["EGL"]


@register
class EGL(ScoreStrategy):
    """Expected gradient length (Settles, Craven & Ray, "Multiple-Instance Active Learning",
    NIPS 2008; Settles 2009, section 3.4) for the final layer.

    Queries the candidates whose labeling would change the model most, measured by the length
    of the training gradient they would add, in expectation over the model's own predictive
    distribution: EGL(x) = sum_y p(y | x) ||grad l(x, y)||. As in Settles et al., the gradient of
    the loss on the labeled set is taken to be zero at convergence, so only x's own gradient
    counts. The gradient is that of the final linear layer
    (:func:`~activebatch.kernels.scores.egl_scores`, exact and in closed form); the n largest
    scores are taken, ties to the lowest index.

    Parameters
    ----------
    bias : bool, default False
        Include the final layer's bias in the gradient.
    sampling, beta :
        Top-n or stochastic batch acquisition (see :class:`~activebatch.strategies.ScoreStrategy`).
    """

    name = "egl"
    fields = ("probs", "embeddings")
    score_name = "expected final-layer gradient length (larger = more informative)"

    def __init__(self, bias: bool = False, sampling: str = "topk", beta: float = 1.0) -> None:
        super().__init__(sampling, beta)
        self.bias = check_scalar(bias, "bias", bool)

    def score(self, probs_N_K, embeddings_N_d):  # type: ignore[override]
        return egl_scores(probs_N_K, embeddings_N_d, bias=self.bias)
