import numpy as np
import pytest

import activebatch as ab
from activebatch import LabelConflictError


def _pool(n=10):
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return ab.Pool(X, np.arange(n) % 3, name="toy")


def test_labels_from_oracle_and_explicit():
    pool = _pool()
    pool.label([0, 4])
    assert pool.n_labeled == 2
    np.testing.assert_array_equal(pool.labeled_indices, [0, 4])
    np.testing.assert_array_equal(pool.labels[[0, 4]], [0, 1])
    pool.label(np.array([7]), [2])
    X, y = pool.labeled_data()
    np.testing.assert_array_equal(y, [0, 1, 2])
    np.testing.assert_array_equal(X[2], [14, 15])
    assert 7 not in pool.unlabeled_indices


def test_relabel_with_a_different_label_is_refused_and_nothing_is_written():
    pool = _pool()
    pool.label([1], [1])
    pool.label([1], [1])  # same label again: no-op
    with pytest.raises(LabelConflictError, match="item 1 already has label 1"):
        pool.label([2, 1], [0, 2])
    assert pool.labels[2] == -1  # all-or-nothing: item 2 was not written either
    assert pool.labels[1] == 1
    with pytest.raises(LabelConflictError, match="different labels in one call"):
        pool.label([3, 3], [0, 1])


def test_bad_label_calls():
    pool = _pool()
    with pytest.raises(IndexError):
        pool.label([10])
    with pytest.raises(ValueError, match="out of range"):
        pool.label([0], [5])
    with pytest.raises(ValueError, match="labels"):
        pool.label([0, 1], [1])
    with pytest.raises(ValueError, match="integer"):
        pool.label([0.5])
    nolabels = ab.Pool(np.zeros((3, 2)), n_classes=2)
    with pytest.raises(ValueError, match="no oracle"):
        nolabels.label([0])
    with pytest.raises(ValueError, match="n_classes"):
        ab.Pool(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="rows|entries"):
        ab.Pool(np.zeros((3, 2)), [0, 1])


def test_copy_is_independent_and_views_are_read_only_copies():
    pool = _pool()
    pool.label([0])
    other = pool.copy()
    other.label([1])
    assert pool.n_labeled == 1 and other.n_labeled == 2
    labels = pool.labels
    labels[:] = 2
    assert pool.labels[5] == -1


def test_memmap_features(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    pool = ab.Pool(mm, np.zeros(20, dtype=int), n_classes=2)
    pool.label([3, 5])
    np.testing.assert_array_equal(pool.labeled_data()[0], X[[3, 5]])
