"""Label files that give one item several labels (conflict policies), and malformed Label Studio files."""
import copy
import json
import random
import re

import pandas as pd
import pytest

from activebatch.cli import main
from activebatch.workspace import InputFileError, ModelConfig, Workspace, WorkspaceError
from activebatch.workspace.errors import DisagreementError
from activebatch.workspace.formats import read_label_file
from workspace_fixtures import TAB_CLASSES, make_table


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def ann(choice, who, *, updated=None, created=None, aid=None, from_name="label"):
    a = {"id": aid, "completed_by": {"email": who}, "was_cancelled": False,
         "result": [{"from_name": from_name, "to_name": "row", "type": "choices", "value": {"choices": [choice]}}]}
    if updated is not None:
        a["updated_at"] = updated
    if created is not None:
        a["created_at"] = created
    return a


def task(item, *annotations, tid=None):
    return {"id": tid, "data": {"activebatch_id": item}, "annotations": list(annotations)}


# Policies on votes ---------------------------------------------------------------------------------
def test_disagreeing_annotations_are_refused_by_default(tmp_path):
    path = write_json(tmp_path / "ls.json", [
        task("x", ann("a", "ann@x.org", updated="2026-01-01T10:00:00Z", aid=41),
             ann("b", "bob@x.org", updated="2026-01-01T11:00:00Z", aid=42), tid=1003),
        task("y", ann("c", "ann@x.org", aid=43), ann("c", "bob@x.org", aid=44), tid=1004),   # they agree
    ])
    rows = read_label_file(path)
    with pytest.raises(DisagreementError) as err:
        rows.resolve()
    msg = str(err.value)
    assert "1 item(s) have labels that disagree" in msg
    assert ("item 'x': 'a' by ann@x.org (task 1003 (index 0), annotation 41, 2026-01-01T10:00:00Z); "
            "'b' by bob@x.org (task 1003 (index 0), annotation 42, 2026-01-01T11:00:00Z)") in msg
    assert "nothing was recorded" in msg and "--conflicts majority" in msg and "--conflicts latest" in msg
    assert "'y'" not in msg
    agreed = read_label_file(path).resolve("latest")
    assert dict(zip(agreed.ids, agreed.labels)) == {"x": "b", "y": "c"}
    assert agreed.settled == 1   # y agreed: nothing to settle


def test_majority_takes_the_most_common_label_and_refuses_ties(tmp_path):
    three = write_json(tmp_path / "three.json", [task(
        "x", ann("a", "p", updated="2026-01-01T09:00:00Z"), ann("b", "q", updated="2026-01-03T09:00:00Z"),
        ann("a", "r", updated="2026-01-02T09:00:00Z"), tid=7)])
    rows = read_label_file(three).resolve("majority")
    # the majority label, recorded under the latest of the annotators who gave it
    assert (rows.ids, rows.labels, rows.annotators, rows.settled) == (["x"], ["a"], ["r"], 1)
    tie = write_json(tmp_path / "tie.json", [task("x", ann("a", "p"), ann("b", "q"), tid=8)])
    with pytest.raises(DisagreementError, match=r"cannot be settled by --conflicts majority(.|\n)*"
                                                r"item 'x': 'a' by p .*'b' by q .* - a tie between 'a', 'b'"):
        read_label_file(tie).resolve("majority")


