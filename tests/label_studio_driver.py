"""Drives a running Label Studio with its SDK for tests/test_label_studio_e2e.py.

Run by the Python of ``.venv-labelstudio`` (where ``label-studio-sdk`` is installed, apart from the
project's own environment): ``python label_studio_driver.py '<json arguments>'``. It creates a
project with the exported labelling interface, imports the exported tasks, connects the ML
backend, annotates every task (correcting one annotation and deleting and redoing another), waits
for the backend to retrain and import the next batch, asks Label Studio for predictions of every
task, lets it order the tasks by their scores (the Data Manager's sort, and uncertainty sampling's
next task), and prints what Label Studio holds as one JSON line.
"""
import json
import sys
import time

import requests
from label_studio_sdk import LabelStudio


def choice(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "row", "type": "choices", "value": {"choices": [label]}}]


def snapshot(client: LabelStudio, project: int) -> list[dict]:
    out = []
    for t in client.tasks.list(project=project, fields="all"):
        out.append({"id": t.id, "item": t.data["activebatch_id"], "round": t.data.get("activebatch_round"),
                    "predictions": [{"model_version": p.model_version, "score": p.score, "result": p.result}
                                    for p in (t.predictions or [])]})
    return sorted(out, key=lambda t: t["id"])


def retrieve_predictions(client: LabelStudio, project: int) -> None:
    client.actions.create(id="retrieve_tasks_predictions", project=project,
                          selected_items={"all": True, "excluded": []})


def main() -> None:
    args = json.loads(sys.argv[1])
    client = LabelStudio(base_url=args["label_studio"], api_key=args["token"])
    report: dict = {}
    with open(args["config"], encoding="utf-8") as f:
        config = f.read()
    with open(args["tasks"], encoding="utf-8") as f:
        tasks = json.load(f)
    project = client.projects.create(title="activebatch end-to-end", label_config=config).id
    report["project"] = project
    client.projects.import_tasks(project, request=tasks)
    ml = client.ml.create(project=project, url=args["backend"], title="activebatch")
    report["ml_state"] = ml.state
    retrieve_predictions(client, project)   # nothing labelled yet: the backend answers without predictions
    report["before"] = snapshot(client, project)

    labels = args["labels"]
    first, second, *rest = report["before"]
    wrong = client.annotations.create(id=first["id"], result=choice(args["wrong"]))
    client.annotations.update(id=wrong.id, result=choice(labels[first["item"]]))
    gone = client.annotations.create(id=second["id"], result=choice(labels[second["item"]]))
    client.annotations.delete(id=gone.id)
    client.annotations.create(id=second["id"], result=choice(labels[second["item"]]))
    for t in rest:
        client.annotations.create(id=t["id"], result=choice(labels[t["item"]]))

    # The batch is complete: the backend retrains, chooses the next batch and imports it here.
    deadline = time.monotonic() + args["timeout"]
    while True:
        health = requests.get(args["backend"] + "/health", timeout=10).json()
        push = health["label_studio"]["last_push"]
        if not health["training"]["running"] and (push or health["training"]["error"]):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the backend did not finish training in time: {health}")
        time.sleep(0.5)
    report["health"] = health
    retrieve_predictions(client, project)
    report["after"] = snapshot(client, project)
    # Label Studio orders tasks by the score of the predictions of the project's model version: choose
    # the backend's (Settings -> Predictions) and uncertainty sampling (Settings -> Annotation).
    client.projects.update(id=project, model_version=health["model_version"], sampling="Uncertainty sampling")
    ordering = json.dumps({"ordering": ["tasks:predictions_score"]})   # the Data Manager's sort
    report["by_score"] = [t.id for t in client.tasks.list(project=project, query=ordering)]
    nxt = requests.get(f"{args['label_studio']}/api/projects/{project}/next",
                       headers={"Authorization": f"Token {args['token']}"}, timeout=60)
    nxt.raise_for_status()
    report["next"] = nxt.json()["id"]   # the task the labelling stream shows next
    print(json.dumps(report))


if __name__ == "__main__":
    main()
