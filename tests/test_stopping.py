"""Stopping rules (activebatch.loop.stopping): each rule against its formula on hand-made
predictions, the tracker on scripted rounds, ab.run(stopping=...) against a plain recomputation
from the saved models, and the workspace status."""
import copy
import json
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.learning.models import MLP
from activebatch.loop.stopping import (
    COLUMNS,
    RULES,
    StoppingRules,
    classification_change,
    cohen_kappa,
    max_uncertainty,
    overall_uncertainty,
    predictive_entropy,
    says_stop,
    selected_accuracy,
    stabilizing_predictions,
)


def H(*p):
    """Entropy in nats, written out."""
    return -sum(x * math.log(x) for x in p if x > 0)


# Cohen's kappa ----------------------------------------------------------------------------------------
def test_kappa_hand_computed():
    # p_o = 3/4; marginals (2, 2) and (1, 3): p_e = (2*1 + 2*3)/16 = 1/2 -> (3/4 - 1/2)/(1/2) = 1/2
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == 0.5
    # three classes: p_o = 1/2, uniform marginals: p_e = 1/3 -> (1/2 - 1/3)/(2/3) = 1/4
    assert cohen_kappa([0, 1, 2, 0, 1, 2], [0, 1, 2, 1, 2, 0]) == pytest.approx(0.25, abs=1e-15)
    assert cohen_kappa([0, 1], [1, 0]) == -1.0            # p_o = 0, p_e = 1/2
    assert cohen_kappa([0, 0, 0], [1, 1, 1]) == 0.0       # p_o = 0, p_e = 0
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == 1.0


def test_kappa_degenerate_case_is_one():
    # p_e = 1: both label every item with the same single class, so they agree everywhere
    assert cohen_kappa([2, 2, 2, 2], [2, 2, 2, 2]) == 1.0
    assert cohen_kappa(np.array([5]), torch.tensor([5])) == 1.0


def test_kappa_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        a = rng.integers(0, k, 300)
        b = np.where(rng.random(300) < 0.7, a, rng.integers(0, k, 300))
        assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_refuses_bad_input():
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="at least one item"):
        cohen_kappa([], [])
    with pytest.raises(ValueError, match="class labels"):
        cohen_kappa([0, -1], [0, 1])


# The other rules' formulas -------------------------------------------------------------------------
def test_entropy_and_uncertainty_rules():
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]])
    np.testing.assert_allclose(predictive_entropy(p), [H(.5, .5), 0.0, H(.2, .8)], rtol=1e-12)
    assert predictive_entropy(p)[1] == 0.0 and not np.signbit(predictive_entropy(p)[1])
    np.testing.assert_allclose(predictive_entropy(torch.tensor(p)), predictive_entropy(p))
    e = predictive_entropy(p)
    r = overall_uncertainty(e, threshold=0.5)
    assert r.value == pytest.approx((H(.5, .5) + H(.2, .8)) / 3) and r.stop       # 0.398 < 0.5
    assert not overall_uncertainty(e, threshold=0.3).stop
    r = max_uncertainty(e, threshold=0.7)
    assert r.value == pytest.approx(math.log(2)) and r.stop                           # 0.693 < 0.7
    assert not max_uncertainty(e).stop                                                 # default 0.001
    assert max_uncertainty([0.0, 0.0009]).stop
    assert overall_uncertainty([]).value is None and not overall_uncertainty([]).stop


def test_classification_change_and_selected_accuracy():
    r = classification_change([0, 1, 2, 2], [0, 2, 2, 1])
    assert r.value == 0.5 and not r.stop                   # the paper's rule: no change at all
    r = classification_change([0, 1, 2], [0, 1, 2])
    assert r.value == 0.0 and r.stop
    assert classification_change([0, 1, 2, 2], [0, 2, 2, 1], threshold=0.5).stop
    r = selected_accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    assert r.value == 0.75 and not r.stop                  # 0.75 < 0.9
    assert selected_accuracy([0, 1], [0, 1], threshold=1.0).stop