def test_latest_uses_updated_at_then_created_at_as_instants(tmp_path):
    tasks = [
        # created first but edited last: the edit counts
        task("x", ann("a", "p", created="2026-01-01T09:00:00Z", updated="2026-01-05T09:00:00Z"),
             ann("b", "q", created="2026-01-02T09:00:00Z", updated="2026-01-02T09:00:00Z"), tid=1),
        # no updated_at: created_at; time zones honoured (10:00+02:00 is 08:00Z, earlier than 09:30Z)
        task("y", ann("a", "p", created="2026-01-02T10:00:00+02:00"), ann("b", "q", created="2026-01-02T09:30:00Z"),
             tid=2),
        # Label Studio's microseconds against a shorter fraction
        task("z", ann("a", "p", updated="2026-01-02T09:30:00.5Z"), ann("c", "q", updated="2026-01-02T09:30:00.250000Z"),
             tid=3),
    ]
    rows = read_label_file(write_json(tmp_path / "ls.json", tasks)).resolve("latest")
    assert dict(zip(rows.ids, rows.labels)) == {"x": "a", "y": "b", "z": "a"}
    assert dict(zip(rows.ids, rows.annotators)) == {"x": "p", "y": "q", "z": "p"}
    same = write_json(tmp_path / "same.json", [task(
        "x", ann("a", "p", updated="2026-01-02T10:00:00+01:00"), ann("b", "q", updated="2026-01-02T09:00:00Z"), tid=4)])
    with pytest.raises(DisagreementError, match="a tie at the latest time, 2026-01-02T09:00:00"):
        read_label_file(same).resolve("latest")
    partly = write_json(tmp_path / "partly.json", [task(
        "x", ann("a", "p", updated="2026-01-02T10:00:00Z"), ann("b", "q", aid=99), tid=5)])
    with pytest.raises(DisagreementError, match="no readable updated_at/created_at time on task 5 .*annotation 99"):
        read_label_file(partly).resolve("latest")


def test_the_same_item_in_two_tasks_and_in_two_table_rows(tmp_path):
    twice = write_json(tmp_path / "twice.json", [task("x", ann("a", "p"), tid=1), task("x", ann("b", "q"), tid=2)])
    with pytest.raises(DisagreementError, match=r"item 'x': 'a' by p \(task 1 \(index 0\).*'b' by q \(task 2 "):
        read_label_file(twice).resolve()
    pd.DataFrame({"id": ["x", "y", "x", "x", "y"], "label": ["a", "b", "b", "b", "b"],
                  "annotator": ["p", "p", "q", "r", "q"]}).to_csv(tmp_path / "long.csv", index=False)
    rows = read_label_file(tmp_path / "long.csv")
    with pytest.raises(DisagreementError, match=r"item 'x': 'a' by p \(line 2\); 'b' by q \(line 4\); 'b' by r "
                                                r"\(line 5\)"):
        rows.resolve()
    major = rows.resolve("majority")
    assert dict(zip(major.ids, major.labels)) == {"x": "b", "y": "b"}
    assert dict(zip(major.ids, major.annotators)) == {"x": "r", "y": "q"}   # rows have no times: the last row
    pd.DataFrame({"id": ["x", "x"], "label": ["b", "a"]}).to_csv(tmp_path / "two.csv", index=False)
    assert read_label_file(tmp_path / "two.csv").resolve("latest").labels == ["a"]   # the later row
    with pytest.raises(WorkspaceError, match="conflicts must be one of refuse, majority, latest, got 'vote'"):
        rows.resolve("vote")


