"""The committed results stores: every penalty-matrix entry can be recomputed from the ``rounds``
table by a plain script that does not use activebatch, and docs/results.md is what ``activebatch
report`` writes for the committed reproduction store."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from activebatch.analysis import export_results, load_results
from activebatch.analysis.protocol import penalty_matrix
from activebatch.analysis.report import _short_names, write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
STORES = sorted(p for p in RESULTS.rglob("*.sqlite"))


def _recompute():
    spec = importlib.util.spec_from_file_location("recompute", RESULTS / "recompute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stores_are_committed():
    assert RESULTS / "reproduction.sqlite" in STORES and len(STORES) >= 3


@pytest.mark.parametrize("rule", ["paper", "authors"])
@pytest.mark.parametrize("store", STORES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_matrix_entry_recomputes_from_the_rounds_table(store, rule):
    recompute = _recompute()
    ours = penalty_matrix(load_results(store), rule=rule)
    plain = recompute.penalty(recompute.read_rounds(str(store)), rule)
    assert list(plain) == list(ours.matrix.index)
    for i in plain:
        for j in plain:
            assert plain[i][j] == pytest.approx(ours.matrix.loc[i, j], abs=1e-9), (i, j)
    means = recompute.column_means(plain)
    for j in plain:
        assert means[j] == pytest.approx(ours.column_means[j], abs=1e-9)


def test_recompute_counts_a_hand_made_win():
    """Two settings' worth of hand-made rounds: margin beats random at the one budget of the first."""
    recompute = _recompute()
    rows = []
    # RANDOM reaches 99% of its final accuracy at 300 labels: M = 100, B = 100, budgets [200].
    for seed, bump in enumerate([0.00, 0.01, 0.02]):
        for rnd, (n, acc) in enumerate([(100, 0.5), (200, 0.6), (300, 0.9), (400, 0.9)]):
            rows.append(dict(dataset="d", model="m", batch_size=100, strategy="random", seed=seed, round=rnd,
                             n_labeled=n, accuracy=acc + bump))
            rows.append(dict(dataset="d", model="m", batch_size=100, strategy="margin", seed=seed, round=rnd,
                             n_labeled=n, accuracy=acc + bump + (0.1 + 0.01 * seed if n == 200 else 0.0)))
    assert recompute.budgets(rows) == [200]
    P = recompute.penalty(rows, "paper")
    assert P == {"margin": {"margin": 0.0, "random": 1.0}, "random": {"margin": 0.0, "random": 0.0}}
    # z = sqrt(3) * 0.11 / 0.01 = 19.05 beats 1.96 and Student's 4.303 for two degrees of freedom.
    assert recompute.penalty(rows, "authors")["margin"]["random"] == 1.0


def test_results_page_regenerates_byte_for_byte(tmp_path):
    docs = tmp_path / "docs"
    write_report(RESULTS / "reproduction.sqlite", docs / "results" / "report", markdown=docs / "results.md")
    assert (docs / "results.md").read_text() == (ROOT / "docs" / "results.md").read_text()


def _report_folder(store: Path) -> Path:
    """Where the report of a committed store is: report/ in its folder for results.sqlite and for
    the reproduction's store (docs/results.md links there), <name>_report/ beside another."""
    if store.stem == "results" or store == RESULTS / "reproduction.sqlite":
        return store.parent / "report"
    return store.parent / f"{store.stem}_report"


@pytest.mark.parametrize("store", STORES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_results_table_is_its_stores_export(store, tmp_path):
    """report/results.csv beside each store is what ``activebatch report`` exports from it now
    (a column added to the results, e.g. selection_notes, shows up in every committed table)."""
    committed = _report_folder(store) / "results.csv"
    assert committed.exists(), f"no report beside {store.name}"
    frame = load_results(store)
    frame["dataset"] = _short_names(frame["dataset"])
    assert export_results(frame, tmp_path / "results.csv").read_bytes() == committed.read_bytes()


def test_normalised_errors_at_a_label_count_agree_with_the_report():
    """``recompute.py --at``: at every budget of the reproduction, the report's normalised errors."""
    from activebatch.analysis.protocol import normalized_errors

    recompute = _recompute()
    store = RESULTS / "reproduction.sqlite"
    rows = recompute.read_rounds(str(store))
    table = normalized_errors(load_results(store))[0]
    assert len(table) > 0
    for (dataset, batch_size, budget), g in table.groupby(["dataset", "batch_size", "budget"]):
        plain = recompute.at_labels(rows, dataset, int(batch_size), int(budget))
        for _, r in g.iterrows():
            assert plain[r["strategy"]]["normalised_error"] == pytest.approx(r["normalized_error"], abs=1e-12)


def test_at_labels_on_hand_made_rounds():
    recompute = _recompute()
    rows = [dict(dataset="d", model="m", batch_size=10, strategy=s, seed=seed, round=1, n_labeled=20,
                 accuracy=acc, train_accuracy=ta, train_epochs=ep)
            for s, seed, acc, ta, ep in [("random", 0, 0.80, 1.0, 10), ("random", 1, 0.90, 0.9, 20),
                                         ("margin", 0, 0.70, 0.8, 30), ("margin", 1, 0.80, 1.0, 50)]]
    out = recompute.at_labels(rows, "d", 10, 20)
    # random's mean error 0.15, margin's 0.25: 0.25 / 0.15 = 5/3
    assert out["random"]["normalised_error"] == pytest.approx(1.0)
    assert out["margin"]["normalised_error"] == pytest.approx(5 / 3)
    assert out["margin"]["train_epochs"] == 40 and out["margin"]["train_accuracy"] == pytest.approx(0.9)
    assert out["margin"]["seeds"] == 2
