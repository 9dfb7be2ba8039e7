import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from activebatch.experiments.store import ResultsStore


def _rows(run_id, n=3):
    d, m, b, s, seed = run_id.split("|")
    return [dict(dataset=d, model=m, batch_size=int(b), strategy=s, seed=int(seed), round=r, n_labeled=10 + r,
                 test_accuracy=0.5 + r / 100, train_seconds=0.1, select_seconds=0.01, class_histogram=[r, 1],
                 class_entropy=0.3, train_epochs=3, train_accuracy=1.0) for r in range(n)]


def test_record_and_read_back(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.path == tmp_path / "results.sqlite"
    assert store.record_run("d|mlp|10|random|0", _rows("d|mlp|10|random|0"), seconds=1.5)
    assert not store.record_run("d|mlp|10|random|0", _rows("d|mlp|10|random|0"), seconds=1.5)  # no duplicate
    frame = store.frame()
    assert len(frame) == 3
    assert frame["class_histogram"].tolist() == [[0, 1], [1, 1], [2, 1]]
    assert store.completed() == {"d|mlp|10|random|0"}
    runs = store.runs()
    assert runs.loc[0, "n_rounds"] == 3 and runs.loc[0, "seconds"] == 1.5
    store.set_meta("x", {"a": [1, 2]})
    assert ResultsStore(tmp_path).get_meta("x") == {"a": [1, 2]}


def test_failed_write_leaves_nothing(tmp_path):
    store = ResultsStore(tmp_path)
    bad = _rows("d|mlp|10|random|1")
    bad[2] = dict(bad[2], test_accuracy=None)  # NOT NULL violation on the last round
    with pytest.raises(sqlite3.IntegrityError):
        store.record_run("d|mlp|10|random|1", bad, seconds=1.0)
    assert store.completed() == set()
    assert store.frame().empty
    store.record_failure("d|mlp|10|random|1", "Traceback ...")
    assert len(store.failures()) == 1


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="activebatch bench"):
        ResultsStore(tmp_path / "nothing", create=False)


def _writer(path, ids):
    store = ResultsStore(path)
    for rid in ids:
        store.record_run(rid, _rows(rid), seconds=0.1)


def test_concurrent_writers_record_every_run_exactly_once(tmp_path):
    ids = [f"d|mlp|10|s{i}|{j}" for i in range(5) for j in range(6)]
    ctx = mp.get_context("spawn")
    # four processes over overlapping halves of the runs
    chunks = [ids[:20], ids[10:], ids[::2], ids[1::2]]
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), c)) for c in chunks]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ResultsStore(tmp_path)
    assert store.completed() == set(ids)
    frame = store.frame()
    assert len(frame) == 3 * len(ids)
    assert not frame.duplicated(["dataset", "model", "batch_size", "strategy", "seed", "round"]).any()


def test_store_from_an_earlier_version_gains_the_metric_columns(tmp_path):
    import sqlite3 as sql

    path = tmp_path / "results.sqlite"
    con = sql.connect(path)   # the rounds table as the first versions wrote it
    con.executescript("""
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, dataset TEXT NOT NULL, model TEXT NOT NULL,
            batch_size INTEGER NOT NULL, strategy TEXT NOT NULL, seed INTEGER NOT NULL, n_rounds INTEGER NOT NULL,
            seconds REAL NOT NULL, finished_at TEXT NOT NULL, host TEXT NOT NULL);
        CREATE TABLE rounds (run_id TEXT NOT NULL, dataset TEXT NOT NULL, model TEXT NOT NULL,
            batch_size INTEGER NOT NULL, strategy TEXT NOT NULL, seed INTEGER NOT NULL, round INTEGER NOT NULL,
            n_labeled INTEGER NOT NULL, test_accuracy REAL NOT NULL, train_seconds REAL NOT NULL,
            select_seconds REAL NOT NULL, class_histogram TEXT NOT NULL, class_entropy REAL NOT NULL,
            train_epochs INTEGER NOT NULL, train_accuracy REAL NOT NULL, PRIMARY KEY (run_id, round));
        INSERT INTO runs VALUES ('d|mlp|10|random|0', 'd', 'mlp', 10, 'random', 0, 1, 1.0, 'now', 'h');
        INSERT INTO rounds VALUES ('d|mlp|10|random|0', 'd', 'mlp', 10, 'random', 0, 0, 10, 0.5, 0.1, 0.01,
            '[1, 1]', 0.7, 3, 1.0);
    """)
    con.commit()
    con.close()
    store = ResultsStore(tmp_path)
    rows = [dict(r, balanced_accuracy=0.4, macro_f1=0.3) for r in _rows("d|mlp|10|random|1", n=1)]
    assert store.record_run("d|mlp|10|random|1", rows, seconds=1.0)
    frame = store.frame()
    assert frame["test_accuracy"].tolist() == [0.5, 0.5]
    assert np.isnan(frame.loc[0, "balanced_accuracy"]) and frame.loc[1, "balanced_accuracy"] == 0.4
    assert frame["macro_f1"].dtype == float and frame.loc[1, "macro_f1"] == 0.3
