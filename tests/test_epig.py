"""EPIG (Bickford Smith et al., AISTATS 2023): the estimator against its formula, its bounds, the strategy."""
import itertools
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels import bald_scores
from activebatch.kernels.epig import epig_block_candidates, epig_scores
from activebatch.testing import check_strategy, make_evidence


def _softmax(logits, axis=-1):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _epig_loops(mc, targ):
    """EPIG(x) = mean_t sum_{y, y*} p(y, y*) log[p(y, y*) / (p(y) p(y*))] with plain Python loops."""
    S, N, K = mc.shape
    T = targ.shape[1]
    out = []
    for n in range(N):
        total = 0.0
        for t in range(T):
            for y, ys in itertools.product(range(K), range(K)):
                joint = sum(mc[s][n][y] * targ[s][t][ys] for s in range(S)) / S
                p_y = sum(mc[s][n][y] for s in range(S)) / S
                p_ys = sum(targ[s][t][ys] for s in range(S)) / S
                if joint > 0:
                    total += joint * math.log(joint / (p_y * p_ys))
        out.append(total / T)
    return np.array(out)


def _entropy(p, axis=-1):
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=axis)


# Three samples, two candidates, two targets, three classes, chosen by hand (rows sum to 1).
MC = np.array([
    [[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]],
    [[0.1, 0.8, 0.1], [0.3, 0.4, 0.3]],
    [[0.2, 0.2, 0.6], [0.4, 0.3, 0.3]],
])
TARG = np.array([
    [[0.6, 0.3, 0.1], [1.0, 0.0, 0.0]],
    [[0.2, 0.5, 0.3], [0.0, 1.0, 0.0]],
    [[0.1, 0.1, 0.8], [0.5, 0.5, 0.0]],
])


def test_epig_equals_its_formula_on_hand_made_samples():
    got = epig_scores(torch.tensor(MC), torch.tensor(TARG)).numpy()
    np.testing.assert_allclose(got, _epig_loops(MC, TARG), rtol=1e-13, atol=1e-15)
    assert got.dtype == np.float64 and got[0] > got[1] > 0   # candidate 0's samples disagree far more


