"""The committed results stores: every penalty-matrix entry can be recomputed from the ``rounds``
table by a plain script that does not use activebatch, and docs/results.md is what ``activebatch
report`` writes for the committed reproduction store."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from activebatch.analysis import load_results
from activebatch.analysis.protocol import penalty_matrix
from activebatch.analysis.report import write_report

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
