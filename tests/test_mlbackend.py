"""The Label Studio ML backend's endpoints, driven over HTTP with bodies shaped as Label Studio 1.23
sends them (captured from a real instance: /setup, /predict, and the webhook events)."""
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from activebatch.workspace import ModelConfig, Workspace
from activebatch.workspace.formats import label_config
from activebatch.workspace.mlbackend import (
    UNTRAINED,
    VOTES_NAME,
    LabelStudioClient,
    MLBackendServer,
    MLBackendService,
    parse_label_config,
)
from workspace_fixtures import TAB_CLASSES, make_table

PROJECT = 7
CONFIG = label_config("tabular", TAB_CLASSES)


@pytest.fixture
def tab(tmp_path):
    """A tabular workspace whose first batch (4 items, drawn at random) is out for labelling."""
    items, truth = make_table(tmp_path, n=60)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=20))
    batch = ws.query(4).item_ids
    return ws, batch


@contextlib.contextmanager
def backend(ws, **options):
    server = MLBackendServer(ws.folder, port=0, **options).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client, server.service
    finally:
        server.stop()


def project(config=CONFIG):
    """The ``project`` object of Label Studio's webhook payloads (a subset of its many fields)."""
    return {"id": PROJECT, "title": "activebatch", "label_config": config, "task_number": 4,
            "finished_task_number": 0, "model_version": "", "sampling": "Sequential sampling"}


def task(item, task_id):
    return {"id": task_id, "data": {"activebatch_id": item, "activebatch_round": 1}, "meta": {},
            "created_at": "2026-01-02T09:00:00.000000Z", "updated_at": "2026-01-02T09:00:00.000000Z",
            "is_labeled": True, "overlap": 1, "inner_id": task_id, "total_annotations": 1,
            "cancelled_annotations": 0, "total_predictions": 0, "project": PROJECT, "updated_by": 1,
            "file_upload": None, "comment_authors": []}


def annotated(action, ann_id, item, label, *, task_id=None, user=1, at="2026-01-02T10:00:00.000000Z",
              cancelled=False, from_name="label", config=CONFIG):
    """An ANNOTATION_CREATED / ANNOTATION_UPDATED event as Label Studio posts it to the webhook."""
    task_id = task_id if task_id is not None else 100 + ann_id
    result = [] if label is None else [{"id": "r1", "from_name": from_name, "to_name": "row", "type": "choices",
                                        "origin": "manual", "value": {"choices": [label]}}]
    return {"action": action, "annotation": {
        "id": ann_id, "result": result, "was_cancelled": cancelled, "ground_truth": False,
        "created_at": "2026-01-02T09:30:00.000000Z", "updated_at": at, "draft_created_at": None, "lead_time": 3.2,
        "prediction": {}, "result_count": len(result), "unique_id": f"u-{ann_id}", "import_id": None,
        "last_action": None, "bulk_created": False, "task": task_id, "project": PROJECT, "completed_by": user,
        "updated_by": user, "parent_prediction": None, "parent_annotation": None, "last_created_by": None},
        "project": project(config), "task": task(item, task_id)}


