"""Long-tailed pools (the imbalance transform), the grid option that builds them, and the
class-balanced test metrics recorded every round."""
import numpy as np
import pytest

import activebatch as ab
from activebatch.datasets.base import Dataset
from activebatch.datasets.imbalance import long_tail_counts, long_tailed, parse_name
from activebatch.experiments.spec import GridSpec
from activebatch.loop.runner import evaluate_predictions


def test_counts_follow_the_exponential_profile_exactly():
    # n_c = floor(500 * 10 ** (-c / 4)): 500, 281.17, 158.11, 88.91, 50
    np.testing.assert_array_equal(long_tail_counts(500, 5, 10), [500, 281, 158, 88, 50])
    # ratio 100 over 3 classes: 1000, 100, 10
    np.testing.assert_array_equal(long_tail_counts(1000, 3, 100), [1000, 100, 10])
    np.testing.assert_array_equal(long_tail_counts(7, 4, 1), [7, 7, 7, 7])
    assert long_tail_counts(50, 10, 1000)[-1] == 1   # at least one item per class


@pytest.mark.parametrize("bad", [0.5, 0, -3, float("nan")])
def test_ratio_below_one_is_refused(bad):
    with pytest.raises(ValueError, match="ratio"):
        long_tail_counts(10, 3, bad)


def _data(per_class=(60, 80, 70), test=(9, 12, 10)):
    y = np.repeat(np.arange(3), per_class)
    yt = np.repeat(np.arange(3), test)
    X = np.arange(y.size, dtype=np.float32)[:, None]
    return Dataset("toy", X, y, np.arange(yt.size, dtype=np.float32)[:, None], yt, 3, description="A toy.")


def test_long_tailed_keeps_exact_counts_and_balances_the_test_set():
    data = _data()
    lt = long_tailed(data, 10, seed=3)
    # n_max = 60 (the smallest class): 60, floor(60 / sqrt(10)) = 18, 6
    np.testing.assert_array_equal(np.bincount(lt.y_train, minlength=3), [60, 18, 6])
    np.testing.assert_array_equal(np.bincount(lt.y_test, minlength=3), [9, 9, 9])
    assert lt.name == "toy@imbalance=10" and "imbalance ratio 10" in lt.description
    # rows are kept with their own features (X holds the row number) and without repeats
    kept = lt.X_train[:, 0].astype(int)
    assert np.unique(kept).size == kept.size
    np.testing.assert_array_equal(data.y_train[kept], lt.y_train)
    # seeded: the same seed keeps the same items, another seed others
    np.testing.assert_array_equal(long_tailed(data, 10, seed=3).X_train, lt.X_train)
    assert not np.array_equal(long_tailed(data, 10, seed=4).X_train, lt.X_train)


def test_every_class_is_drawn_uniformly():
    # class 1 keeps 18 of its 80 items: each item is kept with probability 18/80 over seeds
    data = _data()
    hits = np.zeros(80)
    for seed in range(400):
        kept = long_tailed(data, 10, seed=seed).X_train[:, 0].astype(int)
        hits[kept[(kept >= 60) & (kept < 140)] - 60] += 1
    from scipy.stats import chisquare

    assert chisquare(hits).pvalue > 1e-3
    assert abs(hits.mean() / 400 - 18 / 80) < 1e-12


def test_a_missing_class_is_refused():
    with pytest.raises(ValueError, match=r"no training items of class\(es\) \[2\]"):
        long_tailed(_data(per_class=(5, 5, 0)), 10)


def test_load_accepts_the_suffix_on_any_name():
    d = ab.datasets.load("digits@imbalance=10")
    counts = np.bincount(d.y_train, minlength=10)
    assert counts[0] > counts[-1] and np.all(np.diff(counts) <= 0)
    assert len(set(np.bincount(d.y_test).tolist())) == 1
    assert parse_name("letter@imbalance=2.5") == ("letter", 2.5)
    with pytest.raises(ValueError, match="must be a number"):
        ab.datasets.load("digits@imbalance=lots")
    with pytest.raises(ValueError, match=">= 1"):
        ab.datasets.load("digits@imbalance=0.5")


def _spec(**extra):
    base = dict(name="t", datasets=["digits"], models=["mlp"], batch_sizes=[10], strategies=["random"], seeds=1,
                initial=10, rounds=1)
    return GridSpec.from_dict({**base, **extra})


def test_the_grid_option_runs_each_data_set_at_each_ratio():
    spec = _spec(imbalance=[1, 10, 100], datasets=["digits", "letter"])
    assert spec.datasets == ["digits", "digits@imbalance=10", "digits@imbalance=100", "letter",
                             "letter@imbalance=10", "letter@imbalance=100"]
    # the validated spec is stored expanded and reads back unchanged (resuming a grid)
    assert GridSpec.from_dict(spec.to_dict()).datasets == spec.datasets
    assert _spec(datasets=["digits@imbalance=10"]).datasets == ["digits@imbalance=10"]
    assert _spec(imbalance=[10], dataset_options={"digits": {}}).dataset_options == {"digits": {}}
    with pytest.raises(ValueError, match="imbalance must be a non-empty list"):
        _spec(imbalance=10)
    with pytest.raises(ValueError, match="imbalance"):
        _spec(imbalance=[0.5])
    with pytest.raises(ValueError, match="already names an imbalance ratio"):
        _spec(imbalance=[10], datasets=["digits@imbalance=10"])
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        _spec(datasets=["nope@imbalance=10"])


