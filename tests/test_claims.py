"""The BADGE paper's claims read off hand-built results tables whose verdicts are worked by hand."""
import math

import pandas as pd
import pytest

from activebatch.analysis.claims import NE_LIMIT, complete_settings, paper_claims

# RANDOM's mean curve for M = 10, B = 10 (as in test_protocol): n0 = 70, budgets 20 and 30, where
# RANDOM's mean accuracies are 0.6 and 0.7, i.e. mean errors 0.4 and 0.3.
RANDOM = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.96, 0.96]
JITTER = [-0.01, 0.0, 0.01]


def rows(strategy, seed, accs, *, B=10, dataset="d", model="mlp"):
    M = 10
    return [dict(dataset=dataset, model=model, batch_size=B, strategy=strategy, seed=seed, round=r,
                 n_labeled=M + r * B, test_accuracy=a, train_seconds=1.0, select_seconds=0.1,
                 class_histogram=[1, 1], class_entropy=math.log(2), train_epochs=1, train_accuracy=1.0)
            for r, a in enumerate(accs)]


def curve(delta):
    """RANDOM's curve shifted by ``delta`` at the two budgets (labels 20 and 30)."""
    c = list(RANDOM)
    c[1] += delta
    c[2] += delta
    return c


def grid(shifts, *, B=10, dataset="d", model="mlp", seeds=(0, 1, 2)):
    """Every strategy of ``shifts`` (name -> accuracy shift at the budgets) plus RANDOM, per seed."""
    out = []
    for seed in seeds:
        j = JITTER[seed % 3]
        out += rows("random", seed, [a + j for a in RANDOM], B=B, dataset=dataset, model=model)
        for s, delta in shifts.items():
            out += rows(s, seed, [a + j for a in curve(delta)], B=B, dataset=dataset, model=model)
    return out


def by_source(claims):
    return {c.source: c for c in claims}


def test_every_claim_holds_on_a_grid_built_to_satisfy_them():
    # d1 at B = 10: badge +0.10, margin +0.05, kdpp +0.02, coreset -0.05 (worse than random).
    # d1 at B = 20: margin only +0.01 (degrades), badge +0.10.
    f = pd.DataFrame(grid({"badge": 0.10, "margin": 0.05, "coreset": -0.05, "kdpp": 0.02}, dataset="d1")
                     + grid({"badge": 0.10, "margin": 0.01, "coreset": 0.0, "kdpp": 0.02}, dataset="d1", B=20))
    claims, settings = paper_claims(f)
    c = by_source(claims)
    assert settings == ["d1/B=10/mlp", "d1/B=20/mlp"]
    assert c["Figure 4"].verdict == "holds"
    assert c["Figure 5"].verdict == "holds"
    # margin's normalised errors at B = 10: 0.35 / 0.4 and 0.25 / 0.3; at B = 20 the shifts are 0.01
    m10 = (0.35 / 0.4 + 0.25 / 0.3) / 2
    m20 = (0.39 / 0.4 + 0.29 / 0.3) / 2
    assert c["Appendix E"].verdict == "holds"
    assert f"{m10:.3f} at B = 10 and {m20:.3f} at B = 20" in c["Appendix E"].measured
    assert c["Figure 3, section 5"].verdict == "holds"
    assert "on 1 of 2 MLP settings: d1/B=10/mlp" in c["Figure 3, section 5"].measured


def test_each_claim_fails_where_the_results_contradict_it():
    # margin beats badge everywhere; badge's error is 1.25 x random's at the first budget; core-set
    # beats random; margin gains at the larger batch size
    f = pd.DataFrame(grid({"badge": -0.10, "margin": 0.05, "coreset": 0.05}, dataset="d1")
                     + grid({"badge": -0.10, "margin": 0.10, "coreset": 0.05}, dataset="d1", B=20))
    c = by_source(paper_claims(f)[0])
    assert c["Figure 4"].verdict == "does not hold"
    assert "BADGE not lowest" in c["Figure 4"].measured
    assert c["Figure 5"].verdict == "does not hold"
    # badge's errors are 0.5 / 0.4 = 1.25 and 0.4 / 0.3 = 1.333 random's at the two budgets of both
    # settings (B = 20's budgets, 30 and 50 labels, fall on the same rounds of the curve)
    assert f"badge: largest {0.4 / 0.3:.3f} (d1/B=10/mlp, 30 labels)" in c["Figure 5"].measured
    assert f"4 of 4 points above {NE_LIMIT}" in c["Figure 5"].measured
    assert c["Figure 3, section 5"].verdict == "does not hold"
    assert c["Appendix E"].verdict == "does not hold"


def test_claims_are_not_measured_without_what_they_need():
    f = pd.DataFrame(grid({"badge": 0.1}))
    c = by_source(paper_claims(f)[0])
    assert c["Figure 4"].verdict == "holds"
    assert c["Figure 5"].verdict == "not measured"       # no margin
    assert c["Figure 3, section 5"].verdict == "not measured"
    assert c["Appendix E"].verdict == "not measured"     # one batch size


