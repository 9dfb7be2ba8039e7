"""Your own data as a data set: tables, .npz archives and train/test folders, in ab.datasets.load and grids."""
import json

import numpy as np
import pandas as pd
import pytest

import activebatch as ab
from activebatch.experiments import GridSpec
from activebatch.experiments.runner import execute_run


def _table(n=100, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["cat", "dog", "eel"])[np.arange(n) % 3]
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "colour": rng.choice(["r", "g"], n),
                         "label": y})


def test_a_csv_is_split_stratified_and_seeded(tmp_path):
    _table(100).to_csv(tmp_path / "d.csv", index=False)
    d = ab.datasets.load(str(tmp_path / "d.csv"))
    assert (len(d.y_train), len(d.y_test)) == (80, 20) and d.n_classes == 3 and d.class_names == ("cat", "dog", "eel")
    assert d.X_train.shape[1] == 3 and d.kind == "tabular" and d.name == "d.csv"
    # each class in proportion: 34, 33, 33 rows -> 7, 7, 6 (largest remainders) in the test set
    assert sorted(np.bincount(d.y_test).tolist()) == [6, 7, 7]
    again = ab.datasets.load(str(tmp_path / "d.csv"))
    np.testing.assert_array_equal(d.y_test, again.y_test)
    other = ab.datasets.load(str(tmp_path / "d.csv"), seed=1, test_fraction=0.5)
    assert len(other.y_test) == 50


def test_npz_and_folders_keep_or_make_their_split(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "xy.npz", X=rng.normal(size=(40, 4)), y=np.arange(40) % 2)
    d = ab.datasets.load(str(tmp_path / "xy.npz"), test_fraction=0.25)
    assert (len(d.y_train), len(d.y_test), d.n_classes) == (30, 10, 2)
    np.savez(tmp_path / "split.npz", X_train=rng.normal(size=(12, 4)), y_train=np.arange(12) % 3,
             X_test=rng.normal(size=(6, 4)), y_test=np.arange(6) % 3)
    d = ab.datasets.load(str(tmp_path / "split.npz"))
    assert (len(d.y_train), len(d.y_test)) == (12, 6)
    folder = tmp_path / "f"
    folder.mkdir()
    _table(30).to_csv(folder / "train.csv", index=False)
    test = _table(9, seed=2)
    test["label"] = ["eel", "cat", "dog"] * 3
    test.to_csv(folder / "test.csv", index=False)
    d = ab.datasets.load(str(folder))
    assert (len(d.y_train), len(d.y_test)) == (30, 9)
    assert d.y_test[:3].tolist() == [2, 0, 1]            # the test file's classes in the training file's order


