"""The name cluster_margin changed meaning (Zhdanov 2019 -> Citovsky et al. 2021): the former options
are refused with a pointer to diverse_minibatch, and rounds and runs recorded before are not mislabelled."""
import sqlite3

import numpy as np
import pytest

import activebatch as ab
from activebatch.analysis import load_results
from activebatch.experiments import GridSpec, run_bench
from activebatch.experiments.store import CLUSTER_MARGIN_KEY, ResultsStore
from activebatch.workspace import ModelConfig, Workspace
from workspace_fixtures import TAB_CLASSES, make_table

ZHDANOV_OPTIONS = {"beta": 10, "measure": "margin", "n_init": 1}   # what the former cluster_margin recorded


@pytest.mark.parametrize("options", [{"beta": 5}, {"measure": "entropy"}, {"n_init": 3, "beta": 2}])
def test_former_options_point_to_diverse_minibatch(options):
    with pytest.raises(TypeError, match="diverse_minibatch") as err:
        ab.strategies.get("cluster_margin", **options)
    assert "Citovsky" in str(err.value) and "Zhdanov" in str(err.value)
    assert ab.strategies.get("diverse_minibatch", **options).get_params().items() >= options.items()
    with pytest.raises(TypeError, match="unknown option") as err:       # other unknown options: no such pointer
        ab.strategies.get("cluster_margin", gamma=1)
    assert "diverse_minibatch" not in str(err.value)


def test_grid_spec_with_former_options_is_refused():
    base = dict(datasets=["digits"], models=["mlp"], batch_sizes=[10], seeds=1, initial=20, rounds=1,
                strategies=["cluster_margin"])
    with pytest.raises(TypeError, match=r"strategy_options\.cluster_margin.*beta.*diverse_minibatch"):
        GridSpec.from_dict({**base, "strategy_options": {"cluster_margin": {"beta": 10}}})
    GridSpec.from_dict({**base, "strategy_options": {"cluster_margin": {"margin_factor": 5}}})


@pytest.fixture
def ws(tmp_path):
    items, _ = make_table(tmp_path, n=40)
    return Workspace.create(tmp_path / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=5))


def test_workspace_query_with_former_options_is_refused_before_anything_is_recorded(ws):
    with pytest.raises(TypeError, match="diverse_minibatch"):
        ws.query(5, "cluster_margin", options={"beta": 10})
    assert ws.store.last_round() == 0


def test_status_shows_rounds_recorded_before_the_rename_under_their_methods_name(ws):
    from activebatch.workspace.server import LabelService

    store = ws.store
    common = dict(seed=0, predicted=None, confidence=None, n_train_labels=0, select_seconds=0.1)
    store.record_round(expected_last=0, strategy="cluster_margin", options=ZHDANOV_OPTIONS, positions=[0, 1], **common)
    assert LabelService(ws.folder).state()["last_query"]["strategy"] == "diverse_minibatch"
    new = ab.strategies.get("cluster_margin").get_params()
    store.record_round(expected_last=1, strategy="cluster_margin", options=new, positions=[2, 3], **common)
    store.record_round(expected_last=2, strategy="diverse_minibatch", options=ZHDANOV_OPTIONS, positions=[4], **common)
    st = ws.status(plot=False)
    assert st.rounds["strategy"].tolist() == ["diverse_minibatch", "cluster_margin", "diverse_minibatch"]
    note = [n for n in st.notes if "recorded as cluster_margin" in n]
    assert len(note) == 1 and note[0].startswith("round(s) 1 ") and "Citovsky" in note[0]
    assert note[0] in st.to_text()
    assert [r["strategy"] for r in st.to_dict()["rounds"]] == ["diverse_minibatch", "cluster_margin",
                                                               "diverse_minibatch"]
    assert store.rounds()["strategy"].tolist() == ["cluster_margin", "cluster_margin", "diverse_minibatch"]  # as kept
    assert LabelService(ws.folder).state()["last_query"]["strategy"] == "diverse_minibatch"


def _rows(run_id, n=2):
    d, m, b, s, seed = run_id.split("|")
    return [dict(dataset=d, model=m, batch_size=int(b), strategy=s, seed=int(seed), round=r, n_labeled=10 + r,
                 test_accuracy=0.5, train_seconds=0.1, select_seconds=0.01, class_histogram=[r, 1],
                 class_entropy=0.3, train_epochs=3, train_accuracy=1.0) for r in range(n)]


def test_results_recorded_before_the_rename_are_named_diverse_minibatch(tmp_path):
    # A store written before the rename: its cluster_margin runs, and no marker (older versions wrote none).
    old = ResultsStore(tmp_path / "old")
    for run_id in ("digits|mlp|10|cluster_margin|0", "digits|mlp|10|margin|0"):
        old.record_run(run_id, _rows(run_id), seconds=1.0)
    with sqlite3.connect(old.path) as con:
        con.execute("DELETE FROM meta WHERE key = ?", (CLUSTER_MARGIN_KEY,))
    reopened = ResultsStore(tmp_path / "old", create=False)
    assert reopened.legacy_cluster_margin
    assert sorted(set(reopened.frame()["strategy"])) == ["diverse_minibatch", "margin"]
    assert sorted(reopened.runs()["strategy"]) == ["diverse_minibatch", "margin"]
    assert set(load_results(tmp_path / "old")["strategy"]) == {"diverse_minibatch", "margin"}   # what reports read
    spec = GridSpec.from_dict(dict(datasets=["digits"], models=["mlp"], batch_sizes=[10], seeds=1, initial=20,
                                   rounds=1, strategies=["cluster_margin"]))
    with pytest.raises(ValueError, match="recorded before the rename.*another folder"):
        run_bench(spec, tmp_path / "old", progress=False)
    # A store made now: its cluster_margin runs are Citovsky et al.'s and keep the name.
    new = ResultsStore(tmp_path / "new")
    new.record_run("digits|mlp|10|cluster_margin|0", _rows("digits|mlp|10|cluster_margin|0"), seconds=1.0)
    again = ResultsStore(tmp_path / "new")
    assert not again.legacy_cluster_margin and set(again.frame()["strategy"]) == {"cluster_margin"}
    assert np.all(again.runs()["strategy"] == "cluster_margin")