# Through the workspace and the command line --------------------------------------------------------------
@pytest.fixture
def ws(tmp_path):
    items, truth = make_table(tmp_path, n=40)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=5))
    ws.query(4)
    return ws


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_refuses_disagreements_and_records_nothing(ws, tmp_path, capsys):
    ids = ws.batch()["item_id"].tolist()
    tasks = [task(ids[0], ann("a", "ann@x.org", updated="2026-01-01T10:00:00Z", aid=1),
                  ann("b", "bob@x.org", updated="2026-01-02T10:00:00Z", aid=2),
                  ann("b", "cy@x.org", updated="2026-01-01T12:00:00Z", aid=3), tid=500),
             task(ids[1], ann("c", "ann@x.org", aid=4), tid=501)]
    path = write_json(tmp_path / "ls.json", tasks)
    before = ws.store.label_events().to_dict("records")
    code, out, err = run(capsys, "import", ws.folder, path)
    assert code == 2 and out == ""
    assert (f"item {ids[0]!r}: 'a' by ann@x.org (task 500 (index 0), annotation 1, 2026-01-01T10:00:00Z); "
            "'b' by bob@x.org (task 500 (index 0), annotation 2") in err
    assert "nothing was recorded" in err
    assert ws.store.label_events().to_dict("records") == before
    with pytest.raises(DisagreementError):
        ws.import_labels(path)
    code, out, err = run(capsys, "import", ws.folder, path, "--conflicts", "majority")
    assert code == 0, err
    assert "2 new label(s)" in out and "1 item(s) with disagreeing labels settled by --conflicts majority" in out
    labels = ws.labels().set_index("item_id")
    assert labels.loc[ids[0], "label"] == "b" and labels.loc[ids[0], "annotator"] == "bob@x.org"
    assert labels.loc[ids[1], "label"] == "c"
    # The same file again under another policy: the label now recorded is kept (no conflict).
    res = ws.import_labels(path, conflicts="latest")
    assert res.labels.unchanged == 2 and res.settled == 1
    with pytest.raises(WorkspaceError, match="conflicts must be one of"):
        ws.import_labels(path, conflicts="first")
    with pytest.raises(SystemExit) as exit_:
        main(["import", str(ws.folder), str(path), "--conflicts", "first"])
    assert exit_.value.code == 2 and "invalid choice: 'first'" in capsys.readouterr().err


# Malformed Label Studio files -----------------------------------------------------------------------------
EXPECTED = re.escape("expected a JSON list of tasks, each with 'data': {'activebatch_id': ...} and 'annotations': "
                     "[{'result'")


def valid_export():
    return [task("x", ann("a", "p", updated="2026-01-01T10:00:00Z", aid=1), tid=10),
            {"activebatch_id": "y", "label": "b", "annotator": "q", "id": 11, "annotation_id": 2,
             "updated_at": "2026-01-01T10:00:00Z"}]


@pytest.mark.parametrize("data, message", [
    ({"tasks": []}, EXPECTED + "(.|\n)*got an object with keys 'tasks' \\(if the tasks are the list under 'tasks', "
                               "give that list itself\\)"),
    ("tasks", EXPECTED + ".*; got the string 'tasks'"),
    (3, "got the number 3"),
    ([["x"]], "the task at index 0 is a list of 1; " + EXPECTED),
    ([{"data": "x", "annotations": []}], "task at index 0 has 'data' the string 'x'; expected an object holding "
                                         "'activebatch_id'"),
    ([{"data": {"activebatch_id": {"k": 1}}, "annotations": []}], "has 'activebatch_id' an object with keys 'k'"),
    ([{"data": {"activebatch_id": "x"}, "annotations": {"result": []}}], "has 'annotations' an object with keys "
                                                                          "'result'; expected a list of annotations"),
    ([{"data": {"activebatch_id": "x"}, "annotations": ["a"]}], "annotation at index 0 is the string 'a'; expected "
                                                                "an object {'result': \\[{'type': 'choices'"),
    ([{"id": 4, "data": {"activebatch_id": "x"}, "annotations": [{"id": 9, "completed_by": 1}]}],
     "task 4 \\(index 0\\), annotation 9 has no 'result'; expected 'result': \\[{'type': 'choices', 'from_name': "
     "'label', 'value': {'choices': \\['<class>'\\]}}\\]"),
    ([{"data": {"activebatch_id": "x"}, "annotations": [{"result": {"type": "choices"}}]}],
     "has 'result' an object with keys 'type'; expected a list"),
    ([{"data": {"activebatch_id": "x"}, "annotations": [{"result": ["cat"]}]}],
     "result at index 0 is the string 'cat'; expected an object"),
    ([{"data": {"activebatch_id": "x"}, "annotations": [{"result": [{"type": "choices", "value": "cat"}]}]}],
     "has a choices result whose 'value' is the string 'cat'; expected {'choices': \\['<class>'\\]}"),
    ([{"data": {"activebatch_id": "x"},
       "annotations": [{"result": [{"type": "choices", "value": {"choices": "cat"}}]}]}],
     "gives 'choices' as the string 'cat'; expected a list holding one class name, like {'choices': \\['cat'\\]}"),
    ([{"data": {"activebatch_id": "x"}, "annotations": [{"result": [{"type": "choices",
                                                                     "value": {"choices": [["cat"]]}}]}]}],
     "chose a list of 1; expected a class name"),
    ([{"activebatch_id": "x", "label": {"choices": "cat"}}], "gives 'choices' as the string 'cat'"),
    ([{"activebatch_id": "x", "label": {"text": "cat"}}], "has 'label' an object with keys 'text'; expected a class "
                                                          "name or {'choices': \\['<class>'\\]}"),
    ([{"activebatch_id": "x", "label": True}], "chose true; expected a class name"),
])
def test_wrong_structures_name_what_is_expected(tmp_path, data, message):
    path = write_json(tmp_path / "bad.json", data)
    with pytest.raises(InputFileError, match=message):
        read_label_file(path)


