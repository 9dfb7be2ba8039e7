"""End to end against a real Label Studio: exported tasks, the ML backend, annotations, predictions.

Label Studio runs from its own virtual environment, ``.venv-labelstudio`` (made by
``scripts/install_label_studio.sh``; ``.ci/run`` makes it), so its pinned dependencies never meet
the project's. The test starts ``label-studio start`` on the loopback with a fresh SQLite
database in a temporary folder and a user whose API token it sets, starts ``activebatch
ml-backend`` on another loopback port, and drives Label Studio with ``label-studio-sdk`` from that
environment's Python (``tests/label_studio_driver.py``): one project, the four tasks of the first
batch, one corrected and one deleted annotation. It then checks that the labels reached the
workspace, that the next batch was chosen and imported into the project, and that Label Studio
holds the backend's predictions and scores for every task.
"""
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from activebatch.workspace import ModelConfig, Workspace
from workspace_fixtures import TAB_CLASSES, make_table

ROOT = Path(__file__).resolve().parents[1]
LS_VENV = ROOT / ".venv-labelstudio"
LS_BIN = LS_VENV / "bin" / "label-studio"
LS_PYTHON = LS_VENV / "bin" / "python"
DRIVER = Path(__file__).with_name("label_studio_driver.py")

pytestmark = pytest.mark.skipif(
    not (LS_BIN.exists() and LS_PYTHON.exists()),
    reason=f"Label Studio is not installed in {LS_VENV} (its own virtual environment): run "
           "scripts/install_label_studio.sh to run this end-to-end test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} from {proc.args} within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)   # its own process group: the server and its children
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


@pytest.fixture
def label_studio(tmp_path):
    """A fresh Label Studio on the loopback; yields (url, API token)."""
    data = tmp_path / "label-studio"
    data.mkdir()
    token = secrets.token_hex(20)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_USERNAME": "annotator@example.org", "LABEL_STUDIO_PASSWORD": secrets.token_hex(12),
        "LABEL_STUDIO_USER_TOKEN": token,
        # legacy tokens: the one set above, and the project owner's that Label Studio sends the backend
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        # the backend, its webhook and Label Studio itself all live on the loopback
        "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false",
        "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
    })
    log = tmp_path / "label-studio.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port",
                                 str(_free_port()), "--data-dir", str(data), "--enable-legacy-api-token"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        # Label Studio takes another port when the one given is busy: read the one it serves on.
        m = _wait_for(log, r"Starting development server at (http://127\.0\.0\.1:\d+)/", proc, 300)
        url = m.group(1)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url, token
    finally:
        _stop(proc)


def test_label_studio_end_to_end(tmp_path, label_studio):
    ls_url, token = label_studio
    items, _ = make_table(tmp_path, n=40)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=20))
    first = ws.query(4).item_ids
    # Labels for the first batch: two classes at least, so a model can be trained.
    labels = dict(zip(first, ["a", "b", "c", "a"]))
    cli = [sys.executable, "-m", "activebatch.cli"]
    subprocess.run(cli + ["export", str(ws.folder), "--out", str(tmp_path / "batch.json")], check=True,
                   capture_output=True, timeout=120)

    log = tmp_path / "backend.log"
    with open(log, "wb") as out:
        backend = subprocess.Popen(cli + ["ml-backend", str(ws.folder), "--port", "0"], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        backend_url = _wait_for(log, r" at (http://127\.0\.0\.1:\d+)", backend, 120).group(1)
        args = {"label_studio": ls_url, "token": token, "backend": backend_url, "timeout": 240,
                "tasks": str(tmp_path / "batch.json"), "config": str(tmp_path / "batch.label_config.xml"),
                "labels": labels, "wrong": "b"}
        run = subprocess.run([str(LS_PYTHON), str(DRIVER), json.dumps(args)], capture_output=True, text=True,
                             timeout=600, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        assert run.returncode == 0, run.stderr[-4000:] + "\n" + log.read_text()[-2000:]
        report = json.loads(run.stdout.strip().splitlines()[-1])
        with httpx.Client(base_url=backend_url, timeout=60) as c:
            version = c.get("/health").json()["model_version"]
            after = report["after"]
            direct = c.post("/predict", json={"tasks": [{"data": {"activebatch_id": t["item"]}} for t in after],
                                              "label_config": (tmp_path / "batch.label_config.xml").read_text()})
    finally:
        _stop(backend)

    # Connected, and no predictions while nothing was labelled.
    assert report["ml_state"] == "CO"
    assert [t["item"] for t in report["before"]] == first and all(not t["predictions"] for t in report["before"])

    # Every annotation reached the workspace, under the Label Studio user; the correction relabelled,
    # the deletion withdrew the label until it was given again.
    lab = ws.labels()
    assert dict(zip(lab["item_id"], lab["label"])) == labels
    assert set(lab["annotator"]) == {"labelstudio-user-1"} and set(lab["source"]) == {"label-studio"}
    events = ws.store.label_events()
    assert events.query("item_id == @first[0]")["action"].tolist() == ["label", "relabel"]
    assert events.query("item_id == @first[1]")["action"].tolist() == ["label", "remove", "label"]

    # The completed batch retrained the model and chose the next batch, which is now in Label Studio.
    health = report["health"]
    assert health["training"]["error"] is None and health["label_studio"]["last_push"]["tasks"] == 4
    second = ws.batch(2)["item_id"].tolist()
    assert len(second) == 4 and not set(second) & set(first)
    assert [t["item"] for t in after] == first + second
    assert [t["round"] for t in after] == [1] * 4 + [2] * 4

    # Label Studio holds the backend's prediction for every task: its class and its score.
    assert version == health["model_version"] and version.startswith("activebatch-round2-4labels-")
    expected = direct.json()["results"]
    for t, exp in zip(after, expected):
        (p,) = t["predictions"]
        assert p["model_version"] == version
        assert p["score"] == pytest.approx(exp["score"]) and 0 <= p["score"] <= 1
        assert p["result"] == exp["result"]
        assert p["result"][0]["from_name"] == "label" and p["result"][0]["value"]["choices"][0] in TAB_CLASSES
    # ... and orders the tasks by it, the most uncertain (lowest score) first: in the Data Manager, and
    # in the labelling stream under uncertainty sampling, which offers the unlabelled task scored lowest.
    scores = {t["id"]: t["predictions"][0]["score"] for t in after}
    assert sorted(report["by_score"]) == sorted(scores)
    assert np.all(np.diff([scores[i] for i in report["by_score"]]) >= 0)
    unlabelled = [t["id"] for t in after if t["round"] == 2]
    assert report["next"] == min(unlabelled, key=scores.get)
