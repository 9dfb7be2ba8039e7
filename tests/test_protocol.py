"""The BADGE paper's protocol on hand-built results tables with hand-worked answers."""
import math

import numpy as np
import pandas as pd
import pytest

from activebatch.analysis import (
    budget_table,
    learning_curves,
    normalized_error_cdf,
    normalized_errors,
    penalty_matrices_by,
    penalty_matrix,
    selection_times,
)


def rows(strategy, seed, accs, *, M=10, B=10, dataset="d", model="mlp", select=0.5):
    """One run: accuracies at n_labeled = M, M + B, M + 2B, ..."""
    return [dict(dataset=dataset, model=model, batch_size=B, strategy=strategy, seed=seed, round=r,
                 n_labeled=M + r * B, test_accuracy=a, train_seconds=1.0, select_seconds=0.0 if r == 0 else select,
                 class_histogram=[1, 1], class_entropy=math.log(2))
            for r, a in enumerate(accs)]


# RANDOM's mean curve for M = 10, B = 10: 0.5 0.6 0.7 0.8 0.9 0.95 0.96 0.96 0.96 (labels 10..90).
# final = 0.96, 99% of it = 0.9504: first reached at 0.96 with 70 labels -> n0 = 70.
# floor(log2((70 - 10)/10)) = floor(log2 6) = 2 -> budgets 10 + 10 = 20 and 10 + 20 = 30.
RANDOM = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.96, 0.96]


def base_frame():
    out = []
    for seed, jitter in enumerate([-0.01, 0.0, 0.01]):
        out += rows("random", seed, [a + jitter for a in RANDOM])
    return out


def test_budget_rule():
    t = budget_table(pd.DataFrame(base_frame()))
    assert len(t) == 1
    r = t.iloc[0]
    assert r["M"] == 10 and r["B"] == 10 and r["n0"] == 70
    assert math.isclose(r["final_accuracy"], 0.96)
    assert r["budgets"] == [20, 30] and r["n_budgets"] == 2 and r["reason"] is None


def test_budget_rule_yields_nothing_is_reported():
    # RANDOM reaches its final accuracy at once: n0 = M + B, log2(1) = 0 -> no budget
    f = pd.DataFrame(rows("random", 0, [0.5, 0.9, 0.9, 0.9]) + rows("random", 1, [0.5, 0.9, 0.9, 0.9])
                     + rows("badge", 0, [0.5, 0.95, 0.9, 0.9]) + rows("badge", 1, [0.5, 0.95, 0.9, 0.9]))
    res = penalty_matrix(f)
    assert res.n_settings == 0
    assert (res.matrix.to_numpy() == 0).all()
    assert any("budget rule yields nothing" in i for i in res.issues)
    ne, issues = normalized_errors(f)
    assert ne.empty and issues


def test_penalty_matrix_hand_computed():
    f = base_frame()
    # At L = 20 (round 1) RANDOM errors per seed: 0.41, 0.40, 0.39.
    # A: errors 0.30, 0.31, 0.28 -> d = e_R - e_A = 0.11, 0.09, 0.11: mean 0.10333, std 0.011547,
    #    z = sqrt(3) * 0.10333 / 0.011547 = 15.5 > 1.96 -> A beats RANDOM.
    # At L = 30 (round 2) RANDOM errors 0.31, 0.30, 0.29; A errors 0.32, 0.27, 0.31 -> d = -0.01, 0.03, -0.02:
    #    mean 0, std 0.0265 -> z = 0: no win either way.
    # C equals RANDOM at every point (same errors on every seed): zero variance, zero mean -> tie.
    A = [0.5, 0.70, 0.68, 0.8, 0.9, 0.95, 0.96, 0.96, 0.96]
    for seed, (a1, a2) in enumerate([(0.70, 0.68), (0.69, 0.73), (0.72, 0.69)]):
        acc = list(A)
        acc[1], acc[2] = a1, a2
        f += rows("A", seed, acc)
    for seed, jitter in enumerate([-0.01, 0.0, 0.01]):
        f += rows("C", seed, [a + jitter for a in RANDOM])
    res = penalty_matrix(pd.DataFrame(f))
    P = res.matrix
    assert res.n_settings == 1
    # weight 1/n_{D,B,A} = 1/2 per budget
    assert P.loc["A", "random"] == pytest.approx(0.5)
    assert P.loc["A", "C"] == pytest.approx(0.5)
    assert P.loc["random", "A"] == 0 and P.loc["C", "A"] == 0
    assert P.loc["random", "C"] == 0 and P.loc["C", "random"] == 0
    # column means over all three rows (diagonal included): A 0, C 0.5/3, random 0.5/3
    np.testing.assert_allclose(res.column_means.to_numpy(), [0.0, 1 / 6, 1 / 6])
    comp = res.comparisons.set_index(["budget", "i", "j"])
    assert comp.loc[(20, "A", "random"), "z"] == pytest.approx(math.sqrt(3) * 0.103333 / 0.0115470, rel=1e-3)
    assert comp.loc[(30, "A", "random"), "z"] == pytest.approx(0.0, abs=1e-9)
    assert any("C vs random has zero variance" in i and "tie" in i for i in res.issues)


