"""Round-level checkpoints: a run killed part-way resumes and ends exactly as an uninterrupted run."""
import pickle

import numpy as np
import pandas as pd
import pytest

import activebatch as ab
import activebatch.loop.runner as loop_runner
from activebatch.learning.models import MLP
from activebatch.loop.checkpoint import CheckpointMismatchError, RunCheckpoint


class Killed(Exception):
    """Stands for the process dying in the middle of a round."""


@pytest.fixture(scope="module")
def digits():
    return ab.datasets.load("digits")


def _learner(data, dropout=0.0):
    return ab.Learner(MLP(data.n_features, 10, embedding_dim=32, dropout=dropout), lr=1e-2, device="cpu",
                      max_epochs=20, **({"mc_samples": 5} if dropout else {}))


def _run(data, strategy, checkpoint=None, pool=None, dropout=0.0, **kw):
    pool = pool if pool is not None else ab.Pool(data.X_train, data.y_train, name=data.name)
    opts = dict(initial=30, batch_size=15, rounds=4, test=(data.X_test, data.y_test), seed=7)
    opts.update(kw)
    return ab.run(pool, _learner(data, dropout), strategy, checkpoint=checkpoint, **opts)


def _kill_at_selection(monkeypatch, k):
    """Make the k-th selection of the next run raise (as if the process died there)."""
    calls = {"n": 0}
    real = loop_runner.select_round

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == k:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_runner, "select_round", dying)
    return calls


def _same_history(a, b):
    cols = ["round", "n_labeled", "test_accuracy", "train_epochs", "train_accuracy", "class_histogram",
            "balanced_accuracy", "macro_f1"]
    pd.testing.assert_frame_equal(a.to_frame(details=True)[cols], b.to_frame(details=True)[cols])
    for x, y in zip(a.selections, b.selections):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.rounds, b.rounds):
        if x.selected_scores is None:
            assert y.selected_scores is None
        else:
            np.testing.assert_array_equal(x.selected_scores, y.selected_scores)


@pytest.mark.parametrize("strategy, kw", [
    ("badge", {}),                                               # k-means++ draws from the selection stream
    ("albl", {}),                                                # a stateful strategy
    ("bald", {"dropout": 0.5}),                                  # MC-dropout evidence seeded by the fit
    ("batchbald", {"dropout": 0.5}),                             # configurations drawn from the stream
    ("margin", {"stopping": True, "ceal": True}),                # stopping rules' memory, CEAL pseudo-labels
])
def test_a_killed_run_resumes_to_the_uninterrupted_result(digits, tmp_path, monkeypatch, strategy, kw):
    clean = _run(digits, strategy, **kw)
    path = tmp_path / "run.ckpt"
    _kill_at_selection(monkeypatch, 3)       # dies selecting round 3: rounds 0-2 are saved
    with pytest.raises(Killed):
        _run(digits, strategy, checkpoint=path, **kw)
    saved = RunCheckpoint.load(path)
    assert [r.round for r in saved.history.rounds] == [0, 1, 2]
    monkeypatch.undo()
    resumed = _run(digits, strategy, checkpoint=path, **kw)    # a fresh pool and learner, as after a crash
    _same_history(clean, resumed)
    assert resumed.resumed_after == [2] and clean.resumed_after == []
    assert resumed.strategy_state == clean.strategy_state
    if kw.get("stopping"):
        a, b = clean.to_frame(details=True), resumed.to_frame(details=True)
        pd.testing.assert_frame_equal(a.filter(like="kappa"), b.filter(like="kappa"))
        pd.testing.assert_series_equal(a["n_pseudo_labeled"], b["n_pseudo_labeled"])


def test_resumes_twice_and_counts_the_time_of_every_execution(digits, tmp_path, monkeypatch):
    clean = _run(digits, "badge")
    path = tmp_path / "run.ckpt"
    _kill_at_selection(monkeypatch, 2)
    with pytest.raises(Killed):
        _run(digits, "badge", checkpoint=path)
    first = RunCheckpoint.load(path).seconds
    _kill_at_selection(monkeypatch, 2)       # the resumed run dies again, one round later
    with pytest.raises(Killed):
        _run(digits, "badge", checkpoint=path)
    assert RunCheckpoint.load(path).seconds > first
    monkeypatch.undo()
    resumed = _run(digits, "badge", checkpoint=path)
    _same_history(clean, resumed)
    assert resumed.resumed_after == [1, 2]
    assert resumed.seconds > RunCheckpoint.load(path).seconds - 1e-9 > first


