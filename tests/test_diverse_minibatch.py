"""Diverse mini-batch (diverse_minibatch, Zhdanov 2019): one item per cluster, the pre-filter, the weights."""
import warnings

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.strategies.diverse_minibatch import informativeness


def _probs_with_margins(margins, k=3):
    """Probability rows whose top-two gap is exactly ``margins``."""
    m = np.asarray(margins, dtype=np.float64)
    p1 = (1 + m) / 2 - 0.01
    p2 = p1 - m
    rest = 1 - p1 - p2
    return np.stack([p1, p2, rest] + [np.zeros_like(m)] * (k - 3), axis=1)


def test_one_item_per_cluster_nearest_to_the_weighted_centre():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [50, 0], [0, 50], [50, 50], [25, 100]], dtype=float)
    blob = np.repeat(np.arange(5), 20)
    Z = centres[blob] + rng.normal(size=(100, 2))
    P = _probs_with_margins(rng.uniform(0, 0.5, size=100))
    for seed in range(3):
        idx = ab.select("diverse_minibatch", 5, probs=P, embeddings=Z, seed=seed, beta=20)   # all 100 clustered
        assert sorted(blob[idx].tolist()) == [0, 1, 2, 3, 4]
        w = informativeness(torch.from_numpy(P)).numpy()
        for i in idx:
            members = np.flatnonzero(blob == blob[i])
            centre = (w[members, None] * Z[members]).sum(0) / w[members].sum()
            assert i == members[np.argmin(((Z[members] - centre) ** 2).sum(1))]
        assert np.all(np.diff(w[idx]) <= 0)          # ordered by informativeness


def test_only_the_beta_n_most_informative_are_candidates():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(100, 3))
    margins = rng.uniform(0, 0.9, size=100)
    P = _probs_with_margins(margins)
    top = set(np.argsort(margins, kind="stable")[:10].tolist())
    for seed in range(3):
        idx = ab.select("diverse_minibatch", 5, probs=P, embeddings=Z, seed=seed, beta=2)
        assert set(idx.tolist()) <= top
    ent = ab.select("diverse_minibatch", 4, probs=P, embeddings=Z, seed=0, beta=1, measure="entropy")
    H = -(P * np.log(np.where(P > 0, P, 1))).sum(1)
    assert set(ent.tolist()) == set(np.argsort(-H, kind="stable")[:4].tolist())


def test_weights_pull_the_centre():
    Z = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    margins = np.array([0.9, 0.9, 0.9, 0.9, 0.0])   # weights 0.1, 0.1, 0.1, 0.1, 1
    P = _probs_with_margins(margins)
    # weighted mean (0.1 * 6 + 4) / 1.4 = 3.29 -> item 3 (the unweighted mean 2 would give item 2)
    assert ab.select("diverse_minibatch", 1, probs=P, embeddings=Z, seed=0).tolist() == [3]


def test_duplicate_embeddings_fill_the_batch_by_informativeness():
    Z = np.zeros((30, 4))
    margins = np.linspace(0.0, 0.9, 30)
    P = _probs_with_margins(margins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idx = ab.select("diverse_minibatch", 5, probs=P, embeddings=Z, seed=0)
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4]
    # every weight zero (fully confident): plain k-means, still n distinct items
    conf = np.tile([1.0, 0.0, 0.0], (30, 1))
    Z2 = np.random.default_rng(0).normal(size=(30, 2))
    assert np.unique(ab.select("diverse_minibatch", 6, probs=conf, embeddings=Z2, seed=0)).size == 6


def test_options_are_checked():
    for bad in (dict(beta=0), dict(measure="bald"), dict(n_init=0), dict(beta=1.5)):
        with pytest.raises(ValueError):
            ab.strategies.get("diverse_minibatch", **bad)