@pytest.mark.parametrize("block_values", [1, 9, 20, 10**9])
def test_epig_blocks_give_the_same_values(block_values):
    rng = np.random.default_rng(0)
    mc = _softmax(rng.normal(size=(1, 23, 4)) + rng.normal(size=(6, 23, 4)))
    targ = _softmax(rng.normal(size=(1, 5, 4)) + rng.normal(size=(6, 5, 4)))
    ref = _epig_loops(mc, targ)
    got = epig_scores(torch.tensor(mc), torch.tensor(targ), block_values=block_values).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    assert epig_block_candidates(5, 4, block_values) == max(1, block_values // 80)


def test_epig_is_zero_when_the_samples_agree():
    rng = np.random.default_rng(1)
    one = _softmax(rng.normal(scale=2, size=(1, 30, 5)))
    targ = _softmax(rng.normal(size=(1, 7, 5)) + rng.normal(size=(4, 7, 5)))
    same = np.repeat(one, 4, axis=0)                       # S identical passes on the candidates
    np.testing.assert_allclose(epig_scores(torch.tensor(same), torch.tensor(targ)).numpy(), 0.0, atol=1e-14)
    # ... or on the targets: nothing in y can tell about y* then either
    mc = _softmax(rng.normal(size=(1, 30, 5)) + rng.normal(size=(4, 30, 5)))
    targ_same = np.repeat(targ[:1], 4, axis=0)
    np.testing.assert_allclose(epig_scores(torch.tensor(mc), torch.tensor(targ_same)).numpy(), 0.0, atol=1e-14)


def test_epig_is_bounded_by_bald_and_the_entropies():
    rng = np.random.default_rng(2)
    mc = _softmax(rng.normal(scale=2, size=(1, 200, 6)) + 1.5 * rng.normal(size=(20, 200, 6)))
    targ = _softmax(rng.normal(scale=2, size=(1, 40, 6)) + 1.5 * rng.normal(size=(20, 40, 6)))
    epig = epig_scores(torch.tensor(mc), torch.tensor(targ)).numpy()
    assert (epig >= -1e-14).all() and (epig > 1e-3).any()
    # y* depends on y only through the parameters (data processing inequality): EPIG <= BALD
    assert (epig <= bald_scores(torch.tensor(mc)).numpy() + 1e-12).all()
    # a mutual information is at most either entropy: H(y), and H(y*) averaged over the targets
    assert (epig <= _entropy(mc.mean(0)) + 1e-12).all()
    assert (epig <= _entropy(targ.mean(0)).mean() + 1e-12).all()


def test_epig_symmetries():
    rng = np.random.default_rng(3)
    a = _softmax(rng.normal(size=(1, 4, 3)) + rng.normal(size=(8, 4, 3)))
    b = _softmax(rng.normal(size=(1, 4, 3)) + rng.normal(size=(8, 4, 3)))
    # I(y; y*) is symmetric: candidate x with target x* scores as candidate x* with target x
    for i in range(4):
        ab_ = epig_scores(torch.tensor(a[:, i:i + 1]), torch.tensor(b[:, i:i + 1])).item()
        ba_ = epig_scores(torch.tensor(b[:, i:i + 1]), torch.tensor(a[:, i:i + 1])).item()
        assert ab_ == pytest.approx(ba_, rel=1e-12, abs=1e-15)
    base = epig_scores(torch.tensor(a), torch.tensor(b)).numpy()
    # relabelling the classes (separately for y and y*), reordering the samples consistently,
    # or reordering the targets changes nothing
    np.testing.assert_allclose(epig_scores(torch.tensor(a[:, :, [2, 0, 1]]), torch.tensor(b[:, :, [1, 2, 0]])).numpy(),
                               base, rtol=1e-12)
    perm = rng.permutation(8)
    np.testing.assert_allclose(epig_scores(torch.tensor(a[perm]), torch.tensor(b[perm])).numpy(), base, rtol=1e-12)
    np.testing.assert_allclose(epig_scores(torch.tensor(a), torch.tensor(b[:, ::-1].copy())).numpy(), base,
                               rtol=1e-12)
    # a target repeated twice counts like once (the targets are averaged)
    np.testing.assert_allclose(epig_scores(torch.tensor(a), torch.tensor(np.concatenate([b, b], axis=1))).numpy(),
                               base, rtol=1e-12)
    # samples paired at random with other samples' targets: no shared parameters, far less information
    shuffled = epig_scores(torch.tensor(a), torch.tensor(b[np.roll(np.arange(8), 1)])).numpy()
    assert not np.allclose(shuffled, base)


def test_epig_refuses_mismatched_samples():
    with pytest.raises(ValueError, match="same 3 samples"):
        epig_scores(torch.tensor(MC), torch.tensor(TARG[:2]))
    with pytest.raises(ValueError, match="target_mc_probs has 2 samples"):
        ab.select("epig", 1, mc_probs=MC, target_mc_probs=TARG[:2])


def test_epig_strategy_ranks_by_epig_and_reports_scores():
    ev = make_evidence(seed=4, n=50, s=8, n_targets=20)
    ref = _epig_loops(ev["mc_probs"], ev["target_mc_probs"])
    sel = ab.strategies.get("epig").query(ab.Evidence.from_arrays(mc_probs=ev["mc_probs"],
                                                                 target_mc_probs=ev["target_mc_probs"]),
                                          10, np.random.default_rng(0))
    np.testing.assert_array_equal(sel.indices, np.argsort(-ref, kind="stable")[:10])
    np.testing.assert_allclose(sel.scores, ref[sel.indices], rtol=1e-12)
    np.testing.assert_allclose(sel.candidate_scores, ref, rtol=1e-12)
    assert "nats" in sel.score_name
    # needs the targets too
    with pytest.raises(ValueError, match="target_mc_probs"):
        ab.select("epig", 3, mc_probs=ev["mc_probs"])


def test_epig_runs_on_a_learner_s_evidence():
    from activebatch.testing import make_model_evidence

    learner, pool = make_model_evidence(seed=0)
    evidence = learner.evidence(pool, mc_seed=0, n_targets=25)
    sel = ab.strategies.get("epig").query(evidence, 4, np.random.default_rng(0))
    ref = _epig_loops(evidence.mc_probs.double().numpy(), evidence.target_mc_probs.double().numpy())
    np.testing.assert_allclose(sel.candidate_scores, ref, rtol=1e-12, atol=1e-15)


def test_epig_public_checks():
    check_strategy("epig")