def test_a_finished_checkpoint_returns_its_history_without_selecting(digits, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    done = _run(digits, "margin", checkpoint=path)
    calls = _kill_at_selection(monkeypatch, 1)
    again = _run(digits, "margin", checkpoint=path)
    assert calls["n"] == 0
    _same_history(done, again)


def test_the_pool_may_be_the_one_the_crash_left(digits, tmp_path, monkeypatch):
    """In the same process, the pool object already holds the saved rounds' labels: accepted."""
    clean = _run(digits, "badge")
    path = tmp_path / "run.ckpt"
    pool = ab.Pool(digits.X_train, digits.y_train, name=digits.name)
    _kill_at_selection(monkeypatch, 2)
    with pytest.raises(Killed):
        _run(digits, "badge", checkpoint=path, pool=pool)
    monkeypatch.undo()
    _same_history(clean, _run(digits, "badge", checkpoint=path, pool=pool))


def test_seed_none_resumes_with_the_entropy_it_drew(digits, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    _kill_at_selection(monkeypatch, 3)
    with pytest.raises(Killed):
        _run(digits, "badge", checkpoint=path, seed=None)
    entropy = RunCheckpoint.load(path).entropy
    monkeypatch.undo()
    resumed = _run(digits, "badge", checkpoint=path, seed=None)
    # the same run, uninterrupted, from the entropy it recorded
    _same_history(_run(digits, "badge", seed=entropy), resumed)


@pytest.mark.parametrize("change, field", [
    ({"seed": 8}, "seed"),
    ({"batch_size": 16}, "batch_size"),
    ({"rounds": 5}, "rounds"),
    ({"strategy": "entropy"}, "strategy"),
    ({"strategy_options": {"init": "random"}}, "strategy_options"),
    ({"stopping": True}, "stopping"),
])
def test_another_runs_checkpoint_is_refused_naming_what_differs(digits, tmp_path, change, field):
    path = tmp_path / "run.ckpt"
    _run(digits, "badge", checkpoint=path, rounds=1)
    kw = {"rounds": 1, **change}
    strategy = kw.pop("strategy", "badge")
    before = path.read_bytes()
    with pytest.raises(CheckpointMismatchError, match=rf"{field}: checkpoint"):
        _run(digits, strategy, checkpoint=path, **kw)
    assert path.read_bytes() == before        # the other run's checkpoint is left alone


def test_a_pool_with_other_labels_is_refused(digits, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    _kill_at_selection(monkeypatch, 2)
    with pytest.raises(Killed):
        _run(digits, "margin", checkpoint=path)
    monkeypatch.undo()
    pool = ab.Pool(digits.X_train, digits.y_train, name=digits.name)
    pool.label([0, 1, 2])
    with pytest.raises(ValueError, match="neither those the run .* started from"):
        _run(digits, "margin", checkpoint=path, pool=pool)
    assert pool.n_labeled == 3


def test_unreadable_or_foreign_files_are_refused(digits, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable run checkpoint"):
        _run(digits, "margin", checkpoint=bad)
    foreign = tmp_path / "foreign.ckpt"
    foreign.write_bytes(pickle.dumps({"some": "dict"}))
    with pytest.raises(ValueError, match="not a run checkpoint written by activebatch"):
        _run(digits, "margin", checkpoint=foreign)
    old = tmp_path / "old.ckpt"
    old.write_bytes(pickle.dumps({"magic": "activebatch-run-checkpoint", "version": 0, "state": None}))
    with pytest.raises(ValueError, match="format 0"):
        _run(digits, "margin", checkpoint=old)


def test_a_kill_while_writing_leaves_the_previous_checkpoint(digits, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    _run(digits, "margin", checkpoint=path, rounds=1)
    before = path.read_bytes()

    def dying_dump(*args, **kwargs):
        raise Killed

    monkeypatch.setattr("activebatch.loop.checkpoint.pickle.dump", dying_dump)
    with pytest.raises(Killed):
        RunCheckpoint.load(path).save(path)
    assert path.read_bytes() == before


def test_a_checkpoint_of_other_training_options_is_refused(digits, tmp_path):
    path = tmp_path / "run.ckpt"
    _run(digits, "margin", checkpoint=path, rounds=1)
    pool = ab.Pool(digits.X_train, digits.y_train, name=digits.name)
    learner = ab.Learner(MLP(digits.n_features, 10, embedding_dim=32), lr=1e-2, device="cpu", max_epochs=21)
    with pytest.raises(CheckpointMismatchError, match="training: checkpoint"):
        ab.run(pool, learner, "margin", initial=30, batch_size=15, rounds=1, test=(digits.X_test, digits.y_test),
               seed=7, checkpoint=path)


def test_an_unusable_checkpoint_place_fails_before_any_training(digits, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file, not a folder")
    fits = {"n": 0}
    real = ab.Learner.fit

    def counting(self, *args, **kwargs):
        fits["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ab.Learner, "fit", counting)
    with pytest.raises(OSError):
        _run(digits, "margin", checkpoint=tmp_path / "file" / "run.ckpt")
    assert fits["n"] == 0