def deleted(*ann_ids):
    return {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": a} for a in ann_ids], "project": project()}


def setup_body(schema=CONFIG, **extra):
    return {"project": f"{PROJECT}.1796057055", "schema": schema, "hostname": "http://localhost:8080",
            "access_token": "abcdef123456", "extra_params": None, **extra}


def predict_body(items, config=CONFIG):
    return {"tasks": [{"id": 100 + k, "data": {"activebatch_id": i}, "meta": {}, "annotations": [],
                       "predictions": [], "project": PROJECT} for k, i in enumerate(items)],
            "project": f"{PROJECT}.1796057055", "label_config": config,
            "params": {"login": None, "password": None, "context": None}}


def current(ws):
    """item -> (label, annotator) of the training labels."""
    lab = ws.labels()
    return {i: (c, a) for i, c, a in zip(lab["item_id"], lab["label"], lab["annotator"])}


# Health and setup -----------------------------------------------------------------------------------
def test_health_and_setup(tab):
    ws, batch = tab
    with backend(ws) as (c, service):
        h = c.get("/health").json()
        assert h["status"] == "UP" and h["model_version"] == UNTRAINED and h["model"] is None
        assert h["batch"] == {"round": 1, "total": 4, "labelled": 0}
        # after a random round the next batches are BADGE's, of the last round's size
        assert h["next_query"] == {"strategy": "badge", "n": 4} and h["classes"] == TAB_CLASSES
        assert c.get("/").json()["status"] == "UP"
        # when to stop: the stopping rules, as `activebatch status` reports them
        assert set(h["stopping"]["rules"]) >= {"stabilizing_predictions", "classification_change"}
        r = c.post("/setup", json=setup_body())
        assert r.status_code == 200 and r.json() == {"model_version": UNTRAINED}
        assert c.get("/health").json()["label_studio"]["project"] == PROJECT
        assert service.connection["token"] == "abcdef123456"
        # The interface must offer every class; the answer names the missing one.
        lacking = CONFIG.replace('    <Choice value="c"/>\n', "")
        r = c.post("/setup", json=setup_body(lacking))
        assert r.status_code == 400 and "'c'" in r.json()["error"] and "Choices name='label'" in r.json()["error"]
        for body, fragment in [({"project": [1]}, "project is a list"), ({"project": "x.y"}, "'<id>.<timestamp>'"),
                               (setup_body(access_token=5), "access_token"), (setup_body("<View"), "not valid XML")]:
            r = c.post("/setup", json=body)
            assert r.status_code == 400 and fragment in r.json()["error"], (body, r.text)
        assert c.post("/setup", content=b"[1, 2]", headers={"Content-Type": "application/json"}).status_code == 400
        assert c.post("/setup", content=b"project=1", headers={"Content-Type": "text/plain"}).status_code == 415
        assert c.get("/predict").status_code == 405


def test_bad_options_fail_when_the_backend_starts(tab):
    ws, _ = tab
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        MLBackendService(ws.folder, strategy="nope")
    with pytest.raises(TypeError, match="unknown option.*bogus"):
        MLBackendService(ws.folder, options={"bogus": 1})   # for the last round's strategy (badge)
    with pytest.raises(ValueError, match="conflicts must be one of"):
        MLBackendService(ws.folder, conflicts="vote")
    with pytest.raises(ValueError, match="score must be one of"):
        MLBackendService(ws.folder, score="entropy")


def test_parse_label_config():
    classes = ["cat", "dog"]
    xml = ('<View><Image name="img" value="$image"/><Choices name="animal" toName="img" choice="single">'
           '<Choice value="Cat" alias="cat"/><Choice value="dog"/></Choices></View>')
    t = parse_label_config(xml, classes)
    assert (t.from_name, t.to_name) == ("animal", "img")
    assert t.to_value == {"cat": "cat", "dog": "dog"} and t.to_class == {"cat": "cat", "dog": "dog"}
    # a Choice matched by its value; results carry the alias when there is one
    t = parse_label_config(xml.replace('alias="cat"', 'alias="c1"').replace('value="Cat"', 'value="cat"'), classes)
    assert t.to_value["cat"] == "c1" and t.to_class["c1"] == "cat"
    two = xml.replace("</View>", '<Choices name="label" toName="img"><Choice value="cat"/><Choice value="dog"/>'
                                 '</Choices></View>')
    assert parse_label_config(two, classes).from_name == "label"           # several: the exported name
    assert parse_label_config(two, classes, "animal").from_name == "animal"
    with pytest.raises(ValueError, match="no <Choices name='x'>"):
        parse_label_config(two, classes, "x")
    with pytest.raises(ValueError, match="2 \\('animal', 'other'\\)"):
        parse_label_config(two.replace('name="label"', 'name="other"'), classes)
    with pytest.raises(ValueError, match="has none"):
        parse_label_config("<View/>", classes)
    with pytest.raises(ValueError, match="'bird'"):
        parse_label_config(xml, classes + ["bird"])


# Predictions ------------------------------------------------------------------------------------------
def test_predict_without_labels_is_empty_and_malformed_requests_get_4xx(tab):
    ws, batch = tab
    with backend(ws) as (c, _):
        r = c.post("/predict", json=predict_body(batch))
        assert r.status_code == 200 and r.json() == {"results": [], "model_version": UNTRAINED}
        assert c.post("/predict", json=predict_body([])).json()["results"] == []
        bad = [
            ({"tasks": {"id": 1}}, 400, "'tasks' is an object"),
            ({"tasks": [5]}, 400, "task at index 0 is the number 5"),
            ({"tasks": [{"id": 3, "data": "x"}]}, 400, "task 3 (index 0) has 'data' the string 'x'"),
            ({"tasks": [{"id": 3, "data": {"image": "a.png"}}]}, 400, "data.activebatch_id null"),
            ({"tasks": [{"id": 3, "data": {"activebatch_id": True}}]}, 400, "data.activebatch_id true"),
            (predict_body(["nope"]), 404, "'nope'"),
            (predict_body(batch, config="<View><Choices"), 400, "not valid XML"),
            (predict_body(batch, config=CONFIG.replace('value="b"', 'value="B"')), 400, "'b'"),
            (predict_body(batch, config=7), 400, "label_config is the number 7"),
        ]
        for body, status, fragment in bad:
            r = c.post("/predict", json=body)
            assert r.status_code == status and fragment in r.json()["error"], (body, r.text)


def _label_batch(c, batch, labels, first_id=1):
    out = []
    for k, (item, label) in enumerate(zip(batch, labels)):
        r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", first_id + k, item, label))
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def test_completed_batch_retrains_chooses_the_next_batch_and_predicts(tab):
    ws, batch = tab
    with backend(ws) as (c, service):
        assert c.post("/setup", json=setup_body()).json()["model_version"] == UNTRAINED
        answers = _label_batch(c, batch, ["a", "b", "a", "b"])
        assert [a["training"] for a in answers] == [None, None, None, "started"]
        status = service.wait(120)
        assert status["error"] is None and status["result"]["round"] == 2, status
        rounds = ws.store.rounds()
        assert rounds["strategy"].tolist() == ["random", "badge"] and rounds["n"].tolist() == [4, 4]
        nxt = status["result"]["items"]
        assert len(nxt) == 4 and not set(nxt) & set(batch)
        version = c.post("/setup", json=setup_body()).json()["model_version"]
        assert version.startswith("activebatch-round2-4labels-") and version == service.model.version
        # The next batch's predictions: the model's class in the project's Choices tag, the confidence as score.
        config = CONFIG.replace('name="label"', 'name="klass"').replace('value="c"', 'value="c" alias="C"')
        r = c.post("/predict", json=predict_body(nxt, config))
        assert r.status_code == 200
        results = r.json()["results"]
        X = ws.store.features()[[ws.store.positions_of(nxt)[i] for i in nxt]]
        P = service.model.learner.outputs(X, embeddings=False)[0].numpy().astype(np.float64)
        assert len(results) == 4
        for res, p in zip(results, P):
            assert res["model_version"] == version
            assert res["score"] == pytest.approx(p.max(), abs=1e-6)
            (choice,) = res["result"]
            expected = TAB_CLASSES[int(p.argmax())]
            assert choice["from_name"] == "klass" and choice["to_name"] == "row" and choice["type"] == "choices"
            assert choice["value"] == {"choices": ["C" if expected == "c" else expected]}
        service.score = "margin"
        margins = [res["score"] for res in c.post("/predict", json=predict_body(nxt)).json()["results"]]
        top = np.sort(P, axis=1)
        assert margins == pytest.approx(top[:, -1] - top[:, -2], abs=1e-6)
        h = c.get("/health").json()
        assert h["batch"] == {"round": 2, "total": 4, "labelled": 0} and h["model"]["n_train"] == 4
        # No project could be reached at localhost:8080: the push failed and says so, the round stands.
        assert h["label_studio"]["last_push"]["round"] == 2 and "error" in h["label_studio"]["last_push"]
        service.score = "confidence"
        before = c.post("/predict", json=predict_body(nxt)).json()
    # A restarted backend trains its model again, seeded as the query seeded it: the same model.
    with backend(ws) as (c, service):
        assert c.post("/setup", json=setup_body()).json()["model_version"] == version
        again = c.post("/predict", json=predict_body(nxt)).json()
        assert again == before and service.model.version == version


def test_predict_trains_a_model_when_none_is_in_memory(tab):
    ws, batch = tab
    for item, label in zip(batch, ["a", "b", "c", "c"]):
        ws.label(item, label, annotator="alice")
    with backend(ws, push=False) as (c, service):
        version = c.post("/setup", json=setup_body()).json()["model_version"]
        assert version.startswith("activebatch-round1-4labels-") and service.model is None
        r = c.post("/predict", json=predict_body(batch)).json()
        assert r["model_version"] == version and service.model.version == version
        assert [res["result"][0]["value"]["choices"][0] in TAB_CLASSES for res in r["results"]] == [True] * 4
        # another label changes the version the next model would have, not the model in memory
        ws.store.remove_label(ws.store.positions_of([batch[0]])[batch[0]], annotator="alice", source="test")
        assert c.post("/setup", json=setup_body()).json()["model_version"] == version


def test_start_training_and_train_request(tab):
    ws, batch = tab
    for item, label in zip(batch[:2], ["a", "b"]):
        ws.label(item, label, annotator="alice")
    with backend(ws, push=False, batch_size=3, strategy="margin") as (c, service):
        r = c.post("/webhook", json={"action": "START_TRAINING", "project": project()})
        assert r.status_code == 200 and r.json()["training"] == "started"
        assert service.wait(120)["result"]["round"] == 2
        r = c.post("/train", json={"annotations": [], "project": f"{PROJECT}.1", "label_config": CONFIG,
                                   "params": {"login": None, "password": None}})
        assert r.status_code == 201 and r.json()["training"] == "started"
        assert service.wait(120)["result"]["round"] == 3
        assert ws.store.rounds()["strategy"].tolist() == ["random", "margin", "margin"]
        assert ws.store.rounds()["n"].tolist() == [4, 3, 3]
        assert c.post("/train", json=[]).status_code == 400


# Labels from the webhook ----------------------------------------------------------------------------
def test_webhook_records_changes_and_withdraws_labels(tab):
    ws, batch = tab
    item = batch[0]
    with backend(ws) as (c, _):
        r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", 1, item, "b"))
        assert r.status_code == 200 and r.json()["recorded"] == 1
        assert current(ws) == {item: ("b", "labelstudio-user-1")}
        assert ws.labels()["source"].tolist() == ["label-studio"]
        r = c.post("/webhook", json=annotated("ANNOTATION_UPDATED", 1, item, "c", at="2026-01-02T11:00:00Z"))
        assert r.json()["relabeled"] == 1 and current(ws) == {item: ("c", "labelstudio-user-1")}
        # a user given as an object (other serialisers) is named by e-mail
        body = annotated("ANNOTATION_CREATED", 2, batch[1], "a")
        body["annotation"]["completed_by"] = {"id": 4, "email": "ann@example.org"}
        assert c.post("/webhook", json=body).json()["recorded"] == 1
        assert current(ws)[batch[1]] == ("a", "ann@example.org")
        # a skipped task, or an annotation without a choice, is no vote
        r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", 3, batch[2], "a", cancelled=True))
        assert r.json()["recorded"] == 0 and batch[2] not in current(ws)
        r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", 4, batch[2], None))
        assert r.json()["recorded"] == 0 and batch[2] not in current(ws)
        # events Label Studio sends for everything else are acknowledged
        r = c.post("/webhook", json={"action": "PROJECT_UPDATED", "project": project()})
        assert r.status_code == 200 and r.json() == {"status": "ignored", "action": "PROJECT_UPDATED"}
        assert c.post("/webhook", json=deleted(999)).json()["withdrawn"] == 0
    with backend(ws) as (c, _):   # the votes outlive the server
        r = c.post("/webhook", json=deleted(1))
        assert r.status_code == 200 and r.json()["withdrawn"] == 1 and item not in current(ws)
        r = c.post("/webhook", json={"action": "ANNOTATION_DELETED", "annotation": {"id": 2}})
        assert r.json()["withdrawn"] == 1 and current(ws) == {}
    events = ws.store.label_events()
    assert events.query("item_id == @item")["action"].tolist() == ["label", "relabel", "remove"]
    assert (ws.folder / VOTES_NAME).is_file()


@pytest.mark.parametrize("policy", ["refuse", "majority", "latest"])
def test_disagreeing_annotations_follow_the_conflict_policy(tab, policy):
    ws, batch = tab
    item = batch[0]
    t1, t2, t3 = "2026-01-02T10:00:00Z", "2026-01-02T11:00:00+00:00", "2026-01-02T12:00:00.5Z"
    with backend(ws, conflicts=policy) as (c, _):
        def vote(ann, label, user, at):
            r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", ann, item, label, user=user, at=at))
            assert r.status_code == 200, r.text
            return r.json(), current(ws).get(item)

        res, now = vote(1, "a", 1, t1)
        assert now == ("a", "labelstudio-user-1")
        res, now = vote(2, "b", 2, t3)        # the latest annotation
        expected = {"refuse": None, "majority": None, "latest": ("b", "labelstudio-user-2")}[policy]
        assert now == expected
        if expected is None:
            assert res["withdrawn"] == 1 and item in res["unsettled"][0]
        res, now = vote(3, "a", 3, t2)
        # majority: 'a' twice, recorded under the latest of its voters (t2 > t1)
        assert now == {"refuse": None, "majority": ("a", "labelstudio-user-3"),
                       "latest": ("b", "labelstudio-user-2")}[policy]
        r = c.post("/webhook", json=deleted(2)).json()
        # without the 'b' vote the remaining ones agree; the latest of them gives the annotator
        assert current(ws).get(item) == ("a", "labelstudio-user-3")
        assert r["unsettled"] == []


def test_votes_contradicting_a_label_given_otherwise_are_refused(tab):
    ws, batch = tab
    ws.label(batch[0], "a", annotator="alice")
    votes = ws.folder / VOTES_NAME
    with backend(ws) as (c, service):
        r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", 1, batch[0], "b"))
        assert r.status_code == 409 and "alice" in r.json()["error"] and "nothing was recorded" in r.json()["error"]
        assert current(ws) == {batch[0]: ("a", "alice")} and service.votes.count() == 0
        r = c.post("/webhook", json=annotated("ANNOTATION_CREATED", 1, batch[0], "a"))
        assert r.status_code == 200 and r.json()["unchanged"] == 1
        assert current(ws) == {batch[0]: ("a", "alice")}
        # the label is not the backend's to withdraw
        assert c.post("/webhook", json=deleted(1)).json()["withdrawn"] == 0
        assert current(ws) == {batch[0]: ("a", "alice")}
    assert votes.is_file()


def test_malformed_webhooks_get_4xx_and_record_nothing(tab):
    ws, batch = tab
    outside = next(i for i in ws.store.items()["item_id"] if i not in batch)

    def with_annotation(**change):
        body = annotated("ANNOTATION_CREATED", 1, batch[0], "a")
        body["annotation"].update(change)
        return body

    def with_result(value):
        return with_annotation(result=[{"from_name": "label", "to_name": "row", "type": "choices", "value": value}])

    no_task = annotated("ANNOTATION_CREATED", 1, batch[0], "a")
    del no_task["task"]
    no_id = annotated("ANNOTATION_CREATED", 1, batch[0], "a")
    no_id["task"]["data"] = {"row": "x0: 1"}
    bad = [
        ({}, 400, "'action' is null"),
        ({"action": 3}, 400, "'action' is the number 3"),
        ({"action": "ANNOTATION_CREATED", "project": project()}, 400, "'annotation' is null"),
        ({"action": "ANNOTATION_CREATED", "annotation": [], "task": {}}, 400, "'annotation' is a list of 0"),
        (no_task, 400, "'task' is null"),
        (no_id, 400, "data.activebatch_id null"),
        (with_annotation(id="1"), 400, "'id' the string '1'"),
        (with_annotation(task=55), 400, "belongs to task the number 55"),
        (with_annotation(result={"choices": ["a"]}), 400, "'result' an object"),
        (with_annotation(result=["a"]), 400, "a result is the string 'a'"),
        (with_annotation(was_cancelled="no"), 400, "'was_cancelled' the string 'no'"),
        (with_result({"choices": "a"}), 400, "exactly one class"),
        (with_result({"choices": ["a", "b"]}), 400, "exactly one class"),
        (with_result({"choices": ["zebra"]}), 400, "'zebra', which is not a class"),
        ({**annotated("ANNOTATION_CREATED", 1, batch[0], "a"), "project": "seven"}, 400, "project is the string"),
        (annotated("ANNOTATION_CREATED", 1, "no-such-item", "a"), 404, "'no-such-item' are not in this workspace"),
        (annotated("ANNOTATION_CREATED", 1, outside, "a"), 404, "in none of the workspace's batches"),
        ({"action": "ANNOTATIONS_DELETED", "annotations": "1"}, 400, "'annotations' is the string '1'"),
        ({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": None}]}, 400, "expected {'id': <annotation id>}"),
        ({"action": "ANNOTATIONS_CREATED", "annotation": {}, "task": []}, 400, "to be lists"),
    ]
    with backend(ws) as (c, service):
        for body, status, fragment in bad:
            r = c.post("/webhook", json=body)
            assert r.status_code == status and fragment in r.json()["error"], (body, r.text)
        for raw, ctype, status in [(b"{", "application/json", 400), (b"[]", "application/json", 400),
                                   (json.dumps(annotated("ANNOTATION_CREATED", 1, batch[0], "a")).encode(),
                                    "text/plain", 415)]:
            assert c.post("/webhook", content=raw, headers={"Content-Type": ctype}).status_code == status
        assert service.votes.count() == 0 and ws.labels().empty and ws.store.label_events().empty
        # the bulk form, well made, is read
        one = annotated("ANNOTATION_CREATED", 1, batch[0], "a")
        r = c.post("/webhook", json={"action": "ANNOTATIONS_CREATED", "annotation": [one["annotation"]],
                                     "task": [one["task"]], "project": project()})
        assert r.status_code == 200 and current(ws) == {batch[0]: ("a", "labelstudio-user-1")}


def test_oversized_bodies_are_refused(tab):
    ws, batch = tab
    with backend(ws, max_body=2000) as (c, service):
        body = annotated("ANNOTATION_CREATED", 1, batch[0], "a")
        body["annotation"]["notes"] = "x" * 3000
        r = c.post("/webhook", json=body)
        assert r.status_code == 413 and service.votes.count() == 0


# Sending new batches to Label Studio ----------------------------------------------------------------
@contextlib.contextmanager
def fake_label_studio():
    """A stand-in for Label Studio's REST API that records what it is sent."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            answer = {"access": "short-lived"} if self.path == "/api/token/refresh" else {"task_count": len(body)}
            data = json.dumps(answer).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def test_the_next_batch_is_imported_into_the_connected_project(tab):
    ws, batch = tab
    with fake_label_studio() as (url, calls), backend(ws) as (c, service):
        c.post("/setup", json=setup_body(hostname=url))
        _label_batch(c, batch, ["a", "b", "a", "c"])
        status = service.wait(120)
        assert status["error"] is None and "4 task(s) of round 2 added" in status["message"]
        (call,) = calls
        assert call["path"] == f"/api/projects/{PROJECT}/import" and call["auth"] == "Token abcdef123456"
        assert [t["data"]["activebatch_id"] for t in call["body"]] == status["result"]["items"]
        assert all("predictions" not in t and t["data"]["activebatch_round"] == 2 for t in call["body"])
        assert c.get("/health").json()["label_studio"]["last_push"]["tasks"] == 4


def test_personal_access_tokens_are_exchanged_for_an_access_token():
    with fake_label_studio() as (url, calls):
        LabelStudioClient(url, "aaa.bbb.ccc").import_tasks(3, [{"data": {"activebatch_id": "x"}}])
        LabelStudioClient(url + "/", "legacy0token").import_tasks(3, [])
    assert [(c["path"], c["auth"]) for c in calls] == [
        ("/api/token/refresh", None), ("/api/projects/3/import", "Bearer short-lived"),
        ("/api/projects/3/import", "Token legacy0token")]
    assert calls[0]["body"] == {"refresh": "aaa.bbb.ccc"}


def test_command_line_refuses_a_missing_workspace(tmp_path, capsys):
    from activebatch.cli.main import main

    assert main(["ml-backend", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "no workspace at" in capsys.readouterr().err
