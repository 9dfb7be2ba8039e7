"""Workspaces from the command line: the full cycle on a table and on images, and bad inputs."""
import json

import numpy as np
import pandas as pd
import pytest

from activebatch.cli import main
from activebatch.workspace import (
    ConcurrentQueryError,
    LabelConflictError,
    ModelConfig,
    NotInBatchError,
    Workspace,
    WorkspaceError,
    WorkspaceStore,
)
from workspace_fixtures import DIGITS, TAB_CLASSES, label_studio_export, make_images, make_table, write_labels

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def fill(batch_csv, truth, path):
    frame = pd.read_csv(batch_csv, dtype={"id": str})
    frame["label"] = [truth[i] for i in frame["id"]]
    frame.to_csv(path, index=False)
    return path


def snapshot(ws_dir):
    """Everything a failed command must leave as it was."""
    store = WorkspaceStore(ws_dir)
    return (store.labels().to_dict("records"), len(store.label_events()), store.rounds().drop(columns="options")
            .to_dict("records"), len(store.snapshots()))


# Full cycles ------------------------------------------------------------------------------------
def test_tabular_cycle(tmp_path, capsys):
    items, truth = make_table(tmp_path)
    ids = list(truth)
    write_labels(tmp_path / "eval.csv", ids[-30:], truth)
    ws = tmp_path / "ws"
    code, out, err = run(capsys, "init", ws, "--items", items, "--classes", "a,b,c", "--eval-labels",
                         tmp_path / "eval.csv", "--max-epochs", "60")
    assert code == 0, err
    assert "120 tabular items" in out and "30 evaluation labels" in out

    # Round 1: no labels yet -> a random batch, exported as CSV and labelled in a spreadsheet.
    code, out, err = run(capsys, "query", ws, "-n", 12)
    assert code == 0, err
    assert "round 1: random chose 12" in out
    code, out, _ = run(capsys, "export", ws, "--round", 1, "--out", tmp_path / "r1.csv")
    assert code == 0
    batch = pd.read_csv(tmp_path / "r1.csv", dtype={"id": str})
    assert list(batch.columns[:4]) == ["id", "round", "rank", "position"]
    assert {"x0", "colour", "label", "predicted"} <= set(batch.columns)
    assert batch["rank"].tolist() == list(range(12)) and not set(batch["id"]) & set(ids[-30:])
    code, out, err = run(capsys, "import", ws, fill(tmp_path / "r1.csv", truth, tmp_path / "l1.csv"),
                         "--annotator", "ann")
    assert code == 0, err
    assert "12 new label(s)" in out

    # Rounds 2 and 3 with BADGE, through Label Studio's task format.
    for rnd in (2, 3):
        code, out, err = run(capsys, "query", ws, "-n", 10, "--strategy", "badge")
        assert code == 0, err
        assert f"round {rnd}: badge chose 10" in out and "held-out accuracy" in out
        code, out, _ = run(capsys, "export", ws, "--format", "json", "--out", tmp_path / f"r{rnd}.json")
        assert code == 0
        tasks = json.loads((tmp_path / f"r{rnd}.json").read_text())
        assert len(tasks) == 10 and tasks[0]["data"]["activebatch_round"] == rnd
        assert {"x0", "colour", "row"} <= set(tasks[0]["data"])
        pred = tasks[0]["predictions"][0]["result"][0]
        assert pred["type"] == "choices" and pred["value"]["choices"][0] in TAB_CLASSES
        config = (tmp_path / f"r{rnd}.label_config.xml").read_text()
        assert '<Choices name="label" toName="row"' in config and '<Choice value="c"/>' in config
        (tmp_path / "ls.json").write_text(json.dumps(label_studio_export(tasks, truth)))
        code, out, err = run(capsys, "import", ws, tmp_path / "ls.json")
        assert code == 0, err
        assert "10 new label(s)" in out

    code, out, err = run(capsys, "status", ws)
    assert code == 0, err
    assert "labels: 32 train, 30 eval" in out and "held-out accuracy" in out
    assert (ws / "learning_curve.png").read_bytes()[:8] == PNG
    code, out, _ = run(capsys, "status", ws, "--json", "--no-plot")
    st = json.loads(out)
    assert st["labels"]["train"] == 32 and st["labels"]["eval"] == 30 and st["labels"]["pending"] == 0
    assert [r["strategy"] for r in st["rounds"]] == ["random", "badge", "badge"]
    assert [r["labelled"] for r in st["rounds"]] == [12, 10, 10]
    assert sum(c["train"] for c in st["labels"]["per_class"]) == 32
    assert st["labels"]["annotators"] == {"ann": 12, "ann@example.org": 20, st_default(st): 30}
    assert 0.5 < st["eval_accuracy"] <= 1.0
    labels = Workspace(ws).labels()
    assert all(truth[i] == lab for i, lab in zip(labels["item_id"], labels["label"]))