def test_metrics_equal_their_definitions():
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 0])
    acc, bal, f1 = evaluate_predictions(y, p)
    assert acc == pytest.approx(4 / 7)
    assert bal == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    # F1 per class: 0: P = 3/5, R = 3/4 -> 2/3; 1: P = 1/2, R = 1/2 -> 1/2; 2: 0
    assert f1 == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


def test_the_loop_records_balanced_accuracy_and_macro_f1():
    X, y, Xt, yt = ab.datasets.load("digits@imbalance=10")
    pool = ab.Pool(X, y, n_classes=10)
    learner = ab.Learner(ab.learning.models.MLP(64, 10, embedding_dim=32), lr=1e-2, max_epochs=5, device="cpu")
    frame = ab.run(pool, learner, "margin", initial=30, batch_size=20, rounds=1, test=(Xt, yt), seed=0).to_frame()
    assert {"balanced_accuracy", "macro_f1"} <= set(frame.columns)
    # the test set is balanced, so balanced accuracy equals accuracy
    np.testing.assert_allclose(frame["balanced_accuracy"], frame["test_accuracy"])
    assert frame["macro_f1"].between(0, 1).all()


def test_report_has_the_long_tailed_section_and_the_labels_table(tmp_path):
    from activebatch.analysis.report import write_report
    from activebatch.experiments.store import ResultsStore

    store = ResultsStore(tmp_path)
    rng = np.random.default_rng(0)
    for strategy, shift in (("random", 0.0), ("margin", 0.05)):
        for seed in range(3):
            accs = np.minimum(0.5 + 0.08 * np.arange(9) + shift + rng.normal(0, 0.01, 9), 0.97)
            for ds in ("toy", "toy@imbalance=10"):
                rid = f"{ds}|mlp|10|{strategy}|{seed}"
                rows = [dict(dataset=ds, model="mlp", batch_size=10, strategy=strategy, seed=seed, round=r,
                             n_labeled=10 + 10 * r, test_accuracy=float(a), train_seconds=0.1, select_seconds=0.01,
                             class_histogram=[1, 1], class_entropy=0.69, train_epochs=3, train_accuracy=1.0,
                             balanced_accuracy=float(a) - 0.1, macro_f1=float(a) - 0.2)
                        for r, a in enumerate(accs)]
                store.record_run(rid, rows, seconds=1.0)
    text = write_report(tmp_path).read_text()
    assert "## Long-tailed pools" in text and "penalty_matrix_balanced_accuracy.png" in text
    assert "toy@imbalance=10 / margin" in text and "toy / margin" not in text
    assert "## Labels to reach a target accuracy" in text and "labels to reach 90%" in text
    assert (tmp_path / "report" / "penalty_matrix_balanced_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report" / "learning_curves_balanced_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    # the by-ratio table: each ratio's settings alone, on balanced accuracy
    from activebatch.analysis import load_results
    from activebatch.analysis.protocol import mean_normalized_error, normalized_errors, penalty_matrix, with_metric

    frame = load_results(tmp_path)
    lines = text.splitlines()
    start = lines.index("| strategy | penalty, R = 1 | normalised error, R = 1 | penalty, R = 10 | "
                        "normalised error, R = 10 |")
    row = next(line for line in lines[start:] if line.startswith("| margin | "))
    cells = [float(c) for c in row.strip("| ").split(" | ")[1:]]
    expected = []
    for ds in ("toy", "toy@imbalance=10"):
        bal = with_metric(frame[frame["dataset"] == ds], "balanced_accuracy")
        expected += [penalty_matrix(bal).column_means["margin"],
                     mean_normalized_error(normalized_errors(bal)[0])["margin"]]
    assert cells == pytest.approx(expected, abs=5e-4)
    # the by-data-set table: each data set's own matrix (on accuracy)
    start = lines.index("| strategy | toy (max 1) | toy@imbalance=10 (max 1) |")
    row = next(line for line in lines[start:] if line.startswith("| random | "))
    per_dataset = [penalty_matrix(frame[frame["dataset"] == ds]).column_means["random"]
                   for ds in ("toy", "toy@imbalance=10")]
    assert [float(c) for c in row.strip("| ").split(" | ")[1:]] == pytest.approx(per_dataset, abs=5e-3)
    assert per_dataset[0] > 0


# predictions of a class the labels lack (class 6) are part of the check; scikit-learn warns about them
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true:UserWarning")
def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 6, size=50)
        p = np.where(rng.random(50) < 0.6, y, rng.integers(0, 7, size=50))
        acc, bal, f1 = evaluate_predictions(y, p)
        assert acc == pytest.approx(np.mean(y == p))
        assert bal == pytest.approx(balanced_accuracy_score(y, p))
        assert f1 == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
