"""Pretrained and precomputed features: a frozen extractor in the Learner, memory-mapped features."""
import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.learning.models import LinearHead, extract_features, open_features


def make_extractor():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Dropout(0.5))


@pytest.fixture(scope="module")
def digits():
    return ab.datasets.load("digits")


def test_frozen_extractor_trains_only_the_head(digits):
    ext = make_extractor()
    before = {k: v.clone() for k, v in ext.state_dict().items()}
    learner = ab.Learner(LinearHead(16, 10), extractor=ext, lr=1e-2, max_epochs=5, device="cpu")
    learner.fit(digits.X_train[:300], digits.y_train[:300], seed=0)
    for k, v in ext.state_dict().items():
        torch.testing.assert_close(v, before[k])          # never trained
    assert not ext.training                                 # dropout of the extractor stays off
    P, Z = learner.outputs(digits.X_test[:50])
    assert P.shape == (50, 10) and Z.shape == (50, 16)


def test_extractor_equals_precomputed_features(digits, tmp_path):
    ext = make_extractor()
    X, y = digits.X_train[:300], digits.y_train[:300]
    a = ab.Learner(LinearHead(16, 10), extractor=ext, lr=1e-2, max_epochs=3, device="cpu")
    a.fit(X, y, seed=0)
    F = extract_features(ext, X, batch_size=64, out=tmp_path / "feats.npy")
    assert isinstance(F, np.memmap) and F.shape == (300, 16) and F.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(open_features(tmp_path / "feats.npy")), np.asarray(F))
    b = ab.Learner(LinearHead(16, 10), lr=1e-2, max_epochs=3, device="cpu")
    b.fit(F, y, seed=0)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(F), atol=1e-5)


def test_active_learning_on_memory_mapped_features(digits, tmp_path):
    F = extract_features(make_extractor(), digits.X_train, out=tmp_path / "pool.npy")
    pool = ab.Pool(open_features(tmp_path / "pool.npy"), digits.y_train, name="digits-features")
    learner = ab.Learner(ab.models.MLP(16, 10, embedding_dim=32), lr=1e-3, max_epochs=20, device="cpu")
    test_F = extract_features(make_extractor(), digits.X_test)
    hist = ab.run(pool, learner, "badge", initial=20, batch_size=10, rounds=2, test=(test_F, digits.y_test), seed=0)
    assert [r.n_labeled for r in hist.rounds] == [20, 30, 40]
    assert F.shape == (len(digits.y_train), 16)


def test_bad_inputs():
    with pytest.raises(TypeError, match="extractor"):
        ab.Learner(LinearHead(4, 2), extractor="resnet", device="cpu")
    with pytest.raises(ValueError, match="empty"):
        extract_features(make_extractor(), np.zeros((0, 64), np.float32))


def test_open_features_rejects_non_matrix(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        open_features(tmp_path / "v.npy")
