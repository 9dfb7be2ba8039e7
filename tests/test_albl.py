"""ALBL: the EXP4.P update by hand, importance weights per queried item, state across rounds."""
import json
import math

import numpy as np
import pytest

import activebatch as ab
from activebatch.kernels.bandit import Exp4P
from activebatch.strategies import ALBL, Feedback
from conftest import make_evidence


def test_exp4p_first_step_by_hand():
    bandit = Exp4P(2, horizon=4, delta=0.1, p_min=0.1)
    np.testing.assert_allclose(bandit.probabilities(), [0.5, 0.5])
    bandit.update([0], 0.6, [0.5, 0.5])
    # y_hat = (0.6 / 0.5, 0), v_hat = (2, 2): the common bonus cancels, w0 / w1 = exp(0.05 * 1.2)
    np.testing.assert_allclose(bandit.probabilities()[0], 0.8 * math.exp(0.06) / (1 + math.exp(0.06)) + 0.1)
    assert bandit.probabilities()[0] == pytest.approx(0.5119964, abs=1e-7)


def test_exp4p_scripted_rewards_by_hand():
    # Three arms, T = 5, delta = 0.2, p_min = 0.05; pulls and rewards scripted.
    T, delta, p_min = 5, 0.2, 0.05
    bandit = Exp4P(3, horizon=T, delta=delta, p_min=p_min)
    c = math.sqrt(math.log(3 / delta) / (3 * T))
    w = [1.0, 1.0, 1.0]
    for arm, reward in [(0, 0.2), (2, 0.9), (2, 0.4), (1, 0.0), (0, 1.0)]:
        W = sum(w)
        p = [(1 - 3 * p_min) * wi / W + p_min for wi in w]
        np.testing.assert_allclose(bandit.probabilities(), p, rtol=1e-12)
        bandit.update([arm], reward, p)
        w = [w[i] * math.exp(p_min / 2 * ((reward / p[i] if i == arm else 0.0) + c / p[i])) for i in range(3)]
    W = sum(w)
    np.testing.assert_allclose(bandit.probabilities(), [(1 - 3 * p_min) * wi / W + p_min for wi in w], rtol=1e-12)


