"""Workspace commands piped into a reader that stops early (``activebatch status DIR | head``)."""
import os
import subprocess
import sys

from activebatch.workspace import Workspace
from workspace_fixtures import TAB_CLASSES, make_table

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def test_status_into_a_closed_pipe_ends_quietly(tmp_path):
    items, _ = make_table(tmp_path, n=30)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES)
    for argv in (["status", str(ws.folder), "--no-plot"], ["status", str(ws.folder), "--json", "--no-plot"]):
        proc = subprocess.Popen([sys.executable, "-m", "activebatch.cli", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=ENV)
        proc.stdout.close()     # the reader is gone before the command prints anything
        err = proc.stderr.read().decode()
        proc.wait(60)
        assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
        assert proc.returncode == 141, (proc.returncode, err)


def test_status_into_head(tmp_path):
    """A real shell pipeline: ``head -n 1`` exits after the first line."""
    items, _ = make_table(tmp_path, n=30)
    ws = Workspace.create(tmp_path / "ws", items, TAB_CLASSES)
    # The reader closes its end at once, long before the command (which imports pandas) prints.
    cmd = (f"{sys.executable} -m activebatch.cli status {ws.folder} --json --no-plot "
           f"| {sys.executable} -c 'import sys; sys.stdin.close()'")
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    cmd = f"{sys.executable} -m activebatch.cli status {ws.folder} --no-plot | head -n 1"
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("workspace ") and res.stderr == "", res.stderr
