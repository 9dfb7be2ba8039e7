"""A workspace survives a command killed in the middle: nothing recorded is lost, it stays usable."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from activebatch.workspace import ModelConfig, Workspace, WorkspaceStore

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def state(folder):
    store = WorkspaceStore(folder)
    return (store.labels().to_dict("records"), store.label_events().to_dict("records"),
            store.rounds().drop(columns="options").to_dict("records"), store.snapshots()["snapshot_id"].tolist())


@pytest.fixture
def slow_ws(tmp_path):
    """A workspace whose model can never reach the training-accuracy target: identical rows carry
    different labels, so a query trains until its (huge) epoch cap, i.e. until it is killed."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[:60] = 0.5
    frame = pd.DataFrame(X, columns=list("pqrs"))
    frame.insert(0, "id", [f"i{k}" for k in range(200)])
    frame.to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"id": [f"i{k}" for k in range(60)], "label": ["a", "b", "c"] * 20}).to_csv(
        tmp_path / "seed.csv", index=False)
    ws = Workspace.create(tmp_path / "ws", tmp_path / "items.csv", ["a", "b", "c"], labels=tmp_path / "seed.csv",
                          model=ModelConfig(max_epochs=5, batch_size=8))
    ws.query(5)              # round 1 exists, with its batch and metrics
    return ws


def start_query(ws):
    cmd = [sys.executable, "-m", "activebatch.cli", "query", str(ws.folder), "-n", "5", "--max-epochs", "10000000",
           "--threads", "1"]
    # a shell that starts jobs in the background hands them SIGINT ignored, and Python then never
    # turns Ctrl-C into KeyboardInterrupt: the command gets the default disposition, as in a terminal
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    line = ""
    while "training" not in line:   # the query says when it starts training
        line = proc.stderr.readline()
        assert line or proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the query did not start training"
    time.sleep(0.5)
    assert proc.poll() is None, "the query ended before it could be interrupted"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_query_killed_while_training_leaves_the_store_intact(slow_ws, sig):
    before = state(slow_ws.folder)
    proc = start_query(slow_ws)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        # 130 from the command; occasionally the interpreter reports the death by SIGINT itself (-2)
        assert proc.returncode in (130, -signal.SIGINT)
        assert "interrupted; the workspace is unchanged by this command" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert WorkspaceStore(slow_ws.folder).integrity_check() == "ok"
    assert state(slow_ws.folder) == before
    # Still usable: the next query records round 2 and its batch avoids round 1's pending items.
    res = Workspace(slow_ws.folder).query(5)
    assert res.round == 2
    assert not set(res.item_ids) & set(slow_ws.batch(1)["item_id"])


def test_labels_committed_before_a_kill_are_kept(slow_ws):
    """An annotator process recording labels one by one is killed; every label it reported as
    recorded is in the store, and nothing is half-written."""
    batch = slow_ws.batch(1)["item_id"].tolist()
    script = textwrap.dedent(f"""
        import sys, time
        from activebatch.workspace import Workspace
        ws = Workspace({str(slow_ws.folder)!r})
        for i, item in enumerate({batch!r}):
            ws.label(item, "abc"[i % 3], annotator="proc")
            print(item, flush=True)
            time.sleep(0.05 if i < 2 else 30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    done = [proc.stdout.readline().strip() for _ in range(3)]
    proc.kill()
    proc.communicate(timeout=30)
    assert all(done), done
    store = WorkspaceStore(slow_ws.folder)
    assert store.integrity_check() == "ok"
    by_proc = store.labels().query("annotator == 'proc'")
    assert dict(zip(by_proc["item_id"], by_proc["label"])) == dict(zip(done, "abc"))
