"""MOA's RandomRBFGenerator, reproduced draw for draw.

The generator (Bifet, Holmes, Kirkby & Pfahringer, "MOA: Massive Online Analysis", JMLR 11, 2010;
class ``moa.streams.generators.RandomRBFGenerator``) defines a fixed model of ``n_centroids``
centroids and samples around them:

Model (``java.util.Random(model_seed)``), for each centroid in turn:
    centre ~ U[0, 1)^n_features, class ~ U{0, ..., n_classes - 1}, standard deviation ~ U[0, 1),
    weight ~ U[0, 1).
Instance (``java.util.Random(instance_seed)``), for each instance in turn:
    pick a centroid with probability proportional to its weight; draw a direction
    v ~ U[-1, 1)^n_features; draw a length l = g * std with g ~ N(0, 1); the instance is
    ``centre + v * l / |v|``, its class the centroid's.

The draws come from ``java.util.Random`` exactly as MOA makes them (see :mod:`._java_random`), so
the stream equals MOA's for the same parameters (up to the last bit of ``log`` in the Gaussian
draws). OpenML #156 ("RandomRBF") is a 100,000-instance snapshot of this generator; the defaults
below are MOA's own defaults (model and instance seed 1, 2 classes, 10 attributes, 50 centroids).
"""
from __future__ import annotations

import numpy as np

from ._java_random import JavaRandom, doubles_at, state_stream

__all__ = ["RBFModel", "make_model", "generate"]


class RBFModel:
    """The centroids of a random RBF generator.

    Attributes
    ----------
    centres : ndarray, shape (n_centroids, n_features)
    labels : ndarray of int64, shape (n_centroids,)
    std : ndarray, shape (n_centroids,)
    weights : ndarray, shape (n_centroids,)
    """

    def __init__(self, centres: np.ndarray, labels: np.ndarray, std: np.ndarray, weights: np.ndarray) -> None:
        self.centres, self.labels, self.std, self.weights = centres, labels, std, weights

    @property
    def n_features(self) -> int:
        return int(self.centres.shape[1])


def make_model(n_classes: int = 2, n_features: int = 10, n_centroids: int = 50, seed: int = 1) -> RBFModel:
    """The centroids that MOA's ``generateCentroids`` draws from ``java.util.Random(seed)``."""
    if n_classes < 2 or n_features < 1 or n_centroids < 1:
        raise ValueError("random RBF needs n_classes >= 2, n_features >= 1 and n_centroids >= 1")
    rnd = JavaRandom(seed)
    centres = np.empty((n_centroids, n_features))
    labels = np.empty(n_centroids, dtype=np.int64)
    std = np.empty(n_centroids)
    weights = np.empty(n_centroids)
    for i in range(n_centroids):
        for j in range(n_features):
            centres[i, j] = rnd.next_double()
        labels[i] = rnd.next_int(n_classes)
        std[i] = rnd.next_double()
        weights[i] = rnd.next_double()
    return RBFModel(centres, labels, std, weights)


def generate(n: int, model: RBFModel, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` instances of the stream ``java.util.Random(seed)`` draws from ``model``.

    Parameters
    ----------
    n : int
        Number of instances.
    model : RBFModel
        From :func:`make_model`.
    seed : int, default 1
        MOA's ``instanceRandomSeed``.

    Returns
    -------
    X : ndarray of float64, shape (n, n_features)
    y : ndarray of int64, shape (n,)

    Notes
    -----
    Every instance consumes ``2 + 2 * n_features`` calls of ``next`` for its centroid and direction,
    and the Gaussian length consumes 4 calls per attempt of the polar method for every second
    instance (the other uses the cached second value). Only the positions of the accepted attempts
    are found sequentially (a scalar loop over pairs of instances); all values are computed with
    array operations on the precomputed stream of states.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    d = model.n_features
    per = 2 + 2 * d                                 # next() calls per instance before the Gaussian
    X = np.empty((n, d))
    y = np.empty(n, dtype=np.int64)
    if n == 0:
        return X, y
    length = (n + 1) // 2 * (2 * per + 8) + 64
    while True:
        D = doubles_at(state_stream(seed, length + 1))      # D[k]: nextDouble after k calls
        V = 2.0 * D - 1.0
        S = np.full(D.size, 2.0)
        S[:-2] = V[:-2] ** 2 + V[2:] ** 2
        accepted = (S > 0) & (S < 1)
        next_ok = _next_accepted(accepted, 4)
        starts, attempts, ok = _walk(n, per, next_ok)
        if ok:
            break
        length *= 2
    u = D[starts]
    cum = np.cumsum(model.weights)                   # sequential sums, as MOA's loop adds them
    idx = np.minimum(np.searchsorted(cum, u * cum[-1], side="right"), len(cum) - 1)
    V_att = V[starts[:, None] + 2 + 2 * np.arange(d)[None, :]]
    mag2 = np.zeros(n)
    for j in range(d):                               # same order of additions as MOA
        mag2 += V_att[:, j] * V_att[:, j]
    s = S[attempts]
    mult = np.sqrt(-2.0 * np.log(s) / s)
    gauss = np.where(np.arange(n) % 2 == 0, V[attempts], V[attempts + 2]) * mult
    scale = gauss * model.std[idx] / np.sqrt(mag2)
    X[:] = model.centres[idx] + V_att * scale[:, None]
    y[:] = model.labels[idx]
    return X, y


def _next_accepted(accepted: np.ndarray, step: int) -> np.ndarray:
    """``out[k]`` = the first ``k' in {k, k + step, ...}`` with ``accepted[k']`` (or a large value)."""
    m = accepted.size
    out = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
    pos = np.where(accepted, np.arange(m), np.iinfo(np.int64).max)
    for r in range(step):
        out[r::step] = np.minimum.accumulate(pos[r::step][::-1])[::-1]
    return out


def _walk(n: int, per: int, next_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Start position of each instance and of the accepted Gaussian attempt it uses."""
    starts = np.empty(n, dtype=np.int64)
    attempts = np.empty(n, dtype=np.int64)
    limit = next_ok.size - per - 8
    k = 0
    for i in range(0, n, 2):
        if k + per >= limit:
            return starts, attempts, False
        a = int(next_ok[k + per])
        if a >= limit:
            return starts, attempts, False
        starts[i], attempts[i] = k, a
        k = a + 4
        if i + 1 < n:
            starts[i + 1], attempts[i + 1] = k, a
            k += per
    return starts, attempts, True