def test_zero_variance_nonzero_mean_is_a_win():
    f = base_frame()
    # B is exactly 0.05 better than RANDOM on every seed at every point -> zero variance, mean 0.05
    for seed, jitter in enumerate([-0.01, 0.0, 0.01]):
        f += rows("B", seed, [a + jitter + 0.05 for a in RANDOM])
    res = penalty_matrix(pd.DataFrame(f))
    assert res.matrix.loc["B", "random"] == pytest.approx(1.0)  # 2 budgets x 1/2
    assert res.matrix.loc["random", "B"] == 0
    assert any("zero variance" in i and "significant in its direction" in i for i in res.issues)


def test_missing_seeds_use_paired_seeds_and_too_few_are_skipped():
    f = base_frame()
    f += rows("A", 0, [0.5, 0.9, 0.9, 0.9, 0.9, 0.95, 0.96, 0.96, 0.96])  # one seed only
    f += rows("B", 0, [0.5, 0.9, 0.92, 0.9, 0.9, 0.95, 0.96, 0.96, 0.96])
    f += rows("B", 2, [0.5, 0.85, 0.93, 0.9, 0.9, 0.95, 0.96, 0.96, 0.96])
    res = penalty_matrix(pd.DataFrame(f))
    assert (res.matrix.loc["A"] == 0).all() and (res.matrix["A"] == 0).all()
    assert any("A vs random has 1 paired seed" in i for i in res.issues)
    # B vs RANDOM on seeds 0 and 2 only: L=20 d = e_R - e_B = (0.41-0.10, 0.39-0.15) = 0.31, 0.24
    #   mean 0.275, std 0.0495 -> z = sqrt(2)*0.275/0.0495 = 7.86 -> win (weight 1/2)
    # L=30: e_R = 0.31, 0.29; e_B = 0.08, 0.07 -> d = 0.23, 0.22 -> z = 32 -> win
    assert res.matrix.loc["B", "random"] == pytest.approx(1.0)
    assert any("B vs random uses 2 of 3 seeds" in i for i in res.issues)


def test_settings_are_weighted_by_their_number_of_budgets():
    f = base_frame()  # setting d: budgets 20, 30
    # a second setting e with B = 5: RANDOM curve reaches 99% of final at 10 + 5*4 = 30 -> (30-10)/5 = 4
    # -> floor(log2 4) = 2 -> budgets 15, 20... make it 3 budgets: n0 = 10 + 5*8 = 50 -> log2 8 = 3
    curve = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.9, 0.9]
    for seed, j in enumerate([-0.01, 0.0, 0.01]):
        f += rows("random", seed, [a + j for a in curve], B=5, dataset="e")
        f += rows("W", seed, [a + j + 0.04 * (r > 0) + 0.001 * seed for r, a in enumerate(curve)], B=5, dataset="e")
    res = penalty_matrix(pd.DataFrame(f))
    b = res.budgets.set_index("dataset")
    assert b.loc["e", "budgets"] == [15, 20, 30]
    assert res.n_settings == 2
    # W beats RANDOM at all 3 budgets of e: 3 x 1/3 = 1; W is absent from setting d
    assert res.matrix.loc["W", "random"] == pytest.approx(1.0)
    by = penalty_matrices_by(pd.DataFrame(f), "batch_size")
    assert set(by) == {5, 10}
    assert by[5].matrix.loc["W", "random"] == pytest.approx(1.0) and by[10].n_settings == 1


