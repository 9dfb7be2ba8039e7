"""Loop options: CEAL pseudo-labels, selection via a proxy, stateful strategy hooks."""
import numpy as np
import pytest

import activebatch as ab
from activebatch.learning.models import MLP
from activebatch.loop import CEAL
from activebatch.strategies import Feedback, Strategy


@pytest.fixture(scope="module")
def digits():
    return ab.datasets.load("digits")


class SpyLearner(ab.Learner):
    """Records each training set and checks that its pseudo-labels are the current model's predictions."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fits, self.evidence_calls = [], 0

    def fit(self, X, y, *, seed=0):
        self.fits.append((np.asarray(X), np.asarray(y)))
        return super().fit(X, y, seed=seed)

    def evidence(self, pool):
        self.evidence_calls += 1
        return super().evidence(pool)


def _learner(cls=ab.Learner, width=16, epochs=15):
    return cls(MLP(64, 10, embedding_dim=width), lr=1e-2, device="cpu", max_epochs=epochs)


def test_ceal_pseudo_labels_never_enter_the_labeled_set(digits):
    X, y = digits.X_train[:400], digits.y_train[:400]
    pool = ab.Pool(X, y)
    learner = _learner(SpyLearner)
    ceal = CEAL(threshold=2.5, decay=0.5)          # 2.5 > log(10): every other candidate at first
    hist = ab.run(pool, learner, "margin", initial=30, batch_size=20, rounds=4, test=(digits.X_test, digits.y_test),
                  seed=0, ceal=ceal)
    frame = hist.to_frame(details=True)
    assert frame["n_labeled"].tolist() == [30, 50, 70, 90, 110] == [r.n_labeled for r in hist.rounds]
    assert pool.n_labeled == 110
    assert set(pool.labeled_indices.tolist()) == set(np.concatenate(hist.selections).tolist())
    assert (pool.labels[~pool.labeled_mask] == -1).all()
    assert frame["ceal_threshold"].tolist()[1:] == [2.5, 2.0, 1.5, 1.0]
    assert frame["n_pseudo_labeled"].iloc[0] == 0
    assert frame["n_pseudo_labeled"].iloc[1] == 400 - 50             # all but the labeled items
    assert (np.diff(frame["n_pseudo_labeled"].iloc[1:]) <= 0).all()
    for (_Xf, yf), r in zip(learner.fits, hist.rounds):
        assert len(yf) == r.n_labeled + r.n_pseudo_labeled
    assert hist.options == {"ceal": {"threshold": 2.5, "decay": 0.5}}


def test_ceal_pseudo_labels_are_the_previous_models_predictions(digits):
    X, y = digits.X_train[:300], digits.y_train[:300]
    checks = []

    class Checking(ab.Learner):
        def fit(self, Xf, yf, *, seed=0):
            if len(yf) > pool.n_labeled:                          # a CEAL round: compare before retraining
                extra = slice(pool.n_labeled, None)
                probs = self.predict_proba(Xf[extra])
                checks.append((np.array_equal(probs.argmax(1), yf[extra]),
                               float((-(probs * np.log(np.clip(probs, 1e-30, 1))).sum(1)).max())))
            return super().fit(Xf, yf, seed=seed)

    pool = ab.Pool(X, y)
    ab.run(pool, _learner(Checking), "entropy", initial=40, batch_size=20, rounds=3,
           test=(digits.X_test, digits.y_test), seed=1, ceal=dict(threshold=0.8, decay=0.2))
    assert checks and all(same for same, _ in checks)
    assert all(max_h < thr + 1e-6 for (_, max_h), thr in zip(checks, [0.8, 0.6, 0.4]))


def test_ceal_options():
    assert CEAL.coerce(True) == CEAL() and CEAL.coerce(None) is None and CEAL.coerce(False) is None
    assert CEAL(threshold=0.1, decay=0.04).threshold_at(1) == 0.1
    assert CEAL(threshold=0.1, decay=0.04).threshold_at(4) == 0.0            # floored
    with pytest.raises(ValueError, match="threshold"):
        CEAL(threshold=-1)
    with pytest.raises(ValueError, match="unknown CEAL"):
        CEAL.coerce({"thresh": 0.1})
    with pytest.raises(TypeError, match="ceal"):
        CEAL.coerce(0.1)


def test_selection_via_proxy(digits):
    X, y = digits.X_train[:300], digits.y_train[:300]
    pool = ab.Pool(X, y)
    learner, proxy = _learner(SpyLearner, width=32), _learner(SpyLearner, width=4, epochs=5)
    seen = []

    class Recording(Strategy):
        name = "recording-margin"
        needs = frozenset({"probs"})

        def _select(self, evidence, n, rng):
            assert evidence.learner is proxy
            seen.append(ab.strategies.get("margin").select(evidence, n, rng))
            return seen[-1]

    hist = ab.run(pool, learner, Recording(), initial=30, batch_size=15, rounds=3,
                  test=(digits.X_test, digits.y_test), seed=0, proxy=proxy)
    assert proxy.evidence_calls == 3 and learner.evidence_calls == 0
    cand_sizes = [300 - 30, 300 - 45, 300 - 60]
    assert [len(s) for s in seen] == [15, 15, 15] and all(s.max() < c for s, c in zip(seen, cand_sizes))
    assert len(learner.fits) == len(proxy.fits) == 4                       # both trained every round
    frame = hist.to_frame(details=True)
    assert frame["test_accuracy"].tolist() == [r.test_accuracy for r in hist.rounds]
    assert frame["proxy_test_accuracy"].notna().all() and frame["proxy_train_seconds"].notna().all()
    assert hist.options == {"proxy": "MLP"}
    with pytest.raises(ValueError, match="different"):
        ab.run(ab.Pool(X, y), learner, "margin", batch_size=5, rounds=1, test=(X, y), proxy=learner)
    with pytest.raises(ValueError, match="proxy"):
        ab.run(ab.Pool(X, y), learner, "margin", batch_size=5, rounds=1, test=(X, y),
               proxy=ab.Learner(MLP(64, 3), device="cpu"))
    with pytest.raises(TypeError, match="proxy"):
        ab.run(ab.Pool(X, y), learner, "margin", batch_size=5, rounds=1, test=(X, y), proxy="mlp")


def test_stateful_hooks_are_called_after_each_round(digits):
    X, y = digits.X_train[:200], digits.y_train[:200]
    pool = ab.Pool(X, y)
    learner = _learner()

    class Counting(Strategy):
        name = "counting"
        stateful = True

        def __init__(self):
            self.budget, self.feedback, self.selected = None, [], []

        def begin(self, *, rounds=None, budget=None):
            self.rounds, self.budget = rounds, budget

        def _select(self, evidence, n, rng):
            pick = rng.choice(evidence.n_candidates, size=n, replace=False)
            self.selected.append(evidence.candidate_ids[pick])
            return pick

        def update(self, feedback):
            assert isinstance(feedback, Feedback)
            self.feedback.append(feedback)
            np.testing.assert_array_equal(feedback.ids, pool.labeled_indices)
            np.testing.assert_array_equal(feedback.labels, y[feedback.ids])
            np.testing.assert_array_equal(feedback.predictions, learner.predict(X[feedback.ids]))

        def state_dict(self):
            return {"rounds": len(self.feedback)}

    strat = Counting()
    hist = ab.run(pool, learner, strat, initial=20, batch_size=10, rounds=3, test=(X, y), seed=0)
    assert (strat.rounds, strat.budget) == (3, 30)
    assert len(strat.feedback) == 4                        # after round 0 and each selection round
    assert [r.strategy_state for r in hist.rounds] == [{"rounds": i} for i in range(1, 5)]
    assert hist.strategy_state == {"rounds": 4}
    for sel, mine in zip(hist.selections[1:], strat.selected):
        np.testing.assert_array_equal(sel, mine)
    # stateless strategies: no feedback computed, empty state
    hist2 = ab.run(ab.Pool(X, y), learner, "margin", initial=20, batch_size=10, rounds=1, test=(X, y), seed=0)
    assert hist2.strategy_state == {} and all(r.strategy_state is None for r in hist2.rounds)