def st_default(st):
    return next(k for k in st["labels"]["annotators"] if k not in ("ann", "ann@example.org"))


def test_image_cycle(tmp_path, capsys):
    folder, truth = make_images(tmp_path, n=60)
    ids = sorted(truth)
    write_labels(tmp_path / "eval.csv", ids[:15], truth)
    write_labels(tmp_path / "seed.csv", ids[15:35], truth)
    ws = tmp_path / "ws"
    code, out, err = run(capsys, "init", ws, "--items", folder, "--classes", ",".join(DIGITS),
                         "--labels", tmp_path / "seed.csv", "--eval-labels", tmp_path / "eval.csv",
                         "--max-epochs", "40", "--annotator", "seeder")
    assert code == 0, err
    assert "60 image items" in out and "20 training and 15 evaluation labels" in out
    w = Workspace(ws)
    assert w.kind == "image" and w.store.meta()["image_shape"] == [1, 28, 28]
    # Features are the pixels in [0, 1].
    X = w.store.features()
    assert X.shape == (60, 784) and 0.0 <= X.min() and X.max() <= 1.0

    code, out, err = run(capsys, "query", ws, "-n", 8)
    assert code == 0, err
    assert "round 1: badge chose 8" in out
    code, out, _ = run(capsys, "export", ws, "--format", "json")
    assert code == 0 and "round-1.json" in out
    tasks = json.loads((ws / "exports" / "round-1.json").read_text())
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=" + tasks[0]["data"]["activebatch_id"]
    code, _, _ = run(capsys, "export", ws, "--out", tmp_path / "emb.json", "--embed-images", "--image-url", "{name}")
    embedded = json.loads((tmp_path / "emb.json").read_text())
    assert embedded[0]["data"]["image"].startswith("data:image/png;base64,")
    # Label Studio's JSON-MIN export: flat objects.
    minimal = [{"image": t["data"]["image"], "activebatch_id": t["data"]["activebatch_id"], "id": k,
                "label": truth[t["data"]["activebatch_id"]], "annotator": "min@example.org"}
               for k, t in enumerate(tasks)]
    (tmp_path / "min.json").write_text(json.dumps(minimal))
    code, out, err = run(capsys, "import", ws, tmp_path / "min.json", "--round", 1)
    assert code == 0, err
    assert "8 new label(s)" in out
    code, out, err = run(capsys, "query", ws, "-n", 8, "--strategy", "margin")
    assert code == 0, err
    code, _, _ = run(capsys, "export", ws, "--out", tmp_path / "r2.csv")
    batch = pd.read_csv(tmp_path / "r2.csv", dtype={"id": str})
    assert batch["path"].map(lambda p: p.endswith(".png")).all()
    code, out, err = run(capsys, "import", ws, fill(tmp_path / "r2.csv", truth, tmp_path / "l2.csv"))
    assert code == 0, err
    code, out, err = run(capsys, "status", ws, "--evaluate")
    assert code == 0, err
    assert "labels: 36 train, 15 eval" in out and "held-out accuracy" in out
    snaps = Workspace(ws).store.snapshots()
    assert snaps["n_train"].tolist() == [20, 28, 36] and snaps["round"].isna().tolist() == [False, False, True]
    assert (ws / "learning_curve.png").read_bytes()[:8] == PNG


