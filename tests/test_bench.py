"""Grid specs, resumable benches (killed and restarted), the executors and the report."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from activebatch.analysis import export_results, load_results
from activebatch.analysis.report import write_report
from activebatch.cli import main
from activebatch.experiments import GridSpec, ResultsStore, load_spec, run_bench

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "benchmarks" / "specs"

TINY = """
name = "tiny"
datasets = ["digits"]
models = ["mlp"]
batch_sizes = [20]
strategies = ["random", "margin", "badge"]
seeds = [0, 1, 2]
initial = 20
rounds = 3

[training]
lr = 1e-3
max_epochs = 15
"""


def _write(tmp_path, text, name="tiny.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_spec_loading_and_grid(tmp_path):
    spec = load_spec(_write(tmp_path, TINY))
    runs = spec.runs()
    assert len(runs) == 9 and runs[0].run_id == "digits|mlp|20|random|0"
    assert spec.rounds_for(20) == 3
    budget = GridSpec.from_dict(dict(datasets=["digits"], models=["mlp"], batch_sizes=[25], strategies=["random"],
                                     seeds=2, initial=20, budget=120))
    assert budget.seeds == [0, 1] and budget.rounds_for(25) == 4
    excl = GridSpec.from_dict(dict(datasets=["digits"], models=["mlp"], batch_sizes=[5, 10], strategies=["random"],
                                   seeds=1, rounds=1, exclude=[{"batch_size": 5}]))
    assert [k.batch_size for k in excl.runs()] == [10]
    per_b = GridSpec.from_dict(dict(datasets=["digits"], models=["mlp"], batch_sizes=[10, 20], strategies=["random"],
                                    seeds=1, initial=20, budget={"10": 100, "20": 220}))
    assert per_b.rounds_for(10) == 8 and per_b.rounds_for(20) == 10
    with pytest.raises(ValueError, match="no entry for batch size"):
        GridSpec.from_dict(dict(datasets=["digits"], models=["mlp"], batch_sizes=[10, 30], strategies=["random"],
                                seeds=1, initial=20, budget={"10": 100}))


@pytest.mark.parametrize("change,message", [
    ({"strategies": ["random", "nope"]}, "unknown strategy 'nope'"),
    ({"datasets": ["imagenet"]}, "unknown data set"),
    ({"models": ["vgg"]}, "unknown model"),
    ({"batch_sizes": [0]}, "batch_sizes must be an integer >= 1"),
    ({"rounds": None}, "exactly one of rounds"),
    ({"budget": 500}, "exactly one of rounds"),
    ({"colour": "red"}, "unknown key"),
    ({"training": {"lr": -1}}, "training.lr"),
    ({"training": {"epochs": 3}}, r"unknown \[training\]"),
    ({"strategy_options": {"badge": {"init": "x"}}}, "init"),
    ({"strategy_options": {"badge": {"k": 1}}}, "unknown option"),
    ({"seeds": [1, 1]}, "duplicates"),
    ({"strategies": ["bald"]}, r"dropout = p .* or committee = M"),
    ({"strategies": ["batchbald"], "training": {"dropout": 1.5}}, "training.dropout must be a number in"),
    ({"strategies": ["bald"], "training": {"dropout": 0.5, "mc_samples": 0}}, "training.mc_samples"),
])
def test_spec_errors(change, message):
    base = dict(datasets=["digits"], models=["mlp"], batch_sizes=[20], strategies=["random", "badge"], seeds=2,
                initial=20, rounds=2)
    base.update(change)
    base = {k: v for k, v in base.items() if v is not None}
    with pytest.raises((ValueError, TypeError), match=message):
        GridSpec.from_dict(base)


def test_mc_dropout_grid_runs_bald_without_a_committee(tmp_path):
    # [training] dropout puts dropout before the head, so a plain Learner supplies mc_probs
    spec = GridSpec.from_dict(dict(datasets=["digits"], models=["mlp"], batch_sizes=[10], strategies=["bald"],
                                   seeds=1, initial=20, rounds=1,
                                   training={"dropout": 0.3, "mc_samples": 8, "max_epochs": 3}))
    summary = run_bench(spec, tmp_path / "mc", progress=False)
    assert summary.completed == 1 and not summary.failed
    res = load_results(tmp_path / "mc")
    assert res["n_labeled"].max() == 30
    # selection via a proxy model: the proxy has the dropout too, so it offers mc_probs
    spec.loop = {"proxy": {"model": "mlp"}}
    summary = run_bench(spec, tmp_path / "mc-proxy", progress=False)
    assert summary.completed == 1 and not summary.failed, summary.failed


def test_shipped_specs_are_valid():
    small = load_spec(SPECS / "small.toml")
    assert len(small.runs()) >= 18
    paper = SPECS / "paper.toml"
    if paper.exists():
        assert len(load_spec(paper).runs()) > len(small.runs())


def test_every_shipped_spec_loads():
    import tomllib

    for path in sorted(SPECS.glob("*.toml")):
        names = tomllib.loads(path.read_text())["datasets"]
        # a data file a benchmark script writes first (pretrained.toml's features) is absent from a
        # fresh clone: such a spec is refused, naming the file
        absent = [n for n in names if "/" in n and not (path.parent / n).exists()]
        if absent:
            with pytest.raises(ValueError, match=re.escape(absent[0])):
                load_spec(path)
        else:
            assert load_spec(path).runs(), path.name


def test_the_batchbald_grid_shares_the_bayes_grids_setup():
    """reproduction_batchbald.toml writes into reproduction_bayes.toml's store, whose random runs
    are its baseline: everything but the strategies must agree."""
    bayes = load_spec(SPECS / "reproduction_bayes.toml").to_dict(portable=True)
    batchbald = load_spec(SPECS / "reproduction_batchbald.toml").to_dict(portable=True)
    assert batchbald["strategies"] == ["batchbald"] and "random" in bayes["strategies"]
    for key in set(bayes) | set(batchbald):
        if key not in ("name", "strategies"):
            assert bayes.get(key) == batchbald.get(key), key


def _bench_cmd(spec, out, *extra):
    return [sys.executable, "-m", "activebatch.cli", "bench", str(spec), "--out", str(out), *extra]


def test_killed_bench_resumes_without_loss_or_duplicates(tmp_path):
    spec = _write(tmp_path, TINY)
    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_bench_cmd(spec, out, "--workers", "1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    store_file = out / "results.sqlite"
    deadline = time.time() + 120
    done = set()
    while time.time() < deadline:
        if store_file.exists():
            done = ResultsStore(out).completed()
            if len(done) >= 2:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = ResultsStore(out).completed()
    assert 2 <= len(killed_at) < 9, "the bench should have been killed midway"
    before = load_results(out)

    res = subprocess.run(_bench_cmd(spec, out, "--workers", "2"), capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert f"{len(killed_at)} already recorded" in res.stdout
    store = ResultsStore(out)
    runs = store.runs()
    assert sorted(runs["run_id"]) == sorted(k.run_id for k in load_spec(spec).runs())  # every run exactly once
    frame = store.frame()
    assert len(frame) == 9 * 4
    assert not frame.duplicated(["strategy", "seed", "round"]).any()
    # what was recorded before the kill is unchanged
    key = ["strategy", "seed", "round"]
    merged = before.merge(frame, on=key, suffixes=("_before", "_after"))
    assert len(merged) == len(before)
    assert (merged["test_accuracy_before"] == merged["test_accuracy_after"]).all()

    # an uninterrupted bench gives the same results: runs are deterministic
    clean = tmp_path / "clean"
    assert main(["bench", str(spec), "--out", str(clean), "--workers", "1"]) == 0
    a = frame.sort_values(key).reset_index(drop=True)
    b = load_results(clean).sort_values(key).reset_index(drop=True)
    pd.testing.assert_series_equal(a["test_accuracy"], b["test_accuracy"])
    # a second call finds nothing to do
    summary = run_bench(spec, clean, progress=False)
    assert summary.completed == 0 and summary.skipped == 9


def test_dry_run_lists_runs(tmp_path, capsys):
    spec = _write(tmp_path, TINY)
    assert main(["bench", str(spec), "--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 9 and all(line.startswith("pending") for line in lines)
    # an existing folder without a store: still nothing created
    (tmp_path / "empty").mkdir()
    assert main(["bench", str(spec), "--out", str(tmp_path / "empty"), "--dry-run"]) == 0
    assert not (tmp_path / "dry").exists() and list((tmp_path / "empty").iterdir()) == []


def test_failing_run_is_recorded_and_the_grid_goes_on(tmp_path, monkeypatch):
    spec = load_spec(_write(tmp_path, TINY))
    spec.training["max_epochs"] = 2
    spec.strategy_options = {"badge": {"init": "bogus"}}  # only badge's runs fail (bypasses validation)
    summary = run_bench(spec, tmp_path / "fail", progress=False)
    assert summary.completed == 6 and len(summary.failed) == 3
    failures = ResultsStore(tmp_path / "fail").failures()
    assert len(failures) == 3 and failures["error"].str.contains("init must be").all()
    # failed runs are retried on the next call
    spec.strategy_options = {}
    assert run_bench(spec, tmp_path / "fail", progress=False).completed == 3


def test_ray_executor(tmp_path):
    ray = pytest.importorskip("ray")
    spec = load_spec(_write(tmp_path, TINY.replace('"margin", "badge"', '"badge"').replace("[0, 1, 2]", "[0, 1]")))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # pragma: no cover - environment-dependent
        pytest.skip(f"Ray cannot start here: {exc}")
    try:
        summary = run_bench(spec, tmp_path / "ray", executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert summary.completed == 4 and not summary.failed
    ray_frame = load_results(tmp_path / "ray")
    local = run_bench(spec, tmp_path / "local", executor="local", workers=1, progress=False)
    assert local.completed == 4
    key = ["strategy", "seed", "round"]
    a = ray_frame.sort_values(key).reset_index(drop=True)
    b = load_results(tmp_path / "local").sort_values(key).reset_index(drop=True)
    pd.testing.assert_series_equal(a["test_accuracy"], b["test_accuracy"])


def test_small_spec_report_end_to_end(tmp_path):
    out = tmp_path / "small"
    assert main(["bench", str(SPECS / "small.toml"), "--out", str(out), "--workers", "2"]) == 0
    assert main(["report", str(out), "--export", "csv,parquet"]) == 0
    report = out / "report"
    text = (report / "report.md").read_text()
    for fig in ["learning_curves.png", "penalty_matrix.png", "normalized_error_cdf.png", "selection_times.png",
                "class_entropy.png"]:
        assert (report / fig).read_bytes()[:4] == b"\x89PNG"
        assert f"]({fig})" in text
    assert "| column mean |" in text and "Budgets" in text
    page = (report / "report.html").read_text()
    # one self-contained page: every figure embedded, no file it needs beside it, tables sortable
    assert page.count('src="data:image/png;base64,') == text.count("![") and 'src="learning' not in page
    assert page.count('<table class="sortable">') == (text.count("| column mean |") + text.count("| dataset |") + 1
                                                  + text.count("| strategy | median |")
                                                  + text.count("| source | claim |") + text.count("| setting | runs |"))
    assert "## The BADGE paper's claims" in text and "## How these results were produced" in text
    assert "<h2>Pairwise penalty matrix</h2>" in page and "addEventListener('click'" in page
    frame = load_results(out)
    pq = pd.read_parquet(report / "results.parquet")
    assert len(pq) == len(frame) and list(pq["class_histogram"].iloc[0]) == frame["class_histogram"].iloc[0]
    csv = pd.read_csv(report / "results.csv")
    assert len(csv) == len(frame)
    with pytest.raises(ValueError, match="suffix"):
        export_results(frame, tmp_path / "x.xlsx")


def test_report_on_an_empty_store_is_refused(tmp_path):
    ResultsStore(tmp_path)
    with pytest.raises(ValueError, match="no runs"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_reading_a_store_leaves_its_file_byte_for_byte(tmp_path):
    """A report of a committed store changes nothing in it: no journal-mode switch, no schema upgrade,
    no marker written, no -wal or -shm files left behind; a store from before the added metric
    columns reads with them as NaN."""
    import hashlib
    import sqlite3

    store = ResultsStore(tmp_path / "s")
    for strategy in ("random", "margin"):
        for seed in range(2):
            rows = [dict(dataset="toy", model="mlp", batch_size=10, strategy=strategy, seed=seed, round=r,
                         n_labeled=10 + 10 * r, test_accuracy=0.5 + 0.1 * r + 0.01 * seed, train_seconds=0.1,
                         select_seconds=0.01, class_histogram=[1, 1], class_entropy=0.69, train_epochs=3,
                         train_accuracy=1.0) for r in range(4)]
            store.record_run(f"toy|mlp|10|{strategy}|{seed}", rows, seconds=1.0)
    with sqlite3.connect(store.path) as con:   # as committed: rollback journal, and the older schema
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("ALTER TABLE rounds DROP COLUMN macro_f1")
    before = hashlib.sha256(store.path.read_bytes()).hexdigest()
    frame = load_results(store.path)
    write_report(store.path, tmp_path / "report")
    assert hashlib.sha256(store.path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["results.sqlite"]
    assert len(frame) == 16 and frame["macro_f1"].isna().all()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        with ResultsStore(store.path, create=False)._connect() as con:
            con.execute("DELETE FROM runs")


class _Killed(BaseException):
    """The bench process dying mid-run (not an error a run records: it stops the bench)."""


def test_a_bench_killed_mid_run_continues_the_run_from_its_last_round(tmp_path, monkeypatch):
    import activebatch.loop.runner as loop_runner
    from activebatch.experiments.bench import CHECKPOINTS
    from activebatch.experiments.runner import checkpoint_path

    spec = load_spec(_write(tmp_path, TINY.replace('"random", "margin", "badge"', '"badge"')
                            .replace("[0, 1, 2]", "[0]").replace("rounds = 3", "rounds = 4")))
    clean = run_bench(spec, tmp_path / "clean", progress=False)
    assert clean.completed == 1 and clean.resumed == 0
    assert not list((tmp_path / "clean" / CHECKPOINTS).iterdir())   # deleted once recorded

    out = tmp_path / "killed"
    calls, real = {"n": 0}, loop_runner.select_round

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_runner, "select_round", dying)
    with pytest.raises(_Killed):
        run_bench(spec, out, progress=False)
    monkeypatch.undo()
    run_id = spec.runs()[0].run_id
    assert ResultsStore(out).completed() == set()
    assert checkpoint_path(out / CHECKPOINTS, run_id).exists()

    summary = run_bench(spec, out, progress=False)
    assert summary.completed == 1 and summary.resumed == 1 and "1 continued from checkpoints" in str(summary)
    assert not checkpoint_path(out / CHECKPOINTS, run_id).exists()
    a, b = load_results(tmp_path / "clean"), load_results(out)
    cols = ["round", "n_labeled", "test_accuracy", "class_histogram", "train_epochs"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    # the run's seconds count both executions
    assert ResultsStore(out).runs()["seconds"].iloc[0] > 0


def test_dry_run_says_after_which_round_a_pending_run_continues(tmp_path, capsys):
    from activebatch.experiments.bench import CHECKPOINTS
    from activebatch.experiments.runner import checkpoint_path, execute_run

    path = _write(tmp_path, TINY.replace('"random", "margin", "badge"', '"margin"').replace("rounds = 3", "rounds = 1"))
    spec = load_spec(path)
    first, second, third = (k.run_id for k in spec.runs())
    out = tmp_path / "out"
    execute_run(spec.to_dict(), first, out / CHECKPOINTS)     # leaves the checkpoint of its last round
    checkpoint_path(out / CHECKPOINTS, second).write_bytes(b"garbage")
    assert main(["bench", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    note = r"\(continues after round 1, \d+ s spent until then; its last selection took \d+ s\)"
    assert re.fullmatch(rf"pending  {re.escape(first)}  {note}", lines[0])
    assert lines[1].startswith(f"pending  {second}  (checkpoint unreadable:")
    assert lines[2] == f"pending  {third}"


def test_selection_notes_reach_the_store_and_the_report(tmp_path, monkeypatch):
    """A strategy's notes on a round (e.g. BatchBALD saturating) are recorded with the round and
    counted per setting in the report; rounds recorded before notes were kept are said to be."""
    import sqlite3

    import activebatch.loop.runner as loop_runner

    real = loop_runner.select_round

    def noting(strategy, *args, **kwargs):
        sel = real(strategy, *args, **kwargs)
        return sel.replace(notes=("saturated after 7 picks",)) if strategy.name == "margin" else sel

    monkeypatch.setattr(loop_runner, "select_round", noting)
    spec = load_spec(_write(tmp_path, TINY.replace('"random", "margin", "badge"', '"random", "margin"')
                            .replace("[0, 1, 2]", "[0, 1]").replace("max_epochs = 15", "max_epochs = 3")))
    out = tmp_path / "out"
    run_bench(spec, out, progress=False)
    frame = load_results(out)
    margin = frame[frame["strategy"] == "margin"]
    assert margin.loc[margin["round"] == 0, "selection_notes"].map(len).eq(0).all()   # round 0 selects nothing
    assert margin.loc[margin["round"] > 0, "selection_notes"].map(lambda n: n == ["saturated after 7 picks"]).all()
    assert frame.loc[frame["strategy"] == "random", "selection_notes"].map(len).eq(0).all()
    # a run recorded before notes were kept: NULL in the column, None in the frame, not counted
    with sqlite3.connect(out / "results.sqlite") as con:
        con.execute("UPDATE rounds SET selection_notes = NULL WHERE strategy = 'margin' AND seed = 1")
    frame = load_results(out)
    assert frame.loc[(frame["strategy"] == "margin") & (frame["seed"] == 1), "selection_notes"].isna().all()
    text = write_report(out).read_text()
    section = text[text.index("## Selection notes"):].split("\n## ")[0]
    assert "| margin, digits, B = 20 | 3 of 3 | saturated after 7 picks |" in section
    assert "random" not in section.split("|", 1)[1]
    assert "3 of 12 selection rounds were recorded before notes were kept" in section
    # CSV keeps them as JSON text
    csv = export_results(frame, tmp_path / "r.csv")
    assert '"[""saturated after 7 picks""]"' in csv.read_text()
