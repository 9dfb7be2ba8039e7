"""repeated-mnist: construction, options, the full-MNIST path, and BatchBALD avoiding its copies."""
import numpy as np
import pytest

import activebatch as ab
from activebatch.datasets import MissingFilesError, repeated_mnist
from activebatch.datasets.registry import Dataset
from activebatch.datasets.repeated_mnist import repeat_with_noise


@pytest.fixture(scope="module")
def rmnist():
    return ab.datasets.load("repeated-mnist")


def test_built_from_mnist_5k_offline(rmnist):
    base = ab.datasets.load("mnist-5k")
    n = len(base.X_train)
    assert "repeated-mnist" in ab.datasets.names() and ab.datasets.info("repeated-mnist").offline
    assert rmnist.X_train.shape == (3 * n, 784) and rmnist.X_train.dtype == np.float32
    assert rmnist.kind == "image" and rmnist.image_shape == (1, 28, 28) and rmnist.n_classes == 10
    assert "mnist-5k" in rmnist.source
    for r in range(3):
        np.testing.assert_array_equal(rmnist.y_train[r * n:(r + 1) * n], base.y_train)
        noise = rmnist.X_train[r * n:(r + 1) * n] - base.X_train
        sigma = base.X_train.std(dtype=np.float64)               # pixel std: 0.3081 for MNIST
        assert abs(noise.mean()) < 1e-3
        assert noise.std() == pytest.approx(0.1 * sigma, rel=0.01)
    # every copy has its own noise; the test set is the base test set, without noise
    assert not np.allclose(rmnist.X_train[:n], rmnist.X_train[n:2 * n])
    np.testing.assert_array_equal(rmnist.X_test, base.X_test)
    np.testing.assert_array_equal(rmnist.y_test, base.y_test)
    again = ab.datasets.load("repeated-mnist")
    np.testing.assert_array_equal(again.X_train[:50], rmnist.X_train[:50])


def test_options():
    d = ab.datasets.load("repeated-mnist", repetitions=2, noise_std=0.0)
    n = len(d.X_train) // 2
    np.testing.assert_array_equal(d.X_train[:n], d.X_train[n:])
    other = ab.datasets.load("repeated-mnist", repetitions=1, seed=1)
    assert len(other.X_train) == n
    with pytest.raises(ValueError, match="repetitions"):
        ab.datasets.load("repeated-mnist", repetitions=0)
    with pytest.raises(ValueError, match="noise_std"):
        ab.datasets.load("repeated-mnist", noise_std=-1.0)
    with pytest.raises(ValueError, match="base"):
        ab.datasets.load("repeated-mnist", base="cifar10")


def test_repeat_with_noise_reports_the_base_rows():
    X = np.arange(12, dtype=np.uint8).reshape(3, 4)
    X_rep, y_rep, base = repeat_with_noise(X, np.array([0, 1, 2]), repetitions=3, noise_std=0.0)
    np.testing.assert_array_equal(base, [0, 1, 2] * 3)
    np.testing.assert_array_equal(X_rep, X[base].astype(np.float32))
    np.testing.assert_array_equal(y_rep, [0, 1, 2] * 3)


def test_full_mnist_when_its_files_are_present(tmp_path, monkeypatch):
    with pytest.raises(MissingFilesError):
        ab.datasets.load("repeated-mnist", root=tmp_path, base="mnist")
    assert "mnist-5k" in ab.datasets.load("repeated-mnist", root=tmp_path).source   # no files: fallback
    rng = np.random.default_rng(0)
    fake = Dataset("mnist", rng.integers(0, 256, size=(30, 1, 28, 28), dtype=np.uint8), np.arange(30) % 10,
                   rng.integers(0, 256, size=(5, 1, 28, 28), dtype=np.uint8), np.arange(5), n_classes=10,
                   kind="image", image_shape=(1, 28, 28))
    real_load = repeated_mnist.load
    monkeypatch.setattr(repeated_mnist, "info", lambda name, root=None: type("I", (), {"offline": True})())
    monkeypatch.setattr(repeated_mnist, "load",
                        lambda name, root=None, download=False: fake if name == "mnist" else real_load(name))
    d = ab.datasets.load("repeated-mnist", root=tmp_path)
    assert d.source.startswith("mnist,") and d.X_train.shape == (90, 784)
    np.testing.assert_allclose(d.X_train[:30], fake.X_train.reshape(30, -1) / 255.0, atol=0.2)
    np.testing.assert_allclose(d.X_test, fake.X_test.reshape(5, -1) / np.float32(255.0))


def test_batchbald_takes_fewer_copies_of_the_same_digit_than_bald(rmnist):
    """Kirsch et al. (2019), section 5.1: with acquisition size 10 on repeated MNIST, BALD's top-10
    holds several copies of the same digits; BatchBALD's joint batch far fewer."""
    import torch

    from activebatch.learning.models import for_dataset

    torch.set_num_threads(1)
    n_base = len(rmnist.X_train) // 3
    base = np.arange(len(rmnist.X_train)) % n_base
    rows = np.flatnonzero(base < 200)                       # a small pool: 200 digits x 3 noisy copies
    X, y, b = rmnist.X_train[rows], rmnist.y_train[rows], base[rows]
    copies = {"bald": 0, "batchbald": 0}
    for seed in range(3):
        lab = np.random.default_rng(seed).choice(len(rows), 20, replace=False)
        learner = ab.Learner(for_dataset(rmnist, "cnn", dropout=0.5), device="cpu", mc_samples=20)
        learner.fit(X[lab], y[lab], seed=seed)
        cand = np.setdiff1d(np.arange(len(rows)), lab)
        mc = learner.mc_probs(X[cand], seed=seed)
        for name in copies:
            picked = b[cand[ab.select(name, 10, mc_probs=mc, seed=seed)]]
            copies[name] += picked.size - np.unique(picked).size
    assert copies["bald"] >= 6
    assert copies["batchbald"] < copies["bald"]