def test_feature_matrix_items_and_precomputed_features(tmp_path, capsys):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 16))
    y = np.repeat(np.arange(3), 20)
    Z = (centres[y] + rng.normal(size=(60, 16))).astype(np.float32)
    ids = np.array([f"emb{i}" for i in range(60)])
    np.savez(tmp_path / "feats.npz", features=Z, ids=ids)
    truth = {i: TAB_CLASSES[k] for i, k in zip(ids, y)}
    write_labels(tmp_path / "seed.csv", ids[::6], truth)
    code, out, err = run(capsys, "init", tmp_path / "ws", "--items", tmp_path / "feats.npz", "--classes", "a,b,c",
                         "--labels", tmp_path / "seed.csv", "--model", "linear")
    assert code == 0, err
    assert "60 features items" in out
    code, out, err = run(capsys, "query", tmp_path / "ws", "-n", 5, "--strategy", "coreset")
    assert code == 0, err
    # A table shown to annotators while the model trains on precomputed embeddings, matched by id.
    items, truth_t = make_table(tmp_path, n=60)
    np.save(tmp_path / "emb.npy", Z[::-1].copy())
    pd.DataFrame({"id": list(truth_t)[::-1]}).to_csv(tmp_path / "emb_ids.csv", index=False)
    code, out, err = run(capsys, "init", tmp_path / "ws2", "--items", items, "--classes", "a,b,c",
                         "--features", tmp_path / "emb.npy", "--ids", tmp_path / "emb_ids.csv")
    assert code == 0, err
    w = Workspace(tmp_path / "ws2")
    assert w.kind == "tabular"
    np.testing.assert_array_equal(w.store.features(), Z)   # reversed twice
    assert w.store.items()["display"][0]["colour"] in ("red", "blue")


# Python API ------------------------------------------------------------------------------------------
@pytest.fixture
def tab_ws(tmp_path):
    items, truth = make_table(tmp_path)
    write_labels(tmp_path / "eval.csv", list(truth)[-20:], truth)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, eval_labels=tmp_path / "eval.csv",
                          model=ModelConfig(max_epochs=40), annotator="init")
    return ws, truth


def label_batch(ws, truth, annotator="ann"):
    for i in ws.batch()["item_id"]:
        ws.label(i, truth[i], annotator=annotator)


def test_same_labels_same_batches(tmp_path):
    items, truth = make_table(tmp_path)
    batches = []
    for name in ("one", "two"):
        ws = Workspace.create(tmp_path / name, items, TAB_CLASSES, model=ModelConfig(max_epochs=30, seed=3))
        rounds = []
        for _ in range(3):
            rounds.append(ws.query(6, "badge").item_ids)
            label_batch(ws, truth)
        batches.append(rounds)
    assert batches[0] == batches[1]
    seeded = Workspace.create(tmp_path / "other", items, TAB_CLASSES, model=ModelConfig(max_epochs=30, seed=4))
    assert seeded.query(6).item_ids != batches[0][0]


def test_pending_items_are_not_chosen_again(tab_ws):
    ws, truth = tab_ws
    first = set(ws.query(30).item_ids)
    second = set(ws.query(30).item_ids)
    assert not first & second
    eval_ids = set(ws.labels().query("split == 'eval'")["item_id"])
    assert not (first | second) & eval_ids
    with pytest.raises(ValueError, match="larger than the number of unlabelled items that are not waiting"):
        ws.query(60)
    ws.query(60, include_pending=True)
    assert ws.store.last_round() == 3


