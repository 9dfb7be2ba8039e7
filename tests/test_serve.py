"""The labelling page's HTTP API: labels go to the store, errors are clear, annotators don't collide."""
import contextlib
import threading
import time

import httpx
import pytest

from activebatch.workspace import ModelConfig, Workspace
from activebatch.workspace.server import LabelServer
from workspace_fixtures import DIGITS, TAB_CLASSES, make_images, make_table, write_labels


@pytest.fixture
def tab(tmp_path):
    items, truth = make_table(tmp_path)
    write_labels(tmp_path / "eval.csv", list(truth)[-20:], truth)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, eval_labels=tmp_path / "eval.csv",
                          model=ModelConfig(max_epochs=30))
    return ws, truth


@contextlib.contextmanager
def client_for(ws):
    """An HTTP client of the labelling server of ``ws``, running on a free local port."""
    server = LabelServer(ws.folder, port=0).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        server.stop()


def post(client, path, **body):
    return client.post(path, json=body)


def test_page_and_its_files_are_served(tab):
    ws, _ = tab
    with client_for(ws) as c:
        page = c.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text and "train-btn" in page.text
        for name in ("app.js", "style.css"):
            assert c.get(f"/static/{name}").status_code == 200
        state = c.get("/api/state").json()
        assert state["classes"] == TAB_CLASSES and state["kind"] == "tabular"
        assert state["batch"] == {"round": 0, "total": 0, "labelled": 0}
        assert c.get("/api/next", params={"annotator": "ann"}).json()["item"] is None


def test_label_skip_undo(tab):
    ws, truth = tab
    ws.query(6)
    with client_for(ws) as c:
        first = c.get("/api/next", params={"annotator": "alice"}).json()
        item = first["item"]
        assert first["remaining"] == 6 and item["rank"] == 0 and item["row"]["colour"] in ("red", "blue")
        r = post(c, "/api/label", id=item["id"], label=truth[item["id"]], annotator="alice", round=1)
        assert r.status_code == 200 and r.json() == {"status": "recorded"}
        assert post(c, "/api/label", id=item["id"], label=truth[item["id"]], annotator="alice").json() == \
            {"status": "unchanged"}
        assert c.get("/api/state").json()["batch"] == {"round": 1, "total": 6, "labelled": 1}
        nxt = c.get("/api/next", params={"annotator": "alice"}).json()["item"]
        assert nxt["rank"] == 1
        skipped = c.get("/api/next", params=[("annotator", "alice"), ("skip", nxt["id"])]).json()
        assert skipped["item"]["rank"] == 2 and skipped["skipped"] == 1
        assert post(c, "/api/undo", id=item["id"], annotator="alice").json() == {"removed": truth[item["id"]]}
        again = c.get("/api/next", params={"annotator": "alice", "prefer": item["id"]}).json()["item"]
        assert again["id"] == item["id"] and again["label"] is None
    labels = ws.labels().query("split == 'train'")
    assert labels.empty
    assert ws.store.label_events().query("split == 'train' or action == 'remove'")["action"].tolist() == \
        ["label", "remove"]


