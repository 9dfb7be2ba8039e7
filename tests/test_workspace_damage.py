"""A damaged workspace store is reported (never rewritten), and backups bring it back."""
import hashlib
import os
import random
import sqlite3
import subprocess

import httpx
import pytest

from activebatch.cli import main
from activebatch.workspace import ModelConfig, Workspace, WorkspaceError, WorkspaceStore
from activebatch.workspace.errors import StoreDamagedError
from activebatch.workspace.health import database_failure
from activebatch.workspace.server import LabelServer
from workspace_fixtures import TAB_CLASSES, make_table, write_labels


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ws(tmp_path, capsys):
    """A workspace with one round and labels imported in two commands: three backups (before the
    round was recorded, before each import)."""
    items, truth = make_table(tmp_path, n=60)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=5))
    ids = ws.query(6).item_ids
    write_labels(tmp_path / "l1.csv", ids[:3], truth)
    write_labels(tmp_path / "l2.csv", ids[3:], truth)
    for name in ("l1.csv", "l2.csv"):
        code, _, err = run(capsys, "import", ws.folder, tmp_path / name)
        assert code == 0, err
    return ws, truth, ids


def damage(path, kind):
    size = path.stat().st_size
    if kind == "truncated":
        os.truncate(path, size // 2)
    elif kind == "empty":
        os.truncate(path, 0)
    elif kind == "middle":   # one whole page in the middle of the file replaced by noise
        page = 4096
        with open(path, "r+b") as f:
            f.seek((size // 2) // page * page)
            f.write(random.Random(0).randbytes(page))
    elif kind == "header":
        with open(path, "r+b") as f:
            f.write(b"\0" * 100)
    assert path.stat().st_size == (0 if kind == "empty" else size // 2 if kind == "truncated" else size)


@pytest.mark.parametrize("kind", ["truncated", "middle", "header", "empty"])
def test_every_command_reports_the_damage_and_leaves_the_file_alone(ws, tmp_path, capsys, kind):
    ws, truth, ids = ws
    store = ws.folder / "workspace.sqlite"
    newest = WorkspaceStore(ws.folder).backups()[-1]
    damage(store, kind)
    before = (store.stat().st_size, digest(store))
    commands = [["status", ws.folder], ["status", ws.folder, "--json"], ["query", ws.folder, "-n", "2"],
                ["import", ws.folder, tmp_path / "l1.csv"], ["export", ws.folder, "--out", tmp_path / "out.csv"],
                ["serve", ws.folder, "--port", "0"]]
    for argv in commands:
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert f"the workspace store {str(store)!r} is damaged: " in err, (argv, err)
        assert "activebatch changed nothing in it" in err and "Traceback" not in err
        assert f"The newest backup is {str(newest)!r}" in err and "3 backup(s)" in err, err
        assert f"mv workspace.sqlite* damaged/ && cp backups/{newest.name} workspace.sqlite)" in err
        assert (store.stat().st_size, digest(store)) == before, argv   # never written, never grown
    assert not (tmp_path / "out.csv").exists()
    assert len(list((ws.folder / "backups").iterdir())) == 3   # no backup of a damaged file
    if kind == "empty":
        assert "is damaged: it is empty (0 bytes)" in err
    if kind == "truncated":
        assert "it is truncated (" in err


def test_the_restore_line_in_the_message_brings_the_newest_backup_back(ws, tmp_path):
    ws, truth, ids = ws
    at_backup = WorkspaceStore(ws.store.backups()[-1], backups=0).labels()["item_id"].tolist()
    assert sorted(at_backup) == sorted(ids[:3])
    damage(ws.folder / "workspace.sqlite", "middle")
    with pytest.raises(StoreDamagedError) as err:
        Workspace(ws.folder)
    line = next(ln.strip() for ln in str(err.value).splitlines() if ln.strip().startswith("(cd "))
    subprocess.run(["bash", "-c", line], check=True)
    back = Workspace(ws.folder)
    assert sorted(back.labels()["item_id"]) == sorted(ids[:3])      # the state before the second import
    assert back.store.integrity_check() == "ok" and back.store.last_round() == 1
    assert (ws.folder / "damaged" / "workspace.sqlite").is_file()   # the damaged file is kept aside
    # The restored workspace works: the second file imports again.
    res = back.import_labels(tmp_path / "l2.csv")
    assert res.labels.recorded == 3


def test_damage_found_while_running_is_reported(ws, tmp_path):
    ws, truth, ids = ws
    server = LabelServer(ws.folder, port=0).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/api/state").status_code == 200
            damage(ws.folder / "workspace.sqlite", "middle")
            r = c.get("/api/state")
            assert r.status_code == 503 and "is damaged" in r.json()["error"], r.text
    finally:
        server.stop()
    with pytest.raises(StoreDamagedError, match="is damaged"):
        ws.status(plot=False)


def test_a_sound_store_with_a_database_error_is_not_called_damaged(ws):
    ws, _, _ = ws
    err = database_failure(ws.store.path, sqlite3.OperationalError("database is locked"))
    assert type(err) is WorkspaceError
    assert "could not be used: database is locked; another activebatch command held the store" in str(err)
    assert "not damaged" in str(err)


def test_a_file_that_is_no_workspace(tmp_path):
    (tmp_path / "ws").mkdir()
    con = sqlite3.connect(tmp_path / "ws" / "workspace.sqlite")
    con.execute("CREATE TABLE other (x)")
    con.close()
    with pytest.raises(WorkspaceError, match="is not an activebatch workspace store"):
        Workspace(tmp_path / "ws")


def test_backups_rotate_and_only_changes_are_backed_up(ws, tmp_path, monkeypatch, capsys):
    ws, truth, ids = ws
    folder = ws.folder
    assert len(WorkspaceStore(folder).backups()) == 3
    # A failed command and a read-only one add no backup of an unchanged store.
    code, _, _ = run(capsys, "import", folder, tmp_path / "absent.csv")
    run(capsys, "status", folder, "--no-plot")
    assert len(WorkspaceStore(folder).backups()) == 3
    monkeypatch.setenv("ACTIVEBATCH_BACKUPS", "3")
    made = []
    for k in range(4):
        w = Workspace(folder)
        w.undo(ids[k], annotator=w.labels().set_index("item_id").loc[ids[k], "annotator"])
        made.append(w.store.backups()[-1])
    kept = WorkspaceStore(folder).backups()
    assert kept == made[-3:] and len(set(made)) == 4
    # Each backup is the state before its command's write.
    counts = [len(WorkspaceStore(b, backups=0).labels()) for b in kept]
    assert counts == [5, 4, 3]
    monkeypatch.setenv("ACTIVEBATCH_BACKUPS", "0")
    w = Workspace(folder)
    w.label(ids[0], truth[ids[0]], annotator="z")
    assert WorkspaceStore(folder).backups() == kept
    monkeypatch.setenv("ACTIVEBATCH_BACKUPS", "many")
    with pytest.raises(WorkspaceError, match="ACTIVEBATCH_BACKUPS must be a whole number of backups to keep"):
        Workspace(folder)


def test_no_backup_yet_says_so(tmp_path, capsys):
    items, _ = make_table(tmp_path, n=30)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES)
    damage(ws.folder / "workspace.sqlite", "truncated")
    code, _, err = run(capsys, "status", ws.folder)
    assert code == 2 and "There is no backup in" in err and "activebatch init" in err


def test_activebatch_restore_brings_a_backup_back(ws, tmp_path, capsys):
    ws, truth, ids = ws
    backups = ws.store.backups()
    damage(ws.folder / "workspace.sqlite", "truncated")
    code, _, err = run(capsys, "status", ws.folder)
    assert code == 2 and f"activebatch restore {ws.folder}" in err
    # a damaged backup is refused, and nothing is moved
    bad = ws.folder / "backups" / "workspace-20000101T000000000000Z.sqlite"
    bad.write_bytes(b"not a database")
    code, _, err = run(capsys, "restore", ws.folder, "--backup", bad.name)
    assert code == 2 and "is damaged too" in err and (ws.folder / "workspace.sqlite").exists()
    bad.unlink()
    code, out, err = run(capsys, "restore", ws.folder)
    assert code == 0, err
    assert f"restored {backups[-1].name}" in out
    back = Workspace(ws.folder)
    assert sorted(back.labels()["item_id"]) == sorted(ids[:3]) and back.store.integrity_check() == "ok"
    aside = list((ws.folder / "damaged").iterdir())
    assert len(aside) == 1 and (aside[0] / "workspace.sqlite").stat().st_size > 0     # kept, not deleted
    code, out, _ = run(capsys, "restore", ws.folder, "--backup", backups[0].name)     # an older one, by name
    assert code == 0 and Workspace(ws.folder).labels().empty
    code, _, err = run(capsys, "restore", ws.folder, "--backup", "nope.sqlite")
    assert code == 2 and "does not exist" in err