def test_figure_4_is_not_measured_when_no_setting_has_a_budget():
    # RANDOM reaches 99% of its final accuracy at the first acquisition (n0 = M + B): no budget, an
    # all-zero matrix, in which BADGE would otherwise be "lowest" (tied with everyone)
    flat = [0.5, 0.96, 0.96]
    f = pd.DataFrame([r for seed in (0, 1, 2) for s, d in (("random", 0.0), ("badge", 0.01))
                      for r in rows(s, seed, [a + d + JITTER[seed] for a in flat])])
    c = by_source(paper_claims(f)[0])
    assert c["Figure 4"].verdict == "not measured"
    assert "no setting has a budget" in c["Figure 4"].measured


def test_only_complete_settings_count():
    # at B = 20 margin has run one seed of three: that setting is left out, so Appendix E has one
    # batch size only and is not measured, and the verdicts use B = 10 alone
    f = pd.DataFrame(grid({"badge": 0.1, "margin": 0.05})
                     + [r for r in grid({"badge": 0.1, "margin": 0.05}, B=20)
                        if not (r["strategy"] == "margin" and r["seed"] > 0)])
    kept = complete_settings(f)
    assert sorted(kept["batch_size"].unique()) == [10]
    claims, settings = paper_claims(f)
    assert settings == ["d/B=10/mlp"]
    assert by_source(claims)["Appendix E"].verdict == "not measured"


def test_the_report_shows_the_claims_and_the_grid_that_produced_them(tmp_path):
    from activebatch.analysis.report import write_report
    from activebatch.experiments.spec import GridSpec
    from activebatch.experiments.store import ResultsStore

    pytest.importorskip("matplotlib")
    store = ResultsStore(tmp_path / "results.sqlite")
    spec = GridSpec(name="toy", datasets=["d"], models=["mlp"], batch_sizes=[10], strategies=["random", "badge",
                    "margin"], seeds=[0, 1, 2, 3], initial=10, rounds=8)
    store.set_meta("spec:toy", spec.to_dict())
    frame = pd.DataFrame(grid({"badge": 0.1, "margin": 0.05}))
    for key, g in frame.groupby(["strategy", "seed"]):
        run_id = f"d|mlp|10|{key[0]}|{key[1]}"
        store.record_run(run_id, g.to_dict("records"), seconds=12.0)
    md_path = write_report(tmp_path, tmp_path / "out", markdown=tmp_path / "docs" / "results.md")
    text = md_path.read_text()
    assert "## The BADGE paper's claims" in text
    assert "| Figure 4 | BADGE has the lowest column mean of the overall penalty matrix. | **holds** |" in text
    assert "Grid `toy`: 9 of its 12 runs are recorded." in text
    assert "Compute: 0.0 hours over 9 runs" in text
    assert "![learning curves](../out/learning_curves.png)" in text     # links point into the report folder
    assert "![learning curves](learning_curves.png)" in (tmp_path / "out" / "report.md").read_text()
    # the report depends only on the store: written again, it is the same bytes
    again = write_report(tmp_path, tmp_path / "out2", markdown=tmp_path / "docs" / "again.md")
    assert again.read_text() == text.replace("../out/", "../out2/")


def test_the_report_names_data_files_by_their_file_name():
    from activebatch.analysis.report import _short_names

    s = pd.Series(["/home/u/data/feats.npz", "mnist-5k", "/home/u/data/feats.npz@imbalance=10", "letter@imbalance=100"])
    assert _short_names(s).tolist() == ["feats.npz", "mnist-5k", "feats.npz@imbalance=10", "letter@imbalance=100"]
    clash = pd.Series(["/a/feats.npz", "/b/feats.npz"])
    assert _short_names(clash).tolist() == clash.tolist()    # two files of one name keep their paths


def test_a_strategy_missing_from_some_settings_is_flagged_not_scored_zero(tmp_path):
    from activebatch.analysis import penalty_matrix
    from activebatch.analysis.report import write_report
    from activebatch.experiments.store import ResultsStore

    pytest.importorskip("matplotlib")
    # data set "d": badge and margin both ran; data set "e": margin has not run yet (a grid in progress)
    frame = pd.DataFrame(grid({"badge": 0.1, "margin": 0.05}) + grid({"badge": 0.1}, dataset="e"))
    pen = penalty_matrix(frame)
    assert "e/10/mlp: margin did not run in this setting; its entries count nothing here" in pen.issues
    assert not any(i.startswith("d/10/mlp: ") and "did not run" in i for i in pen.issues)
    store = ResultsStore(tmp_path / "results.sqlite")
    for key, g in frame.groupby(["dataset", "strategy", "seed"]):
        store.record_run(f"{key[0]}|mlp|10|{key[1]}|{key[2]}", g.to_dict("records"), seconds=1.0)
    text = write_report(tmp_path, tmp_path / "out").read_text()
    assert "Not every strategy ran in every one of the 2 settings above: margin in 1." in text
    # by data set: margin has a column mean on "d" (it loses to badge: 1/3 of a setting per row) and a dash on "e"
    assert "| strategy | d (max 1) | e (max 1) |" in text
    assert "| margin | 0.33 | - |" in text
    assert "- e/10/mlp: margin did not run in this setting; its entries count nothing here" in text