def test_conflicting_relabel_is_refused_unless_overwrite(tab_ws, tmp_path, capsys):
    ws, truth = tab_ws
    ids = ws.query(5).item_ids
    write_labels(tmp_path / "l.csv", ids, truth)
    ws.import_labels(tmp_path / "l.csv", annotator="ann")
    wrong = {i: TAB_CLASSES[(TAB_CLASSES.index(truth[i]) + 1) % 3] for i in ids}
    write_labels(tmp_path / "wrong.csv", ids[:2], wrong)
    before = snapshot(ws.folder)
    code, _, err = run(capsys, "import", ws.folder, tmp_path / "wrong.csv")
    assert code == 2
    assert f"item {ids[0]!r} already has label {truth[ids[0]]!r} (by ann" in err
    assert "refusing to relabel" in err and "--overwrite" in err
    assert snapshot(ws.folder) == before
    # Same labels again: nothing changes, nothing is duplicated.
    res = ws.import_labels(tmp_path / "l.csv")
    assert res.labels.unchanged == 5 and res.labels.changed == 0
    code, out, _ = run(capsys, "import", ws.folder, tmp_path / "wrong.csv", "--overwrite", "--annotator", "boss")
    assert code == 0 and "2 relabelled" in out
    now = ws.labels().set_index("item_id")
    assert now.loc[ids[0], "label"] == wrong[ids[0]] and now.loc[ids[0], "annotator"] == "boss"
    events = ws.store.label_events()
    assert events[events["item_id"] == ids[0]]["action"].tolist() == ["label", "relabel"]
    assert events[events["item_id"] == ids[0]]["previous"].tolist()[-1] == truth[ids[0]]


