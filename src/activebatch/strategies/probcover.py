"""ProbCover: greedy maximum coverage by delta-balls in the embedding space (low budgets, cold starts)."""
from __future__ import annotations

import math

import numpy as np

from ..kernels.neighbors import greedy_max_coverage, nearest_other_sqdist, radius_graph, within_radius
from ..learning.evidence import Evidence
from .base import Selection, Strategy, register
from .typiclust import as_rows, kmeans_labels

__all__ = ["ProbCover", "purity_delta"]


def purity_delta(x: np.ndarray, pseudo_labels: np.ndarray, alpha: float) -> tuple[float, float]:
    """The largest delta whose balls are pure for at least a fraction ``alpha`` of the rows.

    A ball B(x) = {y : ||x - y|| < delta} is pure when every row in it shares x's pseudo-label,
    that is when delta <= r(x), the distance from x to the nearest row of another label
    (:func:`~activebatch.kernels.neighbors.nearest_other_sqdist`). The purity
    #{x : r(x) >= delta} / N only changes at the values r(x), so the largest delta with purity >=
    alpha is exactly the m-th largest r(x), m = ceil(alpha N): what a grid of deltas finds as
    it is refined, found in one exact pass.

    Returns
    -------
    delta_sq : float
        The squared radius (a reference squared distance; +inf when at least m rows have no row
        of another label).
    purity : float
        The fraction of pure balls at that radius.
    """
    r2 = nearest_other_sqdist(x, pseudo_labels)
    m = max(1, math.ceil(round(alpha * r2.size, 9)))
    delta_sq = float(np.partition(r2, r2.size - m)[r2.size - m])
    return delta_sq, float(np.count_nonzero(r2 >= delta_sq) / r2.size)


