"""Label dispersion (Bengar et al., CAIP 2021) and forgetting events (Toneva et al., ICLR 2019):
the formulas on scripted records, the callbacks against plain recomputations on real fits, the
strategy's candidate mapping and errors, the shared checks and the loop's record."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.learning import Callback, ForgettingEvents
from activebatch.learning.callbacks import BatchState
from activebatch.learning.forgetting import FORGETTING_KEY, forgetting_stats
from activebatch.learning.models import MLP
from activebatch.strategies.label_dispersion import EpochPredictions, LabelDispersion, label_dispersion_scores
from activebatch.testing import check_strategy


# Dispersion ---------------------------------------------------------------------------------------------
def test_dispersion_equals_its_formula_on_a_scripted_record():
    P = np.array([[0, 1, 2, 0, 3],
                  [0, 1, 1, 1, 3],
                  [0, 2, 1, 2, 0],
                  [0, 1, 0, 1, 1]], dtype=np.int16)
    # modal counts f: 4, 3, 2 (class 1), 2 (class 1), 2 (class 3); T = 4
    expected = np.array([0.0, 0.25, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(label_dispersion_scores(P).numpy(), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(label_dispersion_scores(torch.from_numpy(P.astype(np.int64))).numpy(), expected)
    # every epoch a different class: f = 1
    np.testing.assert_allclose(label_dispersion_scores(np.arange(5)[:, None]).numpy(), [0.8])
    assert label_dispersion_scores(np.zeros((1, 3), dtype=np.int32)).tolist() == [0.0, 0.0, 0.0]
    assert label_dispersion_scores(np.zeros((3, 0), dtype=np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="class indices"):
        label_dispersion_scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(T, N\)"):
        label_dispersion_scores(np.zeros(3, dtype=np.int64))


def _scripted_fit(probs_per_epoch, n_classes, eval_batch_size=2):
    """A stand-in FitState whose predict returns the scripted softmax rows of the current epoch."""
    state = {"epoch": 0}

    def predict(X):
        rows = np.asarray(X)[:, 0].astype(int)           # the pool's features hold the item's index
        return torch.as_tensor(probs_per_epoch[state["epoch"]][rows])

    learner = SimpleNamespace(n_classes=n_classes, eval_batch_size=eval_batch_size, fit_artifacts={})
    fit = SimpleNamespace(learner=learner, predict=predict, artifacts=learner.fit_artifacts)
    return fit, state


def test_epoch_predictions_record_scripted_predictions():
    n, K, T = 7, 3, 4
    pool = ab.Pool(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % K, n_classes=K)
    pool.label([1, 4])
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(K), size=(T, n)).astype(np.float32)
    fit, state = _scripted_fit(probs, K)
    cb = EpochPredictions(pool, "label_dispersion")
    cb.on_fit_start(fit)
    pool.label([0])                                   # labeled later: the ids are fixed at fit start
    for t in range(T):
        state["epoch"] = t
        cb.on_epoch_end(fit)
    cb.on_fit_end(fit)
    rec = fit.artifacts["label_dispersion"]
    np.testing.assert_array_equal(rec["ids"], [0, 2, 3, 5, 6])
    assert rec["predictions"].dtype == np.int16 and rec["predictions"].shape == (T, 5)
    np.testing.assert_array_equal(rec["predictions"], probs.argmax(2)[:, [0, 2, 3, 5, 6]])

    # the strategy scores candidates through their ids, in the candidates' order
    learner = SimpleNamespace(fit_artifacts=fit.artifacts)
    cand = np.array([6, 2, 5, 3])
    ev = ab.Evidence(4, candidate_ids=cand, learner=learner)
    sel = LabelDispersion().query(ev, 2, np.random.default_rng(0))
    expected = label_dispersion_scores(probs.argmax(2)[:, cand]).numpy()
    np.testing.assert_array_equal(sel.candidate_scores, expected)
    np.testing.assert_array_equal(sel.indices, np.argsort(-expected, kind="stable")[:2])


def test_ties_go_to_the_lowest_position_and_missing_records_are_errors():
    preds = np.array([[0, 1, 1, 2], [0, 1, 0, 2], [1, 1, 2, 0]], dtype=np.int16)   # dispersion 1/3, 0, 2/3, 1/3
    learner = SimpleNamespace(fit_artifacts={"label_dispersion": {"ids": np.array([10, 11, 12, 13]),
                                                                  "predictions": preds}})
    ev = ab.Evidence(4, candidate_ids=np.array([10, 11, 12, 13]), learner=learner)
    sel = LabelDispersion().query(ev, 3, np.random.default_rng(0))
    assert sel.indices.tolist() == [2, 0, 3]
    np.testing.assert_allclose(sel.scores, [2 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match=r"no recorded predictions for 1 candidate.*\[14\]"):
        LabelDispersion().select(ab.Evidence(2, candidate_ids=np.array([10, 14]), learner=learner), 1,
                                 np.random.default_rng(0))
    bare = SimpleNamespace(fit_artifacts={})
    with pytest.raises(ValueError, match="training callbacks.*callbacks=strategy.training_callbacks"):
        LabelDispersion().select(ab.Evidence(2, candidate_ids=np.array([10, 11]), learner=bare), 1,
                                 np.random.default_rng(0))
    with pytest.raises(ValueError, match="pass the pool"):
        LabelDispersion().training_callbacks()


# Forgetting events ----------------------------------------------------------------------------------------
def test_forgetting_counts_on_a_scripted_sequence():
    C = np.array([[1, 0, 0, 1, 0],     # presentation 1
                  [0, 1, 0, 1, 0],     # 2
                  [1, 1, 0, 1, 1],     # 3
                  [0, 0, 0, 1, 1]],    # 4
                 dtype=bool)
    st = forgetting_stats(C)
    # column 0: 1,0,1,0: two events; 1: 0,1,1,0: one; 2: never learned; 3: unforgettable;
    # 4: learned at presentation 3 and kept: unforgettable
    assert st.events.tolist() == [2, 1, 0, 0, 0]
    assert st.learned.tolist() == [True, True, False, True, True]
    assert (st.n_events, st.n_forgettable, st.n_unforgettable, st.n_never_learned) == (3, 2, 2, 1)
    assert st.counts() == {"forgetting_events": 3, "forgettable": 2, "unforgettable": 2, "never_learned": 1}
    assert forgetting_stats(C.astype(int)).events.tolist() == [2, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="booleans"):
        forgetting_stats(np.full((2, 2), 0.5))


def test_the_callback_counts_scripted_presentations():
    """Mini-batches of scripted logits: the callback's counts equal the pure function's on each
    row's presentations in order."""
    rng = np.random.default_rng(1)
    n, K, epochs, B = 10, 3, 5, 4
    y = torch.as_tensor(rng.integers(0, K, size=n))
    fit = SimpleNamespace(y=y, artifacts={})
    cb = ForgettingEvents()
    cb.on_fit_start(fit)
    correct = np.zeros((epochs, n), dtype=bool)
    for e in range(epochs):
        perm = torch.as_tensor(rng.permutation(n))
        for s in range(0, n, B):
            idx = perm[s:s + B]
            logits = torch.as_tensor(rng.normal(size=(idx.numel(), K)))
            correct[e, idx.numpy()] = (logits.argmax(1) == y[idx]).numpy()
            cb.on_batch_end(fit, BatchState(idx, torch.zeros(idx.numel(), 1), y[idx], logits, torch.tensor(0.0), 0))
    cb.on_fit_end(fit)
    got, want = fit.artifacts[FORGETTING_KEY], forgetting_stats(correct)
    np.testing.assert_array_equal(got.events, want.events)
    np.testing.assert_array_equal(got.learned, want.learned)
    assert got.n_events > 0