def test_bad_inputs_get_clear_errors_and_change_nothing(tab_ws, tmp_path, capsys):
    ws, truth = tab_ws
    ids = ws.query(6).item_ids
    write_labels(tmp_path / "first.csv", ids[:2], truth)
    ws.import_labels(tmp_path / "first.csv")
    others = [i for i in truth if i not in ids][:2]
    cases = {
        "unknown class": (pd.DataFrame({"id": ids[2:4], "label": ["a", "zebra"]}), "unknown class(es) 'zebra'"),
        "id not in the batch": (pd.DataFrame({"id": [ids[2], others[0]], "label": ["a", "b"]}),
                                "not in any batch chosen so far"),
        "unknown id": (pd.DataFrame({"id": [ids[2], "no-such-item"], "label": ["a", "b"]}),
                       "are not items of this workspace: 'no-such-item'"),
        "disagreeing rows": (pd.DataFrame({"id": [ids[2], ids[3], ids[2]], "label": ["a", "b", "c"]}),
                             f"item {ids[2]!r}: 'a' by an unnamed annotator (line 2); 'c' by an unnamed annotator "
                             "(line 4)"),
        "missing column": (pd.DataFrame({"id": ids[2:4], "class": ["a", "b"]}), "needs columns 'id' and 'label'"),
    }
    before = snapshot(ws.folder)
    for name, (frame, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        frame.to_csv(path, index=False)
        code, _, err = run(capsys, "import", ws.folder, path)
        assert code == 2, name
        assert message in err, (name, err)
        assert snapshot(ws.folder) == before, name
    (tmp_path / "broken.json").write_text('[{"data": {"activebatch_id": "x"}, "annotations": [')
    (tmp_path / "nomatch.json").write_text('[{"data": {"image": "a.png"}, "annotations": []}]')
    (tmp_path / "labels.xlsx").write_text("x")
    (tmp_path / "broken.csv").write_bytes(b'id,label\n"row-1,a\n\xff\xfe,b\n')
    for path, message in [("broken.json", "is not valid JSON"), ("nomatch.json", "has no 'activebatch_id'"),
                          ("labels.xlsx", "expected .csv, .parquet or a Label Studio .json"),
                          ("broken.csv", "is not a readable csv table"), ("absent.csv", "does not exist")]:
        code, _, err = run(capsys, "import", ws.folder, tmp_path / path)
        assert code == 2 and message in err, (path, err)
        assert snapshot(ws.folder) == before, path
    for argv, message in [(["query", ws.folder, "-n", "5", "--strategy", "nope"], "unknown strategy 'nope'"),
                          (["query", ws.folder, "-n", "5", "--option", "init=sideways"], "init must be"),
                          (["export", ws.folder, "--round", "7"], "there is no round 7"),
                          (["import", ws.folder, tmp_path / "first.csv", "--round", "9"], "there is no round 9"),
                          (["status", tmp_path / "nowhere"], "no workspace at")]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err, (argv, err)
        assert snapshot(ws.folder) == before, argv


def test_bad_items_leave_no_workspace(tmp_path, capsys):
    items, truth = make_table(tmp_path)
    frame = pd.read_csv(items)
    frame.loc[5, "id"] = frame.loc[3, "id"]
    frame.to_csv(tmp_path / "dup.csv", index=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad_images").mkdir()
    (tmp_path / "bad_images" / "x.png").write_bytes(b"not a png")
    write_labels(tmp_path / "bad_labels.csv", list(truth)[:3], {i: "zebra" for i in truth})
    cases = [
        (["--items", tmp_path / "dup.csv", "--classes", "a,b,c"], "duplicate ids 'row-0003'"),
        (["--items", items, "--classes", "a"], "at least 2 classes"),
        (["--items", items, "--classes", "a,b,a"], "repeated: a"),
        (["--items", tmp_path / "empty", "--classes", "a,b"], "holds no image files"),
        (["--items", tmp_path / "bad_images", "--classes", "a,b"], "is not a readable image"),
        (["--items", items, "--classes", "a,b,c", "--labels", tmp_path / "bad_labels.csv"],
         "unknown class(es) 'zebra'"),
        (["--items", items, "--classes", "a,b,c", "--id-column", "key"], "has no column 'key'"),
        (["--items", items, "--classes", "a,b,c", "--model", "cnn"], "cnn model needs image items"),
    ]
    for k, (argv, message) in enumerate(cases):
        target = tmp_path / f"ws{k}"
        code, _, err = run(capsys, "init", target, *argv)
        assert code == 2 and message in err, (argv, err)
        assert not (target / "workspace.sqlite").exists()
    code, _, _ = run(capsys, "init", tmp_path / "ok", "--items", items, "--classes", "a,b,c")
    assert code == 0
    code, _, err = run(capsys, "init", tmp_path / "ok", "--items", items, "--classes", "a,b,c")
    assert code == 2 and "already holds a workspace" in err


def test_label_undo_and_batch_checks(tab_ws):
    ws, truth = tab_ws
    ids = ws.query(4).item_ids
    outside = next(i for i in truth if i not in ids and i not in set(ws.labels()["item_id"]))
    with pytest.raises(NotInBatchError):
        ws.label(outside, "a", annotator="ann")
    ws.label(ids[0], truth[ids[0]], annotator="ann")
    with pytest.raises(LabelConflictError, match="only ann can undo it"):
        ws.undo(ids[0], annotator="eve")
    assert ws.undo(ids[0], annotator="ann") == truth[ids[0]]
    assert ids[0] not in set(ws.labels()["item_id"])
    assert ws.store.label_events()["action"].tolist()[-2:] == ["label", "remove"]
    assert ws.undo(ids[0], annotator="ann") is None


def test_an_interrupted_write_records_nothing(tab_ws, monkeypatch):
    ws, truth = tab_ws
    ws.query(5)
    label_batch(ws, truth)
    before = snapshot(ws.folder)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # Ctrl-C after the round row is inserted but before its model metrics: the round is rolled back.
    monkeypatch.setattr(WorkspaceStore, "_insert_snapshot", staticmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        ws.query(5)
    assert snapshot(ws.folder) == before
    assert ws.store.integrity_check() == "ok"
    monkeypatch.undo()
    assert ws.query(5).round == 2


def test_a_concurrent_query_is_refused(tab_ws):
    ws, _ = tab_ws
    other = Workspace(ws.folder)
    original = ws.store.record_round

    def late(**kwargs):
        other.query(3)          # another process records a round while this one trains
        return original(**kwargs)

    ws.store.record_round = late
    with pytest.raises(ConcurrentQueryError, match="recorded by another query"):
        ws.query(3)
    assert ws.store.last_round() == 1


def test_cnn_workspace_on_images(tmp_path):
    folder, truth = make_images(tmp_path, n=24)
    ids = sorted(truth)
    write_labels(tmp_path / "seed.csv", ids[:10], truth)
    write_labels(tmp_path / "eval.csv", ids[-6:], truth)
    ws = Workspace.create(tmp_path / "ws", folder, DIGITS, labels=tmp_path / "seed.csv",
                          eval_labels=tmp_path / "eval.csv", model=ModelConfig(model="cnn", max_epochs=3, hidden=16))
    res = ws.query(4, "entropy")
    assert res.strategy == "entropy" and res.epochs == 3 and res.eval_accuracy is not None
    assert len(set(res.item_ids) & set(ids[:10] + ids[-6:])) == 0


def test_bayesian_strategies_need_a_model_with_dropout(tmp_path):
    import activebatch as ab

    if "bald" not in ab.strategies.names():
        pytest.skip("no 'bald' strategy registered")
    items, truth = make_table(tmp_path, n=60)
    write_labels(tmp_path / "seed.csv", list(truth)[:12], truth)
    plain = Workspace.create(tmp_path / "plain", items, TAB_CLASSES, labels=tmp_path / "seed.csv",
                             model=ModelConfig(max_epochs=10))
    with pytest.raises(WorkspaceError, match="needs mc_probs.*--dropout"):
        plain.query(4, "bald")
    assert plain.store.last_round() == 0
    mc = Workspace.create(tmp_path / "mc", items, TAB_CLASSES, labels=tmp_path / "seed.csv",
                          model=ModelConfig(max_epochs=10, dropout=0.5))
    res = mc.query(4, "bald")
    assert res.strategy == "bald" and len(set(res.item_ids)) == 4


def test_workspace_errors_are_value_errors():
    assert issubclass(WorkspaceError, ValueError) and issubclass(LabelConflictError, WorkspaceError)


@pytest.mark.parametrize("strategy", ["label_dispersion", "loss_prediction"])
def test_training_time_strategies_select_in_a_workspace(tab_ws, strategy):
    """The workspace trains its model with the strategy's callbacks, and the strategy selects from
    what they recorded (the per-epoch predictions, the loss-prediction module)."""
    ws, truth = tab_ws
    ws.query(12)                       # round 1: no labels, a random batch
    label_batch(ws, truth)
    res = ws.query(10, strategy)
    assert len(res.item_ids) == 10 and not set(res.item_ids) & set(ws.labels()["item_id"])
    assert strategy in res.learner.fit_artifacts
    assert res.select_seconds > 0


def test_a_scikit_learn_model_in_a_workspace(tmp_path, capsys):
    """--model sklearn --sklearn module:function: queries refit the factory's pipeline and select
    with its probabilities and embeddings; a bad factory is refused at init, leaving nothing."""
    pytest.importorskip("sklearn")
    items, truth = make_table(tmp_path)
    ws_dir = tmp_path / "ws"
    code, out, err = run(capsys, "init", ws_dir, "--items", items, "--classes", "a,b,c", "--model", "sklearn",
                         "--sklearn", "test_sklearn_learner:logistic_pipeline")
    assert code == 0, err
    ws = Workspace(ws_dir)
    ws.query(15)
    label_batch(ws, truth)
    res = ws.query(10, "badge")
    assert type(res.learner).__name__ == "SklearnLearner" and len(set(res.item_ids)) == 10
    assert not set(res.item_ids) & set(ws.labels()["item_id"])
    code, _, err = run(capsys, "init", tmp_path / "bad", "--items", items, "--classes", "a,b,c", "--model",
                       "sklearn", "--sklearn", "no_such_module:f")
    assert code == 2 and "cannot import the module 'no_such_module'" in err
    assert not (tmp_path / "bad" / "workspace.sqlite").exists()
    code, _, err = run(capsys, "init", tmp_path / "bad2", "--items", items, "--classes", "a,b,c", "--model",
                       "sklearn")
    assert code == 2 and "needs its factory" in err
