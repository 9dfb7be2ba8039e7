"""Ranked batch-mode selection: exactly a plain loop of modAL's select_instance."""
import math

import numpy as np
import pytest

import activebatch as ab
from activebatch.kernels import rowblocks
from activebatch.kernels.ranked_batch import ranked_batch
from activebatch.strategies.ranked_batch import RankedBatch
from activebatch.testing import check_strategy, make_evidence


def plain_ranked_batch(Z, u, n, Z_lab):
    """Cardoso et al.'s ranked batch as modAL's select_instance loop, written out: recompute every
    distance to the labeled-or-picked set at each step, alpha = |U| / (|U| + |L|)."""
    labeled = [list(v) for v in Z_lab]
    picked, scores = [], []
    if not labeled:   # cold start: the smallest mean distance to all candidates
        first = min(range(len(Z)), key=lambda i: (sum(math.dist(Z[i], Z[j]) for j in range(len(Z))), i))
        picked.append(first)
        scores.append(math.inf)
        labeled.append(list(Z[first]))
    while len(picked) < n:
        left = [i for i in range(len(Z)) if i not in picked]
        alpha = len(left) / (len(left) + len(labeled))
        best, best_s = None, -math.inf
        for i in left:
            sim = 1 / (1 + min(math.dist(Z[i], c) for c in labeled))
            s = alpha * (1 - sim) + (1 - alpha) * u[i]
            if s > best_s:
                best, best_s = i, s
        picked.append(best)
        scores.append(best_s)
        labeled.append(list(Z[best]))
    return picked, scores


def _data(seed, n=60, n_lab=10, d=5):
    ev = make_evidence(seed=seed, n=n, n_labeled=n_lab, d=d)
    return ev["probs"], ev["embeddings"], ev["labeled_embeddings"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_picks_and_scores_equal_the_plain_loop(seed):
    P, Z, ZL = _data(seed)
    u = 1 - P.max(axis=1)
    expected, exp_scores = plain_ranked_batch(Z, u, 20, ZL)
    sel = RankedBatch().query(ab.Evidence.from_arrays(probs=P, embeddings=Z, labeled_embeddings=ZL), 20,
                              np.random.default_rng(0))
    np.testing.assert_array_equal(sel.indices, expected)
    np.testing.assert_allclose(sel.scores, exp_scores, rtol=1e-12)
    idx = ab.select("ranked_batch", 20, probs=P, embeddings=Z, labeled_embeddings=ZL)
    np.testing.assert_array_equal(idx, expected)
    # the margin measure
    um = np.array([1 - (np.sort(p)[-1] - np.sort(p)[-2]) for p in P])
    got = ab.select("ranked_batch", 10, probs=P, embeddings=Z, labeled_embeddings=ZL, measure="margin")
    np.testing.assert_array_equal(got, plain_ranked_batch(Z, um, 10, ZL)[0])


def test_cold_start_picks_the_most_central_candidate_first():
    P, Z, _ = _data(3, n=40)
    u = 1 - P.max(axis=1)
    expected, exp_scores = plain_ranked_batch(Z, u, 8, [])
    sel = RankedBatch().query(ab.Evidence.from_arrays(probs=P, embeddings=Z), 8, np.random.default_rng(0))
    np.testing.assert_array_equal(sel.indices, expected)
    assert np.isinf(sel.scores[0])
    np.testing.assert_allclose(sel.scores[1:], exp_scores[1:], rtol=1e-12)
    # an empty labeled set is a cold start too
    order, _ = ranked_batch(Z, u, 8, labeled_embeddings_L_d=np.zeros((0, Z.shape[1])))
    np.testing.assert_array_equal(order, expected)


def test_known_answer_on_a_line():
    # Labeled item at 0; candidates at 1, 2, 4 with uncertainties 0.5, 0.1, 0.0; N = 3, L = 1.
    Z = np.array([[1.0], [2.0], [4.0]])
    u = np.array([0.5, 0.1, 0.0])
    order, scores = ranked_batch(Z, u, 3, labeled_embeddings_L_d=np.array([[0.0]]))
    # step 1: alpha = 3/4: 1 -> .75 * .5 + .25 * .5 = .5; 2 -> .75 * 2/3 + .025 = .525; 4 -> .75 * .8 = .6
    # step 2: alpha = 2/4, 4 picked: 1 -> .5 * .5 + .5 * .5 = .5; 2 -> .5 * 2/3 + .5 * .1 = .383
    # step 3: alpha = 1/4, 1 picked: 2 is at distance 1 -> .25 * .5 + .75 * .1
    assert order.tolist() == [2, 0, 1]
    np.testing.assert_allclose(scores, [0.6, 0.5, 0.25 * 0.5 + 0.75 * 0.1], rtol=1e-12)


def test_ties_go_to_the_lowest_position():
    Z = np.array([[-1.0], [1.0], [3.0], [-3.0]])
    u = np.zeros(4)
    order, _ = ranked_batch(Z, u, 4, labeled_embeddings_L_d=np.array([[0.0]]))
    # 2 and 3 tie (distance 3) -> 2; then 3 is farthest; then 0 and 1 tie (distance 1) -> 0
    assert order.tolist() == [2, 3, 0, 1]


def test_blocks_memory_maps_and_float32(tmp_path, monkeypatch):
    P, Z, ZL = _data(4, n=70)
    ev = ab.Evidence.from_arrays(probs=P, embeddings=Z, labeled_embeddings=ZL)
    whole = RankedBatch().query(ev, 15, np.random.default_rng(0))
    cold = RankedBatch().query(ab.Evidence.from_arrays(probs=P, embeddings=Z), 15, np.random.default_rng(0))
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 32)        # a few rows per block
    np.testing.assert_array_equal(RankedBatch().query(ev, 15, np.random.default_rng(0)).indices, whole.indices)
    np.testing.assert_array_equal(
        RankedBatch().query(ab.Evidence.from_arrays(probs=P, embeddings=Z), 15, np.random.default_rng(0)).indices,
        cold.indices)
    for name, arr in (("p", P), ("z", Z), ("zl", ZL)):
        np.save(tmp_path / f"{name}.npy", arr.astype(np.float32))
    Pm, Zm, ZLm = (np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in ("p", "z", "zl"))
    sel = RankedBatch().query(ab.Evidence.from_arrays(probs=Pm, embeddings=Zm, labeled_embeddings=ZLm), 15,
                              np.random.default_rng(0))
    np.testing.assert_array_equal(sel.indices, whole.indices)
    np.testing.assert_allclose(sel.scores, whole.scores, rtol=1e-5)


def test_options_are_checked_and_public_checks_pass():
    for bad in (dict(measure="entropy"), dict(measure=1)):
        with pytest.raises(ValueError):
            ab.strategies.get("ranked_batch", **bad)
    check_strategy(RankedBatch(measure="margin"))
