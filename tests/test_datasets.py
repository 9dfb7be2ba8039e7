import numpy as np
import pytest

import activebatch as ab


def test_mnist_5k():
    d = ab.datasets.load("mnist-5k")
    X_tr, y_tr, X_te, y_te = d
    assert X_tr.shape == (4000, 784) and X_te.shape == (1000, 784)
    assert X_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert X_tr.min() == 0.0 and X_tr.max() == 1.0
    # stratified: each class has 10% of the test set up to rounding
    full = np.bincount(np.concatenate([y_tr, y_te]), minlength=10)
    assert np.all(np.abs(np.bincount(y_te, minlength=10) - full / 5) <= 1)
    assert d.kind == "image" and d.n_classes == 10 and d.n_features == 784
    again = ab.datasets.load("mnist-5k")
    np.testing.assert_array_equal(again.y_test, y_te)  # fixed split


def test_digits():
    X_tr, y_tr, X_te, y_te = ab.datasets.load("digits")
    assert X_tr.shape == (1437, 64) and X_te.shape == (360, 64)
    assert 0.0 <= X_tr.min() and X_tr.max() == 1.0
    assert set(np.unique(y_tr)) == set(range(10))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="mnist-5k"):
        ab.datasets.load("imagenet")
    assert {"mnist-5k", "digits"} <= set(ab.datasets.names())
