import subprocess
import sys

import pandas as pd
import pytest

from activebatch.cli import main


def test_demo_runs_and_writes_curves(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--dataset", "digits", "--strategies", "random,badge", "--rounds", "2", "--repeats", "1",
                 "--batch-size", "20", "--initial", "30", "--workers", "1", "--max-epochs", "20",
                 "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Test accuracy by number of labels" in text and "badge" in text
    frame = pd.read_csv(out / "results.csv")
    assert sorted(frame["n_labeled"].unique()) == [30, 50, 70]
    assert set(frame["strategy"]) == {"random", "badge"}
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_parallel_workers(tmp_path):
    out = tmp_path / "par"
    code = main(["demo", "--dataset", "digits", "--strategies", "entropy,coreset", "--rounds", "1", "--repeats", "1",
                 "--batch-size", "20", "--initial", "30", "--workers", "2", "--max-epochs", "10",
                 "--out", str(out)])
    assert code == 0
    assert len(pd.read_csv(out / "results.csv")) == 4


def test_errors_are_reported_cleanly(capsys, tmp_path):
    assert main(["demo", "--strategies", "random,bogus", "--out", str(tmp_path)]) == 2
    assert "unknown strategy 'bogus'" in capsys.readouterr().err
    assert main(["demo", "--dataset", "nope", "--out", str(tmp_path)]) == 2


def test_console_script_lists_strategies():
    res = subprocess.run([sys.executable, "-m", "activebatch.cli", "strategies"], capture_output=True, text=True)
    assert res.returncode == 0 and "badge" in res.stdout and "coreset" in res.stdout
    # plain text, whole sentences: no reST roles or literals, nothing cut off
    assert "`" not in res.stdout and ":class:" not in res.stdout and ":func:" not in res.stdout
    assert not any(line.endswith(" ...") for line in res.stdout.splitlines()) and "[needs: probs]" in res.stdout


def test_plain_text_unwraps_rest_markup():
    from activebatch.cli.main import plain_text

    doc = "Uses :func:`~activebatch.kernels.scores.margin_scores` and ``n``.\n\nMore."
    assert plain_text(doc) == "Uses margin_scores and n."
    assert plain_text(":class:`Committee <activebatch.learning.Committee>` members") == "Committee members"


@pytest.mark.parametrize("argv", [["strategies"], ["datasets"]])
def test_any_command_piped_into_a_reader_that_stops_ends_quietly(argv):
    cmd = [sys.executable, "-m", "activebatch.cli", *argv]
    res = subprocess.run(["bash", "-c", " ".join(cmd) + " | head -1"], capture_output=True, text=True)
    assert res.returncode == 0 and "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