def test_exp4p_general_advice_and_batched_trials():
    # Two experts over three actions; two trials sharing one p equal two single steps without
    # a change of p in between.
    xi = np.array([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    a = Exp4P(2, horizon=10, n_actions=3, p_min=0.1)
    b = Exp4P(2, horizon=10, n_actions=3, p_min=0.1)
    p = a.probabilities(xi)
    np.testing.assert_allclose(p, 0.7 * xi.mean(axis=0) + 0.1)
    a.update([1, 2], [0.3, 0.7], p, xi)
    for j, r in [(1, 0.3), (2, 0.7)]:
        b.update([j], r, p, xi)
    np.testing.assert_allclose(a.log_weights, b.log_weights)
    c = math.sqrt(math.log(2 / 0.1) / (3 * 10))
    expected = 0.05 * ((xi[:, 1] * 0.3 / p[1] + xi[:, 2] * 0.7 / p[2]) + 2 * (xi / p).sum(axis=1) * c)
    np.testing.assert_allclose(a.log_weights, expected)


def test_exp4p_defaults_and_checks():
    b = Exp4P(3, horizon=100)
    assert b.p_min == pytest.approx(math.sqrt(math.log(3) / 300))
    assert Exp4P(3, horizon=1).p_min == pytest.approx(1 / 3)           # capped at 1/K
    with pytest.raises(ValueError, match="p_min"):
        Exp4P(2, horizon=5, p_min=0.6)
    with pytest.raises(ValueError, match="advice"):
        Exp4P(2, horizon=5, n_actions=3).probabilities()


def test_importance_weights_are_recorded_per_queried_item():
    arrays = make_evidence(n=40)
    P = arrays["probs"]
    lc = set(ab.select("least_confidence", 12, probs=P).tolist())
    mg = set(ab.select("margin", 12, probs=P).tolist())
    ids = np.arange(100, 140)
    pulled = set()
    for seed in range(12):
        albl = ALBL(members=("least_confidence", "margin"), horizon=5)
        idx = ab.select(albl, 12, seed=seed, ids=ids, probs=P)
        pend = albl._pending
        arm = albl.arms[pend["arm"]]
        pulled.add(arm)
        if arm != "uniform":                                     # the batch is the pulled member's
            assert set(idx.tolist()) == {"least_confidence": lc, "margin": mg}[arm]
        # q_j = 1/3 [j in LC's batch] + 1/3 [j in margin's batch] + 1/3 * 12 / 40
        q = np.array([(j in lc) / 3 + (j in mg) / 3 + 0.1 for j in idx.tolist()])
        np.testing.assert_allclose(pend["importance_weight"], 1 / q)
        assert pend["id"] == ids[idx].tolist() and pend["n_candidates"] == 40
        labels = np.zeros(40, dtype=int)
        albl.update(Feedback(ids=ids, labels=labels, predictions=labels))
        frame = albl.items
        assert frame["id"].tolist() == ids[idx].tolist() and (frame["round"] == 0).all()
        assert (frame["arm"] == arm).all()
        np.testing.assert_allclose(frame["importance_weight"], 1 / q)
        # all predictions right: IW-ACC = 1/T * 1/K * sum of the weights
        assert albl.rewards == [pytest.approx((1 / q).sum() / 40 / 5)]
    assert pulled == {"least_confidence", "margin", "uniform"}


def test_arm_probabilities_follow_exp4p_on_scripted_feedback():
    arrays = make_evidence(n=50)
    T, p_min, delta = 4, 0.08, 0.1
    albl = ALBL(members=("least_confidence", "coreset"), horizon=T, p_min=p_min, delta=delta)
    c = math.sqrt(math.log(3 / delta) / (3 * T))
    log_w = np.zeros(3)
    ids = np.arange(50)
    truth = np.arange(50) % 4
    picked, pulled = np.zeros(0, dtype=np.int64), []
    # Scripted model quality per round: the retrained model is right on the first fraction of items.
    for rnd, frac_right in enumerate([1.0, 0.0, 0.5, 0.8]):
        w = np.exp(log_w - log_w.max())
        p = (1 - 3 * p_min) * w / w.sum() + p_min
        np.testing.assert_allclose(list(albl.arm_probabilities.values()), p, rtol=1e-12)
        picked = np.concatenate([picked, ab.select(albl, 10, seed=rnd, ids=ids, exclude=picked, **arrays)])
        arm = albl._pending["arm"]
        pulled.append(arm)
        preds = np.where(np.arange(50) < frac_right * 50, truth, (truth + 1) % 4)
        albl.update(Feedback(ids=ids, labels=truth, predictions=preds))
        items = albl.items
        right = preds[items["id"].to_numpy()] == truth[items["id"].to_numpy()]
        reward = float((items["importance_weight"] / items["n_candidates"] * right).sum() / T)
        assert albl.rewards[-1] == pytest.approx(reward)
        log_w = log_w + p_min / 2 * (np.eye(3)[arm] * reward / p + c / p)
    assert albl.rewards[1] == 0.0                       # the all-wrong round: nothing right so far
    assert [h["arm"] for h in albl.history] == [albl.arms[a] for a in pulled]
    w = np.exp(log_w - log_w.max())
    np.testing.assert_allclose(list(albl.arm_probabilities.values()), (1 - 3 * p_min) * w / w.sum() + p_min)


def test_state_round_trip_continues_identically():
    arrays = make_evidence(n=50)
    ids = np.arange(50)
    truth = np.arange(50) % 4
    a = ALBL(horizon=40)
    for rnd in range(2):
        ab.select(a, 8, seed=rnd, ids=ids, **arrays)
        a.update(Feedback(ids=ids, labels=truth, predictions=np.where(ids % 3 == 0, truth, 0)))
    state = json.loads(json.dumps(a.state_dict()))
    b = ALBL(horizon=40)
    b.load_state_dict(state)
    assert b.arm_probabilities == a.arm_probabilities
    np.testing.assert_array_equal(ab.select(a, 8, seed=9, ids=ids, **arrays),
                                  ab.select(b, 8, seed=9, ids=ids, **arrays))
    fb = Feedback(ids=ids, labels=truth, predictions=truth)
    a.update(fb)
    b.update(fb)
    assert a.state_dict() == b.state_dict()
    with pytest.raises(ValueError, match="arms"):
        ALBL(members=("margin",)).load_state_dict(state)


def test_one_shot_feedback_errors_and_discarded_selection():
    arrays = make_evidence(n=30)
    albl = ALBL(horizon=20)
    idx = ab.select(albl, 5, seed=0, **arrays)
    with pytest.raises(ValueError, match="lacks"):
        albl.update(Feedback(ids=np.setdiff1d(np.arange(30), idx[:1]), labels=np.zeros(29, int),
                             predictions=np.zeros(29, int)))
    with pytest.raises(ValueError, match="predictions"):
        albl.update(Feedback(ids=np.arange(30), labels=np.zeros(30, int)))
    with pytest.raises(TypeError, match="Feedback"):
        albl.update({"ids": [1]})
    with pytest.warns(RuntimeWarning, match="discarded"):
        ab.select(albl, 5, seed=1, **arrays)
    albl.update(Feedback(ids=np.arange(30), labels=np.zeros(30, int), predictions=np.zeros(30, int)))
    assert len(albl.items) == 5 and len(albl.rewards) == 1
    albl.update(Feedback(ids=np.arange(30), labels=np.zeros(30, int), predictions=np.zeros(30, int)))
    assert len(albl.rewards) == 1                      # nothing pending: nothing to reward


def test_options_are_checked():
    with pytest.raises(ValueError, match="non-empty"):
        ALBL(members=())
    with pytest.raises(ValueError, match="duplicates"):
        ALBL(members=("margin", "margin"))
    with pytest.raises(ValueError, match="uniform arm"):
        ALBL(members=("margin", "random"))
    with pytest.raises(ValueError, match="unknown strategy"):
        ALBL(members=("margin", "no-such"))
    with pytest.raises(ValueError, match="p_min"):
        ALBL(p_min=0.5)
    with pytest.raises(ValueError, match="horizon"):
        ALBL(horizon=0)
    assert ALBL(members=("margin", "random"), uniform=False).arms == ["margin", "random"]
    badge_albl = ab.strategies.get("albl", members=["margin", "badge"])
    assert badge_albl.needs == {"probs", "embeddings"} and badge_albl.optional == frozenset()
    with pytest.raises(ValueError, match="labeled_embeddings|embeddings"):
        ab.select(badge_albl, 3, probs=make_evidence()["probs"])


def test_run_records_state_and_horizon(digits_small):
    data = digits_small
    pool = ab.Pool(data.X_train, data.y_train)
    learner = ab.Learner(ab.models.MLP(64, 10, embedding_dim=16), lr=1e-2, device="cpu", max_epochs=15)
    albl = ALBL()
    hist = ab.run(pool, learner, albl, initial=30, batch_size=20, rounds=3, test=(data.X_test, data.y_test), seed=0)
    state = hist.strategy_state
    assert state["horizon"] == 3 and len(state["rounds"]) == 3 and state["pending"] is None
    assert state["items"]["id"] == np.concatenate(hist.selections[1:]).tolist()
    assert hist.rounds[0].strategy_state["rounds"] == [] and len(hist.rounds[2].strategy_state["rounds"]) == 2
    frame = hist.to_frame(details=True)
    assert frame["strategy_state"].iloc[-1] == state
    assert all(0 <= r for r in albl.rewards)


@pytest.fixture(scope="module")
def digits_small():
    return ab.datasets.load("digits")