@register
class ProbCover(Strategy):
    """ProbCover (Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering Lens",
    NeurIPS 2022), for low budgets and cold starts.

    Every item is the centre of a ball of radius delta in the embedding space; the batch greedily
    maximises the number of candidates covered by the balls of the labeled items and the picks:
    the candidates inside a labeled item's ball are covered from the start, then each pick is
    the candidate whose ball holds the most uncovered candidates, which become covered (the
    paper's Algorithm 1 on the directed graph x -> y iff ||x - y|| < delta). Works on raw or
    pretrained features given as ``embeddings``, with no labels and no trained model.

    As the authors' code (``deep-al/pycls/al/prob_cover.py``, TypiClust repository), balls are
    open (``dist < delta``) and hold their centre, and the graph is stored as sparse edges; here
    it is built exactly in tiles of distances, never an N x N matrix
    (:func:`~activebatch.kernels.neighbors.radius_graph`), and a graph with more than
    ``max_edges`` edges is refused with a message saying so (up to 16 bytes an edge while it is
    built). Ties between equal counts are broken by one uniformly random order of the candidates
    drawn from the rng (``ties="random"``, as scikit-activeml's ``rand_argmax``; the authors'
    ``argmax`` takes the lowest index, ``ties="lowest"``). Once every candidate is covered the
    authors' code would repeat index 0; here the remaining picks follow the same random order
    (scikit-activeml's behaviour), with a count of 0.

    delta, unless given, follows the paper's purity rule (Sec. 4): pseudo-labels from k-means
    with K = the number of classes (``n_classes``, or the columns of ``probs`` when given), over
    the candidates and the labeled items; a ball is pure when all the items in it share its
    centre's pseudo-label; delta is the largest radius at which at least ``alpha = 0.95`` of the
    balls are pure. The authors' code takes delta as a command-line value (0.75 for CIFAR-10 on
    unit-length SimCLR features) and has no search; scikit-activeml tries the grid 0.2, 0.4, ...,
    2.0. Here the largest such radius is found exactly (:func:`purity_delta`), with no grid.
    The chosen delta is reported in the selection's notes.

    Parameters
    ----------
    delta : float, optional
        The ball radius (Euclidean, in the embeddings' units). Default: the purity rule.
    alpha : float, default 0.95
        Fraction of pure balls the purity rule asks for.
    n_classes : int, optional
        K of the pseudo-labels' k-means (default: the columns of ``probs``); needed when delta
        is not given and there are no ``probs``.
    ties : {"random", "lowest"}, default "random"
        How equal counts are broken, and the order of the picks after full coverage.
    max_edges : int, default 2**27
        Refuse a ball graph with more edges (up to 2 GiB while it is built).
    n_init : int, default 1
        k-means restarts for the pseudo-labels.
    """

    name = "probcover"
    needs = frozenset({"embeddings"})
    optional = frozenset({"labeled_embeddings", "probs"})
    randomized = True
    score_name = ("number of candidates newly covered by the pick's delta-ball (larger first; 0 once every "
                  "candidate is covered)")

    def __init__(self, delta: float | None = None, alpha: float = 0.95, n_classes: int | None = None,
                 ties: str = "random", max_edges: int = 2**27, n_init: int = 1) -> None:
        from ..utils.validation import check_choice, check_scalar

        self.delta = check_scalar(delta, "delta", float, min_val=0.0, include_min=False, allow_none=True)
        self.alpha = check_scalar(alpha, "alpha", float, min_val=0.0, max_val=1.0, include_min=False)
        self.n_classes = check_scalar(n_classes, "n_classes", int, min_val=1, allow_none=True)
        self.ties = check_choice(ties, "ties", ("random", "lowest"))
        self.max_edges = check_scalar(max_edges, "max_edges", int, min_val=1)
        self.n_init = check_scalar(n_init, "n_init", int, min_val=1)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        z = as_rows(evidence, "embeddings")
        lab = as_rows(evidence, "labeled_embeddings") if evidence.has("labeled_embeddings") else None
        N, L = z.shape[0], 0 if lab is None else lab.shape[0]
        notes = []
        if self.delta is None:
            k = self.n_classes
            if k is None and evidence.has("probs"):
                k = int(evidence.stream("probs").shape[1])
            if k is None:
                raise ValueError("probcover chooses its radius delta by the purity of balls under k-means "
                                 "pseudo-labels with one cluster per class: pass n_classes= (or probs, or the "
                                 "radius as delta=)")
            X = z if not L else np.concatenate([z, lab.astype(np.result_type(z, lab), copy=False)])
            pseudo = kmeans_labels(X, min(k, X.shape[0]), rng, n_init=self.n_init,
                                   feature="the probcover strategy (k-means pseudo-labels for delta)")
            delta_sq, purity = purity_delta(X, pseudo, self.alpha)
            del X
            notes.append(f"delta = {math.sqrt(delta_sq):.6g}: the largest radius at which at least alpha = "
                         f"{self.alpha:g} of the balls around the {N + L} items are pure under {k}-means "
                         f"pseudo-labels (purity {purity:.4f})")
        else:
            delta_sq = self.delta ** 2
            notes.append(f"delta = {self.delta:.6g} (given)")
        covered = within_radius(z, lab, delta_sq) if L else np.zeros(N, dtype=bool)
        indptr, indices = radius_graph(z, delta_sq, max_edges=self.max_edges)
        order = rng.permutation(N) if self.ties == "random" else None
        picks, gains = greedy_max_coverage(indptr, indices, n, covered=covered, order=order)
        done = int(np.count_nonzero(gains))
        notes.append(f"{indices.size} edges ({indices.size / N:.1f} per candidate); the labeled items' balls "
                     f"covered {int(covered.sum())} of {N} candidates, the picks {int(gains.sum())} more")
        if done < n:
            total = int(covered.sum() + gains.sum())
            notes.append(f"after {done} pick(s) no ball held an uncovered candidate ({total} of {N} covered): "
                         f"the other {n - done} follow the "
                         f"{'random' if self.ties == 'random' else 'position'} order")
        return Selection(picks, scores=gains.astype(np.float64), notes=tuple(notes))