class _Presentations(Callback):
    def __init__(self):
        self.rows = []

    def on_epoch_start(self, fit):
        self.rows.append(np.zeros(fit.y.shape[0], dtype=bool))

    def on_batch_end(self, fit, batch):
        self.rows[-1][batch.index.numpy()] = (batch.logits.argmax(1) == batch.y).numpy()


def _blobs(n, seed=0, k=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = (rng.normal(scale=1.5, size=(k, 4))[y] + rng.normal(size=(n, 4))).astype(np.float32)
    return X, y


def test_on_a_real_fit_both_callbacks_agree_with_plain_recomputations():
    X, y = _blobs(90)
    pool = ab.Pool(X, y)
    pool.label(np.arange(0, 90, 3))
    torch.manual_seed(0)
    learner = ab.Learner(MLP(4, 3, embedding_dim=8, dropout=0.3), lr=1e-2, batch_size=8, max_epochs=12,
                         device="cpu", eval_batch_size=7)
    preds = []

    class Spy(Callback):
        def on_epoch_end(self, fit):
            preds.append(learner.predict(pool.features(pool.unlabeled_indices)))
            fit.model.train()            # learner.predict leaves the model in eval mode

    spy = Spy()
    pres = _Presentations()
    strategy = LabelDispersion()
    res = learner.fit(*pool.labeled_data(), seed=2, callbacks=strategy.training_callbacks(pool) + [spy, pres])
    rec = learner.fit_artifacts["label_dispersion"]
    assert rec["predictions"].shape == (res.epochs, 60)
    np.testing.assert_array_equal(rec["predictions"], np.stack(preds))
    np.testing.assert_array_equal(rec["ids"], pool.unlabeled_indices)
    st = learner.fit_artifacts[FORGETTING_KEY]
    want = forgetting_stats(np.stack(pres.rows))
    np.testing.assert_array_equal(st.events, want.events)
    np.testing.assert_array_equal(st.learned, want.learned)
    sel = strategy.query(learner.evidence(pool), 5, np.random.default_rng(0))
    np.testing.assert_array_equal(sel.candidate_scores, label_dispersion_scores(np.stack(preds)).numpy())


# The shared checks and the loop -------------------------------------------------------------------------
def test_the_shared_checks_pass():
    check_strategy(LabelDispersion())


def test_the_loop_runs_it_and_the_history_shows_the_forgetting_counts():
    X, y = _blobs(200, seed=4)
    pool = ab.Pool(X[:150], y[:150])
    torch.manual_seed(0)
    learner = ab.Learner(MLP(4, 3, embedding_dim=16), lr=1e-2, batch_size=16, max_epochs=15, device="cpu")
    hist = ab.run(pool, learner, "label_dispersion", initial=30, batch_size=10, rounds=2, test=(X[150:], y[150:]),
                  seed=0)
    frame = hist.to_frame(details=True)
    assert frame["n_labeled"].tolist() == [30, 40, 50]
    st = learner.fit_artifacts[FORGETTING_KEY]
    last = frame.iloc[-1]
    assert (last["forgetting_events"], last["unforgettable"], last["never_learned"]) == \
        (st.n_events, st.n_unforgettable, st.n_never_learned)
    for _, row in frame.iterrows():
        assert row["unforgettable"] + row["never_learned"] <= row["n_labeled"]
        assert row["forgetting_events"] >= 0
    assert all(r.selected_scores is not None for r in hist.rounds[1:])


def test_any_learner_can_report_forgetting_and_others_leave_the_columns_empty():
    X, y = _blobs(120, seed=5)
    torch.manual_seed(0)
    learner = ab.Learner(MLP(4, 3, embedding_dim=8), lr=1e-2, max_epochs=5, device="cpu",
                         callbacks=[ForgettingEvents()])
    hist = ab.run(ab.Pool(X[:90], y[:90]), learner, "margin", initial=20, batch_size=10, rounds=1,
                  test=(X[90:], y[90:]), seed=0)
    assert hist.to_frame(details=True)["never_learned"].notna().all()
    plain = ab.Learner(MLP(4, 3, embedding_dim=8), lr=1e-2, max_epochs=5, device="cpu")
    hist = ab.run(ab.Pool(X[:90], y[:90]), plain, "margin", initial=20, batch_size=10, rounds=1,
                  test=(X[90:], y[90:]), seed=0)
    assert hist.to_frame(details=True)["forgetting_events"].isna().all()