def test_normalized_error_cdf_hand_computed():
    f = base_frame()
    for seed, j in enumerate([-0.01, 0.0, 0.01]):
        # errors at L=20: mean 0.20 (RANDOM 0.40) -> 0.5 ; at L=30: mean 0.45 (RANDOM 0.30) -> 1.5
        acc = [0.5, 0.8 + j, 0.55 + j, 0.8, 0.9, 0.95, 0.96, 0.96, 0.96]
        f += rows("A", seed, acc)
    ne, issues = normalized_errors(pd.DataFrame(f))
    a = ne[ne["strategy"] == "A"].set_index("budget")
    assert a.loc[20, "normalized_error"] == pytest.approx(0.5)
    assert a.loc[30, "normalized_error"] == pytest.approx(1.5)
    assert (a["weight"] == 0.5).all()
    r = ne[ne["strategy"] == "random"]
    np.testing.assert_allclose(r["normalized_error"], 1.0)
    cdf = normalized_error_cdf(pd.DataFrame(f))
    ca = cdf[cdf["strategy"] == "A"]
    np.testing.assert_allclose(ca["normalized_error"], [0.5, 1.5])
    np.testing.assert_allclose(ca["cdf"], [0.5, 1.0])


def test_random_error_is_positive_at_every_budget():
    # a budget lies before n0, where RANDOM is below 99% of its final accuracy, so its error is > 0
    f = []
    curve = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0]  # perfect at the end: n0 = 60 -> budgets 20, 30
    for seed in range(2):
        f += rows("random", seed, curve) + rows("A", seed, curve)
    ne, issues = normalized_errors(pd.DataFrame(f))
    assert set(ne["budget"]) == {20, 30} and not issues
    np.testing.assert_allclose(ne["normalized_error"], 1.0)


def test_learning_curves_and_selection_times():
    f = pd.DataFrame(base_frame())
    lc = learning_curves(f)
    r = lc[lc["n_labeled"] == 20].iloc[0]
    assert r["mean"] == pytest.approx(0.6) and r["n_seeds"] == 3
    assert r["sem"] == pytest.approx(0.01 / math.sqrt(3))
    t = selection_times(f)
    overall = t[t["dataset"] == "all"].iloc[0]
    assert overall["mean_seconds"] == pytest.approx(0.5) and overall["rounds"] == 24


def test_frame_without_columns_is_refused():
    with pytest.raises(ValueError, match="lacks column"):
        penalty_matrix(pd.DataFrame({"strategy": ["a"]}))


def test_the_authors_rule_is_a_one_sample_t_test():
    from scipy.stats import ttest_1samp

    from activebatch.analysis.protocol import _paired_z, t_critical

    assert abs(t_critical(5) - 2.776) < 1e-3
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.normal(loc=rng.uniform(-0.02, 0.04), scale=0.02, size=5)
        res = ttest_1samp(d, 0.0)
        z = _paired_z(d)[2]
        assert np.isclose(z, res.statistic)
        assert (z > t_critical(5)) == (res.pvalue < 0.05 and res.statistic > 0)