def test_deeply_nested_json_is_refused(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputFileError, match="nested too deeply"):
        read_label_file(tmp_path / "deep.json")
    (tmp_path / "digits.json").write_text('[{"activebatch_id": ' + "9" * 10_000 + "}]")
    with pytest.raises(InputFileError, match="is not (valid|usable) JSON"):
        read_label_file(tmp_path / "digits.json")


WRONG = [None, True, 0, -7, 2**70, 1.5, "", "x", [], ["x"], [[]], {}, {"choices": "x"}, {"a": [1]}]


def paths(node, prefix=()):
    """Every place in a JSON tree: (path to the container, key)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix, k
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield prefix, k
            yield from paths(v, prefix + (k,))


def test_any_mutation_of_an_export_gives_a_clear_error_or_labels(tmp_path):
    """Every value of a valid export replaced by wrong types, or its key removed: the reader and
    the conflict policies either give labels or raise an error naming the file, never a
    KeyError/TypeError."""
    base = valid_export()
    rng = random.Random(0)
    places = list(paths(base))
    seen = {"ok": 0, "error": 0}
    path = tmp_path / "m.json"
    for where, key in places:
        for wrong in WRONG + ["delete"]:
            data = copy.deepcopy(base)
            parent = data
            for k in where:
                parent = parent[k]
            if wrong == "delete":
                if isinstance(parent, list):
                    continue
                del parent[key]
            else:
                parent[key] = copy.deepcopy(wrong)
            write_json(path, data)
            try:
                rows = read_label_file(path)
                for policy in ("refuse", "majority", "latest"):
                    rows.resolve(policy)
                seen["ok"] += 1
            except (InputFileError, DisagreementError) as exc:
                assert "Label Studio file" in str(exc) or "disagree" in str(exc), str(exc)
                seen["error"] += 1
    assert seen["ok"] > 20 and seen["error"] > 50, seen
    # And a few whole files of random JSON values.
    for _ in range(200):
        data = [rng.choice(WRONG + [valid_export()[0], valid_export()[1]]) for _ in range(rng.randint(0, 4))]
        write_json(path, data if rng.random() < 0.8 else rng.choice(WRONG))
        try:
            read_label_file(path).resolve(rng.choice(["refuse", "majority", "latest"]))
        except (InputFileError, DisagreementError):
            pass


def test_malformed_files_from_the_command_line_change_nothing(ws, tmp_path, capsys):
    before = ws.store.label_events().to_dict("records")
    for data in ({"tasks": []}, [{"data": {"activebatch_id": "x"}, "annotations": [{"result": [
            {"type": "choices", "value": {"choices": "a"}}]}]}]):
        code, out, err = run(capsys, "import", ws.folder, write_json(tmp_path / "bad.json", data))
        assert code == 2 and "Traceback" not in err and "expected" in err, err
    assert ws.store.label_events().to_dict("records") == before
