"""MOA's random RBF generator: java.util.Random bit for bit, and MOA's published stream."""
import math

import numpy as np
import pytest

import activebatch as ab
from activebatch.datasets.generators import rbf
from activebatch.datasets.generators._java_random import JavaRandom, doubles_at, state_stream


def test_java_random_known_values():
    # values printed by the JDK for new Random(seed)
    assert JavaRandom(0).next_int() == -1155484576
    assert JavaRandom(0).next_double() == 0.730967787376657
    assert JavaRandom(0).next_gaussian() == pytest.approx(0.8025330637390305, abs=1e-15)
    assert JavaRandom(42).next_int(10) == 0


def test_vectorised_stream_equals_scalar():
    states = state_stream(123, 3000)
    r = JavaRandom(123)
    assert [r.next(48) for _ in range(3000)] == [int(s) for s in states]
    d = doubles_at(state_stream(9, 11))
    r = JavaRandom(9)
    assert d[0] == r.next_double() and d[2] == r.next_double()


def _moa_reference(n, model, seed):
    """MOA's nextInstance, transcribed statement by statement with the scalar Random."""
    rnd = JavaRandom(seed)
    X, y = [], []
    for _ in range(n):
        total = 0.0
        for w in model.weights:
            total += w
        val = rnd.next_double() * total
        i, acc = 0, 0.0
        while acc <= val and i < len(model.weights):
            acc += model.weights[i]
            i += 1
        c = i - 1
        att = [rnd.next_double() * 2.0 - 1.0 for _ in range(model.n_features)]
        mag = math.sqrt(sum(a * a for a in att))
        scale = rnd.next_gaussian() * model.std[c] / mag
        X.append([model.centres[c, j] + att[j] * scale for j in range(model.n_features)])
        y.append(model.labels[c])
    return np.array(X), np.array(y)


@pytest.mark.parametrize("n_classes, n_features, n_centroids, seeds", [(2, 10, 50, (1, 1)), (5, 3, 7, (4, 11))])
def test_vectorised_generator_equals_moa_loop(n_classes, n_features, n_centroids, seeds):
    model = rbf.make_model(n_classes, n_features, n_centroids, seeds[0])
    X, y = rbf.generate(301, model, seeds[1])
    X_ref, y_ref = _moa_reference(301, model, seeds[1])
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(X, X_ref, rtol=0, atol=1e-12)


def test_matches_moa_published_output():
    """The first two instances of MOA's RandomRBFGenerator with its default options, as printed
    in the CapyMOA documentation (model and instance seed 1, 2 classes, 10 attributes, 50 centroids)."""
    X, y = rbf.generate(2, rbf.make_model(), seed=1)
    np.testing.assert_allclose(X[0], [0.21, 1.01, 0.092, 0.272, 0.45, 0.226, 0.212, 0.373, 0.583, 0.297],
                               atol=5e-3)
    np.testing.assert_allclose(X[1], [0.68807095, 0.62508298, 0.36161375, 0.29484898, 0.46067958,
                                      0.83491016, 0.69794979, 0.75702471, 0.79436834, 0.7605141], atol=1e-8)
    assert y[0] == 1


def test_distribution_properties():
    model = rbf.make_model(3, 4, 20, seed=2)
    X, y = rbf.generate(20000, model, seed=3)
    # prefix property: a shorter stream is a prefix of a longer one
    np.testing.assert_array_equal(rbf.generate(777, model, seed=3)[0], X[:777])
    # centroid frequencies follow the weights: class frequencies match the weight mass per class
    w = model.weights / model.weights.sum()
    expected = np.array([w[model.labels == k].sum() for k in range(3)])
    assert np.allclose(np.bincount(y, minlength=3) / y.size, expected, atol=0.02)


def test_dataset_and_validation():
    d = ab.datasets.load("random-rbf", n_train=1000, n_test=200, n_classes=4, n_features=5)
    assert d.X_train.shape == (1000, 5) and d.X_test.shape == (200, 5) and d.n_classes == 4
    with pytest.raises(ValueError):
        rbf.make_model(n_classes=1)