def test_both_rules_on_one_frame():
    # i's error is lower than j's by 0.01 +- small noise over 5 seeds: z is large under both rules;
    # a difference with z between 1.96 and 2.776 wins under the paper's rule only
    rows = []
    d_small = np.array([0.010, 0.030, -0.004, 0.022, 0.011])      # z = 2.39, between the two thresholds
    for seed in range(5):
        for n_labeled, acc_r in ((10, 0.5), (20, 0.6), (30, 0.7), (70, 0.9), (110, 0.9)):
            for strategy, acc in (("random", acc_r), ("a", acc_r + d_small[seed]), ("b", acc_r)):
                rows.append(dict(dataset="d", model="m", batch_size=10, strategy=strategy, seed=seed,
                                 round=(n_labeled - 10) // 10, n_labeled=n_labeled, test_accuracy=acc))
    frame = pd.DataFrame(rows)
    paper = penalty_matrix(frame)
    authors = penalty_matrix(frame, rule="authors")
    assert paper.matrix.loc["a", "b"] > 0 and authors.matrix.loc["a", "b"] == 0
    with pytest.raises(ValueError, match="rule must be one of 'paper', 'authors'"):
        penalty_matrix(frame, rule="bonferroni")


def test_the_html_page_converts_the_report_markdown(tmp_path):
    from activebatch.analysis.html import markdown_to_html

    (tmp_path / "f.png").write_bytes(b"\x89PNG fake")
    page = markdown_to_html(["# T", "", "a **b** `c` <d>", "", "![fig](f.png)", "", "| x | y |", "|---|---|",
                             "| s | 2 |", "| t | 10 |", "", "- one", "- two"], tmp_path, "T")
    assert "<h1>T</h1>" in page and "<p>a <b>b</b> <code>c</code> &lt;d&gt;</p>" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page
    assert "<thead><tr><th>x</th><th>y</th></tr></thead><tbody><tr><td>s</td><td>2</td></tr>" in page
    assert "<ul><li>one</li><li>two</li></ul>" in page


def test_labels_to_accuracy_takes_empirical_quantiles_over_seeds():
    from activebatch.analysis.protocol import labels_to_accuracy

    frame = []
    # five seeds of "a" reach 0.9 at 30, 20, 40, never, 20 labels; "b" only once (50 labels)
    for seed, accs in enumerate([[0.5, 0.8, 0.9, 0.92, 0.93], [0.5, 0.91, 0.92, 0.95, 0.96],
                                 [0.5, 0.6, 0.7, 0.9, 0.95], [0.5, 0.6, 0.7, 0.8, 0.85],
                                 [0.6, 0.9, 0.9, 0.9, 0.9]]):
        frame += rows("a", seed, accs)
        frame += rows("b", seed, [0.5, 0.6, 0.7, 0.8, 0.9 if seed == 0 else 0.8])
    table = labels_to_accuracy(pd.DataFrame(frame), targets=(0.9, 0.95)).set_index(["strategy", "target"])
    a = table.loc[("a", 0.9)]
    # sorted counts 20, 20, 30, 40, inf: q25 = 2nd = 20, median = 3rd = 30, q75 = 4th = 40
    assert (a["q25"], a["median"], a["q75"], a["reached"], a["seeds"]) == (20, 30, 40, 4, 5)
    b = table.loc[("b", 0.9)]
    assert b["reached"] == 1 and math.isinf(b["median"]) and b["q25"] == math.inf
    a95 = table.loc[("a", 0.95)]   # seeds 1 (40) and 2 (50) only: 40, 50, inf, inf, inf
    assert a95["reached"] == 2 and math.isinf(a95["median"]) and a95["q25"] == 50


def test_with_metric_swaps_the_accuracy_column():
    from activebatch.analysis.protocol import with_metric

    frame = pd.DataFrame(base_frame())
    frame["balanced_accuracy"] = frame["test_accuracy"] - 0.1
    frame.loc[0, "balanced_accuracy"] = np.nan   # a round recorded before the metric existed
    out = with_metric(frame, "balanced_accuracy")
    assert len(out) == len(frame) - 1
    np.testing.assert_allclose(out["test_accuracy"], frame["test_accuracy"].iloc[1:] - 0.1)
    with pytest.raises(ValueError, match="no column 'macro_f1'"):
        with_metric(frame, "macro_f1")
