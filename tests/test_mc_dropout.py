"""Consistent MC dropout: the same S masks for every item, seeded, chunk- and order-independent."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.learning.mc_dropout import consistent_masks, head_dropout, mc_head_probs
from activebatch.learning.models import CNN, MLP, LinearHead


def _blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.normal(scale=1.0, size=(n, 6)).astype(np.float32) + np.eye(3, 6)[y].astype(np.float32) * 2
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _blobs()
    learner = ab.Learner(MLP(6, 3, embedding_dim=24, dropout=0.5), lr=1e-2, device="cpu", max_epochs=20,
                         mc_samples=9, eval_batch_size=64)
    learner.fit(X[:60], y[:60], seed=2)
    return learner, X, y


def test_same_seed_same_samples_other_seed_other_samples(fitted):
    learner, X, _ = fitted
    a = learner.mc_probs(X, seed=5)
    assert a.shape == (9, 240, 3) and a.dtype == torch.float32
    torch.testing.assert_close(a.sum(2), torch.ones(9, 240))
    assert torch.equal(a, learner.mc_probs(X, seed=5))
    assert not torch.allclose(a, learner.mc_probs(X, seed=6))
    assert learner.mc_probs(X, samples=4, seed=5).shape == (4, 240, 3)
    # the S passes disagree (dropout is active), yet are the same function for every item
    assert (a.std(dim=0) > 1e-4).any()


def test_an_items_predictions_do_not_depend_on_its_position_or_the_chunking(fitted):
    learner, X, _ = fitted
    ref = learner.mc_probs(X, seed=3)
    perm = np.random.default_rng(0).permutation(len(X))
    torch.testing.assert_close(learner.mc_probs(X[perm], seed=3), ref[:, perm], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(learner.mc_probs(X[17:18], seed=3), ref[:, 17:18], rtol=1e-6, atol=1e-7)
    old = learner.eval_batch_size
    try:
        for size in (1, 7, 1000):
            learner.eval_batch_size = size
            torch.testing.assert_close(learner.mc_probs(X, seed=3), ref, rtol=1e-6, atol=1e-7)
    finally:
        learner.eval_batch_size = old


def test_samples_are_the_head_on_masked_embeddings(fitted):
    """p_s(y | x) = softmax(head(m_s * z(x) / (1 - p))) with Bernoulli(1 - p) masks m_s."""
    learner, X, _ = fitted
    masks = consistent_masks(24, 9, 0.5, seed=3)
    assert set(masks.unique().tolist()) <= {0.0, 2.0}
    z = torch.relu(learner.model.hidden(learner.model.input_norm(torch.from_numpy(X)).flatten(1)))
    with torch.no_grad():
        expected = torch.softmax(learner.model.head(masks[:, None, :] * z[None]), dim=-1)
    torch.testing.assert_close(learner.mc_probs(X, seed=3), expected, rtol=1e-5, atol=1e-6)
    # the mask of one sample is what nn.Dropout would draw: each unit kept with probability 1 - p
    many = consistent_masks(1000, 50, 0.3, seed=0)
    kept = (many > 0).double().mean().item()
    assert kept == pytest.approx(0.7, abs=0.01)
    assert torch.allclose(many[many > 0], torch.tensor(1 / 0.7))


def test_mc_probs_are_lazy_evidence_with_the_fit_seed(fitted, monkeypatch):
    learner, X, y = fitted
    pool = ab.Pool(X, y)
    pool.label(np.arange(40))
    calls = []
    real = ab.Learner.mc_probs

    def spy(self, X, **kw):
        calls.append(kw)
        return real(self, X, **kw)

    monkeypatch.setattr(ab.Learner, "mc_probs", spy)
    ev = learner.evidence(pool)
    assert ev.has("mc_probs") and not calls
    ab.strategies.get("entropy").select(ev, 5, np.random.default_rng(0))
    assert not calls                                        # entropy does not read mc_probs
    ab.strategies.get("bald").select(ev, 5, np.random.default_rng(0))
    assert calls == [{"seed": 2}]                           # the seed of the last fit
    assert ev.mc_probs.shape == (9, 200, 3)
    ab.strategies.get("batchbald").select(ev, 5, np.random.default_rng(0))
    assert len(calls) == 1                                  # computed once per evidence
    torch.testing.assert_close(ev.mc_probs, real(learner, X[40:], seed=2))
    torch.testing.assert_close(learner.evidence(pool, mc_seed=8).mc_probs, real(learner, X[40:], seed=8))


def test_models_without_dropout_offer_no_mc_probs():
    X, y = _blobs(60)
    learner = ab.Learner(MLP(6, 3, embedding_dim=8), device="cpu", max_epochs=2)
    learner.fit(X, y)
    pool = ab.Pool(X, y)
    pool.label(np.arange(10))
    assert not learner.evidence(pool).has("mc_probs")
    with pytest.raises(ValueError, match="dropout"):
        learner.mc_probs(X)
    with pytest.raises(ValueError, match="mc_probs"):
        ab.strategies.get("bald").select(learner.evidence(pool), 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="mc_samples"):
        ab.Learner(MLP(6, 3, dropout=0.5), device="cpu", mc_samples=0)


def test_other_models_with_dropout_before_the_head():
    rng = np.random.default_rng(0)
    images = rng.random((30, 1, 12, 12)).astype(np.float32)
    for model, X in ((CNN(1, 4, embedding_dim=16, dropout=0.4), images),
                     (LinearHead(10, 4, dropout=0.2), rng.normal(size=(30, 10)).astype(np.float32))):
        learner = ab.Learner(model, device="cpu", mc_samples=5, eval_batch_size=8)
        a = learner.mc_probs(X, seed=1)
        assert a.shape == (5, 30, 4)
        torch.testing.assert_close(learner.mc_probs(X[::-1].copy(), seed=1), a.flip(1), rtol=1e-6, atol=1e-7)


def test_warns_about_dropout_layers_it_does_not_sample():
    class Deep(MLP):
        def __init__(self):
            super().__init__(6, 3, embedding_dim=8, dropout=0.5)
            self.inner = nn.Dropout(0.3)

    with pytest.warns(UserWarning, match="inner"):
        assert head_dropout(Deep()) == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert head_dropout(MLP(6, 3, dropout=0.1)) == pytest.approx(0.1)
        assert head_dropout(MLP(6, 3)) == 0.0
    with pytest.raises(ValueError, match="dropout rate"):
        consistent_masks(4, 2, 1.0, seed=0)
    assert mc_head_probs(torch.zeros(0, 8), nn.Linear(8, 3), torch.ones(2, 8)).shape == (2, 0, 3)


def test_bayesian_strategies_in_the_loop():
    data = ab.datasets.load("digits")
    histories = []
    for _ in range(2):
        pool = ab.Pool(data.X_train, data.y_train, name=data.name)
        learner = ab.Learner(MLP(data.n_features, 10, embedding_dim=32, dropout=0.5), lr=1e-2, device="cpu",
                             max_epochs=30, mc_samples=10)
        histories.append(ab.run(pool, learner, "batchbald", initial=30, batch_size=10, rounds=1,
                                test=(data.X_test, data.y_test), seed=1))
    frame = histories[0].to_frame()
    assert frame["n_labeled"].tolist() == [30, 40]
    for a, b in zip(histories[0].selections, histories[1].selections):
        np.testing.assert_array_equal(a, b)
