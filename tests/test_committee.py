"""Query by committee: scores against their formulas on hand-made committees; the Committee learner."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.kernels.scores import consensus_entropy_scores, kl_divergence_scores, vote_entropy_scores
from activebatch.learning.committee import Committee
from activebatch.learning.models import MLP

# Three members (axis 0) on three items (axis 1) over three classes.
COMMITTEE = np.array([
    [[0.7, 0.2, 0.1], [1.0, 0.0, 0.0], [0.6, 0.4, 0.0]],
    [[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.4, 0.6, 0.0]],
    [[0.7, 0.2, 0.1], [0.0, 0.0, 1.0], [0.6, 0.4, 0.0]],
])


def H(*p):
    return -sum(x * math.log(x) for x in p if x > 0)


def KL(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def test_vote_entropy_by_hand():
    expected = [0.0, math.log(3), H(2 / 3, 1 / 3)]   # votes (3,0,0), (1,1,1), (2,1,0)
    np.testing.assert_allclose(vote_entropy_scores(torch.from_numpy(COMMITTEE)), expected, rtol=1e-12)


def test_consensus_entropy_by_hand():
    expected = [H(0.7, 0.2, 0.1), math.log(3), H(1.6 / 3, 1.4 / 3)]
    np.testing.assert_allclose(consensus_entropy_scores(torch.from_numpy(COMMITTEE)), expected, rtol=1e-12)


def test_kl_divergence_by_hand():
    cons = [1.6 / 3, 1.4 / 3, 0.0]
    item2 = (2 * KL([0.6, 0.4, 0], cons) + KL([0.4, 0.6, 0], cons)) / 3
    expected = [0.0, math.log(3), item2]
    np.testing.assert_allclose(kl_divergence_scores(torch.from_numpy(COMMITTEE)), expected, rtol=1e-12, atol=1e-15)
    # it is the mutual information H(mean) - mean H
    rng = np.random.default_rng(0)
    mc = rng.dirichlet(np.ones(4), size=(6, 20))
    mi = -(mc.mean(0) * np.log(mc.mean(0))).sum(1) + (mc * np.log(mc)).sum(2).mean(0)
    np.testing.assert_allclose(kl_divergence_scores(torch.from_numpy(mc)), mi, rtol=1e-10)


# Consensus entropy also counts uncertainty the members share: item 0 (all agree on a flat
# distribution) outranks item 2 (confident members that disagree).
@pytest.mark.parametrize("name, order", [("vote_entropy", [1, 2, 0]), ("consensus_entropy", [1, 0, 2]),
                                         ("kl_divergence", [1, 2, 0])])
def test_strategies_rank_by_their_scores(name, order):
    assert ab.select(name, 3, mc_probs=COMMITTEE).tolist() == order


@pytest.fixture(scope="module")
def digits():
    return ab.datasets.load("digits")


def test_committee_members_are_independent_and_averaged(digits):
    X, y = digits.X_train[:150], digits.y_train[:150]
    com = Committee(MLP(64, 10, embedding_dim=16), n_members=4, lr=1e-2, device="cpu", max_epochs=10)
    fit = com.fit(X, y, seed=3)
    assert fit.epochs <= 10 and 0 <= fit.train_accuracy <= 1
    w = [m.model.hidden.weight.detach() for m in com.members]
    assert all(not torch.equal(w[0], wi) for wi in w[1:])          # independent initialisations
    Xt = digits.X_test[:40]
    mp = com.member_probs(Xt)
    assert mp.shape == (4, 40, 10)
    P, Z = com.outputs(Xt)
    torch.testing.assert_close(P, mp.mean(0))
    torch.testing.assert_close(Z, com.members[0].outputs(Xt)[1])
    np.testing.assert_array_equal(com.predict(Xt), mp.mean(0).argmax(1).numpy())
    assert com.score(Xt, digits.y_test[:40]) == pytest.approx((com.predict(Xt) == digits.y_test[:40]).mean())
    # the same seed trains the same committee
    before = com.member_probs(Xt)
    com.fit(X, y, seed=3)
    torch.testing.assert_close(com.member_probs(Xt), before)
    assert com.model_name == "MLPx4"
    assert ab.Committee(MLP(64, 10), n_members=2, bootstrap=True, device="cpu").model_name == "MLPx2-bootstrap"


def test_committee_evidence_feeds_mc_probs_strategies(digits):
    pool = ab.Pool(digits.X_train[:120], digits.y_train[:120], n_classes=10)
    pool.label(np.arange(60))
    com = Committee(MLP(64, 10, embedding_dim=16), n_members=3, lr=1e-2, device="cpu", max_epochs=10)
    com.fit(*pool.labeled_data(), seed=0)
    ev = com.evidence(pool)
    assert ev.mc_probs.shape == (3, 60, 10)
    torch.testing.assert_close(ev.mc_probs, com.member_probs(pool.features(pool.unlabeled_indices)))
    torch.testing.assert_close(ev.probs, ev.mc_probs.mean(0))
    for name in ("vote_entropy", "consensus_entropy", "kl_divergence"):
        idx = ab.strategies.get(name).select(ev, 10, np.random.default_rng(0))
        np.testing.assert_array_equal(idx, ab.select(name, 10, mc_probs=ev.mc_probs))


def test_frozen_extractor_runs_once_per_input_for_the_committee():
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return x

    com = Committee(MLP(8, 3, embedding_dim=4), n_members=3, device="cpu", max_epochs=2, extractor=Counting())
    X = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    com.fit(X, np.arange(20) % 3, seed=0)
    assert sum(calls) == 20
    calls.clear()
    com.member_probs(X)
    assert sum(calls) == 20


def test_committee_options_are_checked():
    with pytest.raises(ValueError, match="n_members"):
        Committee(MLP(8, 3), n_members=1)
    with pytest.raises(TypeError, match="embed"):
        Committee(nn.Linear(3, 3), n_members=2)


def test_committee_mc_probs_are_its_members(digits):
    com = Committee(MLP(64, 10, embedding_dim=8, dropout=0.5), n_members=2, device="cpu", max_epochs=2)
    com.fit(digits.X_train[:50], digits.y_train[:50], seed=0)
    X = digits.X_test[:7]
    torch.testing.assert_close(com.mc_probs(X), com.member_probs(X))
    with pytest.raises(ValueError, match="members"):
        com.mc_probs(X, samples=5)


def test_every_mc_probs_strategy_runs_on_a_committee(digits):
    pool = ab.Pool(digits.X_train[:100], digits.y_train[:100], n_classes=10)
    pool.label(np.arange(40))
    com = Committee(MLP(64, 10, embedding_dim=8), n_members=3, lr=1e-2, device="cpu", max_epochs=5)
    com.fit(*pool.labeled_data(), seed=0)
    names = [n for n in ab.strategies.names() if "mc_probs" in ab.strategies.strategy_class(n).needs]
    assert {"vote_entropy", "consensus_entropy", "kl_divergence"} <= set(names)
    for name in names:
        idx = ab.strategies.get(name).select(com.evidence(pool), 8, np.random.default_rng(0))
        assert np.unique(idx).size == 8 and idx.max() < 60