@pytest.mark.parametrize("make, message", [
    (lambda p: _table(10).drop(columns="label").to_csv(p / "x.csv", index=False) or p / "x.csv",
     "no label column 'label'"),
    (lambda p: np.savez(p / "bad.npz", A=np.ones(3)) or p / "bad.npz", "must hold arrays X and y"),
    (lambda p: _table(10).assign(a=np.r_[np.nan, np.ones(9)]).to_csv(p / "n.csv", index=False) or p / "n.csv",
     "NaN or infinite"),
])
def test_bad_files_are_refused_clearly(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        ab.datasets.load(str(path))


def test_a_grid_names_a_file_by_path_openml_ids_and_dataset_options(tmp_path):
    _table(120).to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "grid.toml").write_text(
        'name = "g"\ndatasets = ["mine.csv", "openml-32"]\nmodels = ["mlp"]\nbatch_sizes = [10]\n'
        'strategies = ["margin"]\nseeds = 1\ninitial = 20\nrounds = 1\n[training]\nlr = 1e-3\nmax_epochs = 3\n'
        '[dataset_options."mine.csv"]\nlabel_column = "label"\ntest_fraction = 0.25\n'
        '[dataset_options.pokerhand]\nn_train = 500\n'.replace('"openml-32"]', '"openml-32", "pokerhand"]'))
    from activebatch.experiments import load_spec

    spec = load_spec(tmp_path / "grid.toml")
    # a file is recorded by its path from the spec's folder: run ids do not depend on where it lies
    assert spec.datasets == ["mine.csv", "openml-32", "pokerhand"]
    assert spec.base_dir == str(tmp_path.resolve())
    assert spec.dataset_options["mine.csv"] == {"label_column": "label", "test_fraction": 0.25}
    out = execute_run(spec.to_dict(), "mine.csv|mlp|10|margin|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]
    assert {r["dataset"] for r in out["rows"]} == {"mine.csv"}
    with pytest.raises(ValueError, match="dataset_options for 'pokerhand' take root, download and"):
        GridSpec.from_dict({"datasets": ["pokerhand"], "models": ["mlp"], "batch_sizes": [10], "strategies": ["margin"],
                            "seeds": 1, "initial": 20, "rounds": 1, "dataset_options": {"pokerhand": {"colour": 1}}})
    with pytest.raises(ValueError, match="unknown data set 'nope.csv'"):
        GridSpec.from_dict({"datasets": ["nope.csv"], "models": ["mlp"], "batch_sizes": [10], "strategies": ["margin"],
                            "seeds": 1, "initial": 20, "rounds": 1})


def test_an_exclude_rule_names_a_data_file_as_the_datasets_list_does(tmp_path):
    (tmp_path / "sub").mkdir()
    _table(60).to_csv(tmp_path / "sub" / "mine.csv", index=False)
    table = {"datasets": ["sub/mine.csv", "digits"], "models": ["mlp", "cnn"], "batch_sizes": [10],
             "strategies": ["margin"], "seeds": 1, "initial": 20, "rounds": 1,
             "exclude": [{"dataset": "sub/mine.csv", "model": "cnn"}, {"dataset": "digits", "model": "mlp"}]}
    spec = GridSpec.from_dict(table, source=str(tmp_path / "grid.toml"))
    assert [(k.dataset, k.model) for k in spec.runs()] == [("sub/mine.csv", "mlp"), ("digits", "cnn")]


def test_a_grid_on_a_data_file_resumes_from_a_copy_elsewhere(tmp_path, monkeypatch):
    """The store and the spec travel together (a clone of a repository at another path): the copy
    finds every run recorded, because run ids name the file by its path from the spec's folder."""
    import shutil

    from activebatch.experiments import run_bench
    from activebatch.experiments.spec import resolve_dataset

    here = tmp_path / "a"
    (here / "data").mkdir(parents=True)
    (here / "specs").mkdir()
    _table(80).to_csv(here / "data" / "mine.csv", index=False)
    (here / "specs" / "grid.toml").write_text(
        'name = "g"\ndatasets = ["../data/mine.csv"]\nimbalance = [1, 2]\nmodels = ["mlp"]\nbatch_sizes = [10]\n'
        'strategies = ["margin"]\nseeds = 1\ninitial = 20\nrounds = 1\n[training]\nlr = 1e-3\nmax_epochs = 2\n')
    first = run_bench(here / "specs" / "grid.toml", here / "out", progress=False)
    assert (first.completed, first.failed) == (2, [])
    shutil.copytree(here, tmp_path / "b")
    shutil.rmtree(here)
    monkeypatch.chdir(tmp_path)
    again = run_bench(tmp_path / "b" / "specs" / "grid.toml", tmp_path / "b" / "out", progress=False)
    assert (again.skipped, again.completed) == (2, 0)
    recorded = json.loads((tmp_path / "b" / "out" / "g.spec.json").read_text())
    assert recorded["datasets"] == ["../data/mine.csv", "../data/mine.csv@imbalance=2"] and "base_dir" not in recorded
    # a path given from the working directory is recorded from the spec's folder too
    spec = GridSpec.from_dict({"datasets": ["b/data/mine.csv"], "models": ["mlp"], "batch_sizes": [10],
                               "strategies": ["margin"], "seeds": 1, "initial": 20, "rounds": 1},
                              source=str(tmp_path / "b" / "specs" / "grid.toml"))
    assert spec.datasets == ["../data/mine.csv"]
    assert resolve_dataset("../data/mine.csv@imbalance=2", "/x/specs") == "/x/specs/../data/mine.csv@imbalance=2"
    assert resolve_dataset("letter@imbalance=2", "/x/specs") == "letter@imbalance=2"