def test_stabilizing_predictions_window():
    assert stabilizing_predictions([1.0, 1.0]).value is None             # fewer than k = 3 kappas
    r = stabilizing_predictions([0.5, 0.99, 1.0, 1.0])
    assert r.value == pytest.approx((0.99 + 1.0 + 1.0) / 3) and r.stop   # 0.99667 > 0.99
    r = stabilizing_predictions([1.0, 0.97, 1.0, 1.0])
    assert r.value == pytest.approx(0.99) and not r.stop                 # not above 0.99
    assert stabilizing_predictions([0.9, 0.95], window=2, threshold=0.9).stop


def test_says_stop_directions():
    assert says_stop("stabilizing_predictions", 0.995, 0.99) and not says_stop("stabilizing_predictions", 0.99, 0.99)
    assert says_stop("overall_uncertainty", 0.0, 0.01) and not says_stop("overall_uncertainty", 0.01, 0.01)
    assert says_stop("classification_change", 0.0, 0.0) and says_stop("selected_accuracy", 1.0, 1.0)
    assert not says_stop("max_uncertainty", None, 1.0)
    with pytest.raises(ValueError, match="unknown stopping rule"):
        says_stop("kappa", 1.0, 0.5)


# The tracker on scripted rounds --------------------------------------------------------------------
def _swap(pred, d, rng):
    """Move d/2 items from class 0 to 1 and d/2 from 1 to 0 (the marginals stay 50/50)."""
    out = pred.copy()
    zeros, ones = np.flatnonzero(pred == 0), np.flatnonzero(pred == 1)
    out[rng.choice(zeros, d // 2, replace=False)] = 1
    out[rng.choice(ones, d // 2, replace=False)] = 0
    return out


def _soft(pred):
    p = np.full((pred.size, 2), 0.2)
    p[np.arange(pred.size), pred] = 0.8
    return p


def test_stabilizing_sequence_stops_where_the_formula_says():
    # 100 stop-set items split 50/50; swapping d of them keeps p_e = 1/2, so kappa = 1 - 2d/100:
    # d = 10, 4, 2, 0, 0, 0, 0 gives kappas 0.8, 0.92, 0.96, 1, 1, 1, 1 and window means (k = 3)
    # 0.8933 (round 3), 0.96 (4), 0.98667 (5), 1.0 (6): round 6 is the first above 0.99.
    rng = np.random.default_rng(0)
    rules = StoppingRules(stop="stabilizing_predictions")
    ids = np.arange(100)
    assert np.array_equal(rules.start(ids, seed=0), ids)          # fewer items than 2000: all of them
    pred = np.repeat([0, 1], 50)
    stopped_at = None
    for t, d in enumerate([None, 10, 4, 2, 0, 0, 0, 0]):
        if d is not None:
            pred = _swap(pred, d, rng)
        rep = rules.observe(unlabeled_ids=ids, probs=_soft(pred), stop_predictions=pred)
        if rep.stop and stopped_at is None:
            stopped_at = t
            assert rep.rule == "stabilizing_predictions" and "round 6" in rep.reason
        if d is not None:   # the unlabeled items' classes changed by d of 100
            assert rep.results["classification_change"].value == d / 100
    np.testing.assert_allclose(rules.kappas, [0.8, 0.92, 0.96, 1, 1, 1, 1], atol=1e-12)
    values = [r.results["stabilizing_predictions"].value for r in rules.reports]
    assert values[:3] == [None, None, None]
    np.testing.assert_allclose(values[3:], [(0.8 + 0.92 + 0.96) / 3, 0.96, (0.96 + 2) / 3, 1, 1], atol=1e-12)
    assert stopped_at == 6
    # overall uncertainty of every round: each item has probabilities (0.8, 0.2)
    assert rules.reports[-1].results["overall_uncertainty"].value == pytest.approx(H(.8, .2))


def test_batch_rules_read_the_previous_model():
    rules = StoppingRules(stop_set_size=2)
    stop = rules.start(np.arange(6), seed=1)
    assert stop.size == 2 and np.all(np.diff(stop) > 0)
    p0 = np.array([[.9, .1], [.45, .55], [.7, .3], [.2, .8], [.6, .4], [1.0, 0.0]])
    r0 = rules.observe(unlabeled_ids=np.arange(6), probs=p0, stop_predictions=p0[stop].argmax(1))
    assert r0.kappa is None
    for name in ("max_uncertainty", "classification_change", "selected_accuracy"):
        assert r0.results[name].value is None
    # round 1 labels items 1 and 4 as 1 and 1; the previous model predicted 1 and 0 for them
    left = np.array([0, 2, 3, 5])
    p1 = np.array([[.2, .8], [.6, .4], [.3, .7], [.9, .1]])
    full1 = np.zeros((6, 2))
    full1[left] = p1
    r1 = rules.observe(unlabeled_ids=left[::-1], probs=p1[::-1], stop_predictions=np.array([0, 1]),
                       batch_ids=[4, 1], batch_labels=[1, 1])
    res = r1.results
    assert res["max_uncertainty"].value == pytest.approx(max(H(.45, .55), H(.6, .4)))   # = H(.45, .55)
    assert res["selected_accuracy"].value == 0.5
    assert res["classification_change"].value == 0.25                  # only item 0 moved (0 -> 1)
    assert res["overall_uncertainty"].value == pytest.approx((H(.2, .8) + H(.6, .4) + H(.3, .7) + H(.9, .1)) / 4)
    assert r1.kappa == cohen_kappa(p0[stop].argmax(1), [0, 1])
    assert not r1.stop                                                  # stop=False: recorded only
    rec = r1.to_record()
    assert list(rec) == COLUMNS and rec["selected_accuracy"] == 0.5 and rec["selected_accuracy_stop"] is False
    json.dumps(r1.to_dict())


def test_options_are_checked_and_round_trip():
    rules = StoppingRules(stop=["overall_uncertainty", "max_uncertainty"], kappa_window=2)
    assert StoppingRules(**rules.get_params()).get_params() == rules.get_params()
    assert StoppingRules.coerce(None) is None and StoppingRules.coerce(False) is None
    assert StoppingRules.coerce(rules) is rules
    assert StoppingRules.coerce(True).get_params() == StoppingRules().get_params()
    assert StoppingRules.coerce({"stop": True}).stop_rules == RULES
    with pytest.raises(ValueError, match="unknown stopping option"):
        StoppingRules.coerce({"threshold": 0.5})
    with pytest.raises(ValueError, match="stop must be one of"):
        StoppingRules(stop="kappa")
    with pytest.raises(ValueError, match="kappa_threshold"):
        StoppingRules(kappa_threshold=1.5)
    with pytest.raises(ValueError, match="kappa_window must be an integer >= 1"):
        StoppingRules(kappa_window=0)
    with pytest.raises(TypeError, match="stopping must be"):
        StoppingRules.coerce("yes")
    with pytest.raises(ValueError, match="stop set has 0"):
        StoppingRules().observe(unlabeled_ids=[0], probs=[[1.0, 0.0]], stop_predictions=[0])


# ab.run --------------------------------------------------------------------------------------------------
class Recording(ab.Learner):
    """Keeps each fit's weights, to recompute the rules from M_0, M_1, ... afterwards."""

    def fit(self, X, y, **kwargs):
        res = super().fit(X, y, **kwargs)
        self.states.append(copy.deepcopy(self.model.state_dict()))
        return res


def _blobs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.normal(scale=1.5, size=(3, 4))[y] + rng.normal(size=(n, 4))).astype(np.float32)
    return X, y


def _learner(cls=ab.Learner):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        learner = cls(MLP(4, 3, embedding_dim=16), lr=1e-2, max_epochs=15, device="cpu")
    learner.states = []
    return learner


def _run(stopping, rounds=4, learner=None, seed=0):
    X, y = _blobs()
    pool = ab.Pool(X, y, name="blobs")
    learner = learner or _learner()
    hist = ab.run(pool, learner, "entropy", initial=15, batch_size=10, rounds=rounds, test=(X, y), seed=seed,
                  stopping=stopping)
    return pool, learner, hist


def test_run_records_the_rules_as_a_plain_recomputation_gives_them():
    rules = StoppingRules(stop_set_size=50)
    pool, learner, hist = _run(rules, learner=_learner(Recording))
    frame = hist.to_frame(details=True)
    assert set(COLUMNS) <= set(frame.columns) and hist.stopped_by is None and len(frame) == 5
    assert hist.options["stopping"] == rules.get_params()
    X, y = _blobs()
    stop = rules.stop_set
    assert stop.size == 50 and not np.isin(stop, hist.selections[0]).any()   # drawn after the initial labels
    probs = []
    for state in learner.states:      # M_0 .. M_4 on every item, the slow way
        learner.model.load_state_dict(state)
        probs.append(learner.predict_proba(X).astype(np.float64))
    labeled = np.zeros(len(X), bool)
    kappas = []
    for t, row in frame.iterrows():
        batch = hist.selections[t]
        labeled[batch] = True
        unl = np.flatnonzero(~labeled)
        P = probs[t]
        ent = -(P * np.log(np.where(P > 0, P, 1))).sum(1)
        assert row["overall_uncertainty"] == pytest.approx(ent[unl].mean(), rel=1e-5)
        if t == 0:
            assert row[["kappa", "max_uncertainty", "classification_change", "selected_accuracy"]].isna().all()
            continue
        Q = probs[t - 1]
        q_ent = -(Q * np.log(np.where(Q > 0, Q, 1))).sum(1)
        a, b = Q[stop].argmax(1), P[stop].argmax(1)
        p_o = np.mean(a == b)
        p_e = sum(np.mean(a == k) * np.mean(b == k) for k in range(3))
        kappas.append(1.0 if p_e == 1 else (p_o - p_e) / (1 - p_e))
        assert row["kappa"] == pytest.approx(kappas[-1], abs=1e-12)
        assert row["max_uncertainty"] == pytest.approx(q_ent[batch].max(), rel=1e-5)
        assert row["selected_accuracy"] == np.mean(Q[batch].argmax(1) == y[batch])
        assert row["classification_change"] == np.mean(Q[unl].argmax(1) != P[unl].argmax(1))
        want = None if t < 3 else np.mean(kappas[-3:])
        assert np.isnan(row["stabilizing_predictions"]) if want is None else \
            row["stabilizing_predictions"] == pytest.approx(want, abs=1e-12)
        assert row["selected_accuracy_stop"] == (row["selected_accuracy"] >= 0.9)
    # entropy sampling picks the most uncertain items: the batch's largest entropy is the pool's
    labeled[:] = False
    labeled[hist.selections[0]] = True
    for t in range(1, 5):
        Q = probs[t - 1]
        q_ent = -(Q * np.log(np.where(Q > 0, Q, 1))).sum(1)
        assert frame.loc[t, "max_uncertainty"] == pytest.approx(q_ent[~labeled].max(), rel=1e-5)
        labeled[hist.selections[t]] = True


def test_recording_changes_nothing_else():
    _, _, plain = _run(None)
    _, _, recorded = _run(True)
    for a, b in zip(plain.selections, recorded.selections):
        np.testing.assert_array_equal(a, b)
    assert plain.to_frame()["test_accuracy"].tolist() == recorded.to_frame()["test_accuracy"].tolist()
    details = plain.to_frame(details=True)
    assert details[COLUMNS].isna().all().all() and "stopping" not in plain.options
    assert recorded.stopped_by is None and recorded.stop_reason is None


def test_run_stops_at_the_round_the_rule_says():
    # kappa_threshold -1: any mean exceeds it, so the rule says stop as soon as k = 3 kappas exist
    pool, _, hist = _run({"stop": "stabilizing_predictions", "kappa_threshold": -1.0}, rounds=6)
    assert [r.round for r in hist.rounds] == [0, 1, 2, 3] and pool.n_labeled == 15 + 3 * 10
    assert hist.stopped_by == "stabilizing_predictions"
    assert hist.stop_reason.startswith("stabilizing_predictions said stop after round 3: mean kappa")
    frame = hist.to_frame(details=True)
    assert frame["stabilizing_predictions_stop"].tolist() == [False, False, False, True]
    # selected accuracy with threshold 0 says stop in the first round that has it
    pool, _, hist = _run({"stop": ["selected_accuracy"], "selected_accuracy_threshold": 0.0})
    assert len(hist.rounds) == 2 and hist.stopped_by == "selected_accuracy" and pool.n_labeled == 25
    # a rule that is recorded but not allowed to stop the run does not end it
    _, _, hist = _run({"stop": "max_uncertainty", "selected_accuracy_threshold": 0.0}, rounds=2)
    assert len(hist.rounds) == 3 and hist.to_frame(details=True)["selected_accuracy_stop"].tolist()[1:] == [True] * 2


def test_run_refuses_bad_stopping_options_before_training():
    X, y = _blobs()
    learner = _learner(Recording)
    with pytest.raises(ValueError, match="unknown stopping option"):
        ab.run(ab.Pool(X, y), learner, "entropy", initial=15, batch_size=10, rounds=1, test=(X, y),
               stopping={"stop_set": 10})
    assert learner.states == []


# Workspaces ------------------------------------------------------------------------------------------------
def test_workspace_status_reports_the_rules(tmp_path):
    from activebatch.workspace import ModelConfig, Workspace
    from activebatch.workspace.server import LabelService
    from activebatch.workspace.stopping import META_KEY
    from workspace_fixtures import TAB_CLASSES, make_table, write_labels

    items, truth = make_table(tmp_path, n=90)
    ids = list(truth)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=20),
                          labels=write_labels(tmp_path / "seed.csv", ids[:12], truth), eval_labels=write_labels(
                              tmp_path / "eval.csv", ids[-20:], truth))
    st = ws.status(plot=False)
    assert st.stopping["summary"] == "stopping rules: no trained model yet"
    assert LabelService(ws.folder).state()["stopping"] == "stopping rules: no trained model yet"

    states, batches = [], []
    for rnd in (1, 2, 3):
        res = ws.query(6, "entropy")
        batches.append(res.item_ids)
        states.append(ws.store.meta()[META_KEY])
        for i in res.item_ids[: (6 if rnd < 3 else 4)]:     # the last batch is labelled in part
            ws.label(i, truth[i], annotator="ann")
    last = states[-1]
    outside = set(ws.store.positions_of(ids[-20:] + ids[:12]).values())   # evaluation split, initial labels
    assert len(last["stop_set"]) == 58 and not set(last["stop_set"]) & outside   # every first candidate
    assert last["stop_set"] == states[0]["stop_set"]                              # fixed at the first model
    r1, r2, r3 = (last["rounds"][str(r)] for r in (1, 2, 3))
    assert r1["kappa"] is None and r1["classification_change"] is None
    # round 3's kappa compares the round-2 and round-3 models' classes on the stop set
    from activebatch.workspace.stopping import _decode

    stop = np.array(last["stop_set"])
    c2, c3 = _decode(states[1]["last"]["classes"]), _decode(last["last"]["classes"])
    assert r3["kappa"] == cohen_kappa(c2[stop], c3[stop])
    # the entropy strategy takes the most uncertain candidates: the batch's largest entropy is the pool's
    for r in (r1, r2, r3):
        assert r["max_uncertainty"] >= r["overall_uncertainty"] > 0
    # 54 non-eval unlabelled candidates at round 3 (70 - 12 initial - 2 x 6 labelled)
    assert r3["n_unlabelled"] == 70 - 12 - 12

    st = ws.status(plot=False)
    s = st.to_dict()["stopping"]
    json.dumps(s)
    assert list(s["rules"]) == list(RULES)
    assert [k["round"] for k in s["kappas"]] == [2, 3]
    assert s["rules"]["stabilizing_predictions"]["value"] is None             # k = 3 needs 3 kappas
    assert s["rules"]["overall_uncertainty"]["value"] == r3["overall_uncertainty"]
    assert s["rules"]["overall_uncertainty"]["round"] == 3
    sel = ws.batch(3)
    done = sel[sel["label"].notna()]
    assert len(done) == 4
    acc = s["rules"]["selected_accuracy"]
    assert acc["round"] == 3 and acc["labelled"] == 4
    assert acc["value"] == np.mean(done["predicted"].to_numpy() == done["label"].to_numpy())
    assert "stopping rules" in st.to_text() and "selected_accuracy" in st.to_text()

    # thresholds are applied when the status is read
    s2 = ws.status(plot=False, stopping={"kappa_window": 2, "selected_accuracy_threshold": 0.0}).stopping
    assert s2["rules"]["stabilizing_predictions"]["value"] == pytest.approx((r2["kappa"] + r3["kappa"]) / 2)
    assert "selected_accuracy" in s2["says_stop"] and s2["summary"].endswith("stop suggested by selected accuracy")
    line = LabelService(ws.folder).state()["stopping"]
    assert line.startswith("stopping rules: kappa -, pool entropy") and len(line) < 200