def test_bad_requests_get_clear_errors_and_change_nothing(tab):
    ws, truth = tab
    ids = ws.query(4).item_ids
    outside = next(i for i in truth if i not in ids and i not in set(ws.labels()["item_id"]))
    with client_for(ws) as c:
        assert post(c, "/api/label", id=ids[0], label=truth[ids[0]], annotator="bob").status_code == 200
        before = ws.store.label_events().to_dict("records")
        cases = [
            (dict(id=ids[1], label="zebra", annotator="ann"), 400, "unknown class(es) 'zebra'"),
            (dict(id=outside, label="a", annotator="ann"), 404, "is not in any batch"),
            (dict(id="no-such-id", label="a", annotator="ann"), 400, "not items of this workspace"),
            (dict(id=ids[0], label=next(k for k in TAB_CLASSES if k != truth[ids[0]]), annotator="ann"), 409,
             "already has label"),
            (dict(id=ids[1], label="a"), 400, "give an annotator name"),
            (dict(id=ids[1], label="a", annotator="ann", round="one"), 400, "round must be an integer"),
            (dict(id=7, label="a", annotator="ann"), 400, "as strings"),
        ]
        for body, code, message in cases:
            r = c.post("/api/label", json=body)
            assert r.status_code == code and message in r.json()["error"], (body, r.text)
        r = post(c, "/api/undo", id=ids[0], annotator="eve")
        assert r.status_code == 409 and "only bob can undo it" in r.json()["error"]
        # a form, as another site could send
        r = c.post("/api/label", data={"id": ids[1], "label": "a", "annotator": "ann"})
        assert r.status_code == 415
        r = c.post("/api/label", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        assert c.get("/api/state", headers={"Host": "attacker.example"}).status_code == 400
        assert c.get("/api/image/0").status_code == 404
        r = post(c, "/api/query", n=3, strategy="nope")
        assert r.status_code == 400 and "unknown strategy 'nope'" in r.json()["error"]
        assert ws.store.label_events().to_dict("records") == before


def test_train_and_fetch_the_next_batch(tab):
    ws, truth = tab
    ws.query(6)
    with client_for(ws) as c:
        for i in ws.batch()["item_id"]:
            assert post(c, "/api/label", id=i, label=truth[i], annotator="ann").status_code == 200
        assert post(c, "/api/query", n=5, strategy="badge").json() == {"started": True}
        deadline = time.monotonic() + 60
        while (state := c.get("/api/state").json())["training"]["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["training"]["error"] is None and "round 2: badge chose 5" in state["training"]["message"]
        assert state["batch"] == {"round": 2, "total": 5, "labelled": 0}
        item = c.get("/api/next", params={"annotator": "ann"}).json()["item"]
        assert item["round"] == 2 and item["predicted"] in TAB_CLASSES and 0 < item["confidence"] <= 1


def test_image_items_are_served(tmp_path):
    folder, truth = make_images(tmp_path, n=12)
    ws = Workspace.create(tmp_path / "ws", folder, DIGITS)
    ws.query(3)
    with client_for(ws) as c:
        item = c.get("/api/next", params={"annotator": "ann"}).json()["item"]
        r = c.get(item["image"])
        assert r.status_code == 200 and r.content == (folder / item["id"]).read_bytes()
        assert r.headers["content-type"] == "image/png"


def test_concurrent_annotators_neither_lose_nor_duplicate_labels(tab):
    """Four annotators label one batch through a real server at the same time."""
    ws, truth = tab
    batch = ws.query(40).item_ids
    server = LabelServer(ws.folder, port=0).start()
    done: dict[str, list[str]] = {}
    errors: list[str] = []

    def annotate(name):
        mine = []
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while True:
                item = c.get("/api/next", params={"annotator": name}).json()["item"]
                if item is None:
                    break
                r = c.post("/api/label", json={"id": item["id"], "label": truth[item["id"]], "annotator": name})
                if r.status_code != 200 or r.json()["status"] != "recorded":
                    errors.append(r.text)
                mine.append(item["id"])
        done[name] = mine

    try:
        threads = [threading.Thread(target=annotate, args=(f"ann{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        server.stop()
    assert not errors
    everything = [i for ids in done.values() for i in ids]
    assert sorted(everything) == sorted(batch)          # every item once, none twice
    assert sum(1 for ids in done.values() if ids) >= 2   # the work was shared
    labels = ws.labels().query("split == 'train'")
    assert sorted(labels["item_id"]) == sorted(batch)
    assert all(labels["label"] == [truth[i] for i in labels["item_id"]])
    events = ws.store.label_events().query("split == 'train'")
    assert len(events) == 40 and set(events["action"]) == {"label"}
    who = dict(zip(labels["item_id"], labels["annotator"]))
    assert all(who[i] == name for name, ids in done.items() for i in ids)


def test_two_annotators_racing_for_one_item(tab):
    """Two people submit different labels for the same item at the same instant: one wins, the
    other is told, and the item has exactly one label event."""
    ws, truth = tab
    item = ws.query(3).item_ids[0]
    server = LabelServer(ws.folder, port=0).start()
    gate = threading.Barrier(2)
    codes = {}

    def submit(name, label):
        with httpx.Client(base_url=server.url, timeout=30) as c:
            gate.wait()
            codes[name] = c.post("/api/label", json={"id": item, "label": label, "annotator": name}).status_code

    try:
        threads = [threading.Thread(target=submit, args=("x", "a")), threading.Thread(target=submit, args=("y", "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.stop()
    assert sorted(codes.values()) == [200, 409]
    winner = next(k for k, v in codes.items() if v == 200)
    labels = ws.labels().set_index("item_id")
    assert labels.loc[item, "annotator"] == winner and labels.loc[item, "label"] == {"x": "a", "y": "b"}[winner]
    assert len(ws.store.label_events().query("item_id == @item")) == 1


def test_serve_command_runs_until_ctrl_c(tab):
    import os
    import signal
    import subprocess
    import sys

    ws, _ = tab
    ws.query(3)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "activebatch.cli", "serve", str(ws.folder), "--port", "0",
                             "--max-body", "2000"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        while not (seen and "labelling page for" in seen[-1]):   # skip any warnings printed before
            seen.append(proc.stderr.readline())
            assert seen[-1], "".join(seen) + proc.stderr.read()
        line = seen[-1]
        assert "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        state = httpx.get(url + "api/state", timeout=30).json()
        assert state["batch"] == {"round": 1, "total": 3, "labelled": 0}
        big = httpx.post(url + "api/label", json={"id": "x" * 3000, "label": "a", "annotator": "a"}, timeout=30)
        assert big.status_code == 413 and "larger than 2000 bytes" in big.json()["error"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_two_browsers_with_the_same_name_are_shown_different_items(tab):
    """Items are held for a browser (its cookie), not for a name: two people who leave the same
    name are still given different items."""
    ws, truth = tab
    ws.query(4)
    server = LabelServer(ws.folder, port=0).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as a, httpx.Client(base_url=server.url, timeout=30) as b:
            for c in (a, b):
                cookie = c.get("/").headers["set-cookie"]
                assert cookie.startswith("activebatch_browser=") and "httponly" in cookie.lower()
                assert "samesite=strict" in cookie.lower()
            assert a.cookies["activebatch_browser"] != b.cookies["activebatch_browser"]
            assert "set-cookie" not in a.get("/").headers          # a reload keeps the browser's id
            name = {"annotator": "annotator"}
            first = a.get("/api/next", params=name).json()
            second = b.get("/api/next", params=name).json()
            assert first["item"]["id"] != second["item"]["id"] and second["claimed_by_others"] == 1
            assert a.get("/api/next", params=name).json()["item"]["id"] == first["item"]["id"]   # still its own
            # A client without cookies is told apart by its name; with the same name as the browsers it
            # still does not get their items.
            with httpx.Client(base_url=server.url, timeout=30) as plain:
                third = plain.get("/api/next", params=name).json()
                assert third["item"]["id"] not in (first["item"]["id"], second["item"]["id"])
                assert third["claimed_by_others"] == 2
            # A forged cookie is ignored (the client counts as cookie-less).
            with httpx.Client(base_url=server.url, timeout=30, cookies={"activebatch_browser": "x"}) as forged:
                assert forged.get("/api/next", params=name).json()["item"]["id"] == third["item"]["id"]
            item = first["item"]["id"]
            assert a.post("/api/label", json={"id": item, "label": truth[item], "annotator": "annotator"}).json() == \
                {"status": "recorded"}
            assert b.get("/api/next", params=name).json()["item"]["id"] == second["item"]["id"]
    finally:
        server.stop()
