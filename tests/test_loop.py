import numpy as np
import pandas as pd
import pytest

import activebatch as ab
from activebatch.learning.committee import Committee
from activebatch.learning.models import MLP
from conftest import SMALL_OPTIONS


@pytest.fixture(scope="module")
def digits():
    return ab.datasets.load("digits")


def _run(data, strategy, seed=0, rounds=3, batch=25, initial=40, **kw):
    pool = ab.Pool(data.X_train, data.y_train, name=data.name)
    learner = ab.Learner(MLP(data.n_features, 10, embedding_dim=32), lr=1e-2, device="cpu", max_epochs=30)
    needs = ab.strategies.strategy_class(strategy).needs if isinstance(strategy, str) else strategy.needs
    if learner.evidence(pool).missing(needs):
        # e.g. mc_probs: committee members stand in for stochastic forward passes
        learner = Committee(MLP(data.n_features, 10, embedding_dim=32), 3, lr=1e-2, device="cpu", max_epochs=30)
    hist = ab.run(pool, learner, strategy, initial=initial, batch_size=batch, rounds=rounds,
                  test=(data.X_test, data.y_test), seed=seed, **kw)
    return pool, hist


@pytest.mark.parametrize("strategy", ab.strategies.names())
def test_run_never_selects_a_labeled_item_and_grows_by_batch_size(digits, strategy):
    pool, hist = _run(digits, strategy, strategy_options=SMALL_OPTIONS.get(strategy))
    frame = hist.to_frame()
    assert frame["round"].tolist() == [0, 1, 2, 3]
    assert frame["n_labeled"].tolist() == [40, 65, 90, 115]
    seen = set()
    for sel in hist.selections:
        assert not seen & set(sel.tolist())
        seen |= set(sel.tolist())
    assert seen == set(pool.labeled_indices.tolist())
    for r, sel in zip(hist.rounds, hist.selections):
        assert sum(r.class_histogram) == len(sel)
        np.testing.assert_array_equal(np.bincount(digits.y_train[sel], minlength=10), r.class_histogram)


def test_same_seed_same_selections_and_curve(digits):
    _, h1 = _run(digits, "badge", seed=3)
    _, h2 = _run(digits, "badge", seed=3)
    for a, b in zip(h1.selections, h2.selections):
        np.testing.assert_array_equal(a, b)
    f1, f2 = h1.to_frame(), h2.to_frame()
    pd.testing.assert_series_equal(f1["test_accuracy"], f2["test_accuracy"])
    _, h3 = _run(digits, "badge", seed=4)
    assert not np.array_equal(h1.selections[0], h3.selections[0])


def test_frame_columns(digits):
    _, hist = _run(digits, "margin", rounds=1)
    frame = hist.to_frame()
    for col in ["dataset", "model", "batch_size", "strategy", "seed", "round", "n_labeled", "test_accuracy",
                "train_seconds", "select_seconds", "class_histogram"]:
        assert col in frame.columns
    row = frame.iloc[1]
    assert row["dataset"] == "digits" and row["model"] == "MLP" and row["strategy"] == "margin"
    assert row["batch_size"] == 25 and row["seed"] == 0
    assert 0 <= row["test_accuracy"] <= 1 and row["select_seconds"] >= 0
    assert frame.iloc[0]["select_seconds"] == 0


def test_already_labeled_pool_and_pool_exhaustion(digits):
    X, y = digits.X_train[:60], digits.y_train[:60]
    pool = ab.Pool(X, y)
    pool.label(np.arange(10))
    learner = ab.Learner(MLP(64, 10, embedding_dim=8), device="cpu", max_epochs=5)
    hist = ab.run(pool, learner, "entropy", initial=20, batch_size=15, rounds=5, test=(X, y), seed=0)
    ns = hist.to_frame()["n_labeled"].tolist()
    assert ns == [20, 35, 50, 60]  # 10 + 10 more initial; last round takes only the 10 left
    assert pool.n_labeled == 60


def test_bad_arguments(digits):
    pool = ab.Pool(digits.X_train, digits.y_train)
    learner = ab.Learner(MLP(64, 10, embedding_dim=8), device="cpu")
    test = (digits.X_test, digits.y_test)
    with pytest.raises(ValueError, match="unknown strategy"):
        ab.run(pool, learner, "nope", batch_size=5, rounds=1, test=test)
    with pytest.raises(ValueError, match="batch_size"):
        ab.run(pool, learner, "random", batch_size=0, rounds=1, test=test)
    with pytest.raises(ValueError, match="larger than the pool"):
        ab.run(pool, learner, "random", initial=10**6, batch_size=5, rounds=1, test=test)
    with pytest.raises(ValueError, match="classes"):
        ab.run(pool, ab.Learner(MLP(64, 3), device="cpu"), "random", batch_size=5, rounds=1, test=test)
    assert pool.n_labeled == 0  # nothing was labeled by the refused calls


def test_class_entropy():
    from activebatch.loop import class_entropy

    assert class_entropy([5, 0, 0]) == 0.0
    assert class_entropy([0, 0]) == 0.0
    assert np.isclose(class_entropy([2, 2, 2, 2]), np.log(4))
    assert np.isclose(class_entropy([1, 3]), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
