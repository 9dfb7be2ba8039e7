import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.learning.models import MLP, embedding_width


def _blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.normal(scale=0.3, size=(n, 5)).astype(np.float32) + np.eye(3, 5)[y].astype(np.float32) * 3
    return X, y


def test_mlp_structure_and_embedding_widths():
    m = MLP(10, 4)
    assert isinstance(m.head, torch.nn.Linear) and m.head.in_features == 256 and m.head.out_features == 4
    x = torch.randn(3, 2, 5)  # any trailing shape is flattened
    z = m.embed(x)
    assert z.shape == (3, 256) and (z >= 0).all()
    torch.testing.assert_close(m(x), m.head(z))
    assert embedding_width("image") == 256 and embedding_width("tabular") == 1024
    with pytest.raises(ValueError):
        embedding_width("audio")


def test_fit_reaches_target_and_is_reproducible():
    X, y = _blobs()
    learner = ab.Learner(MLP(5, 3, embedding_dim=32), lr=1e-2, device="cpu")
    res = learner.fit(X, y, seed=1)
    assert res.reached_target and res.train_accuracy >= 0.99 and res.epochs >= 1
    assert learner.score(X, y) >= 0.99
    w1 = learner.model.hidden.weight.detach().clone()
    p1 = learner.predict_proba(X)
    learner.fit(X[:50], y[:50], seed=3)  # something else in between
    learner.fit(X, y, seed=1)
    torch.testing.assert_close(learner.model.hidden.weight, w1)
    np.testing.assert_allclose(learner.predict_proba(X), p1)


def test_fit_reinitialises_from_scratch():
    X, y = _blobs()
    learner = ab.Learner(MLP(5, 3, embedding_dim=16), device="cpu", max_epochs=1)
    learner.reset(7)
    w_init = learner.model.hidden.weight.detach().clone()
    learner.fit(X, y, seed=7)
    assert not torch.equal(learner.model.hidden.weight, w_init)  # trained
    learner.reset(7)
    torch.testing.assert_close(learner.model.hidden.weight, w_init)  # fresh initial weights again


def test_epoch_cap():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = rng.integers(0, 2, size=300)  # random labels: 99% is out of reach in 2 epochs
    learner = ab.Learner(MLP(4, 2, embedding_dim=8), device="cpu", max_epochs=2)
    res = learner.fit(X, y)
    assert res.epochs == 2 and not res.reached_target


def test_outputs_match_the_model_and_evidence_is_lazy():
    X, y = _blobs(100)
    learner = ab.Learner(MLP(5, 3, embedding_dim=16), device="cpu", eval_batch_size=7)
    learner.fit(X[:30], y[:30])
    P, Z = learner.outputs(X)
    with torch.no_grad():
        ref_z = learner.model.embed(torch.tensor(X))
        ref_p = torch.softmax(learner.model(torch.tensor(X)), 1)
    torch.testing.assert_close(Z, ref_z)
    torch.testing.assert_close(P, ref_p)
    np.testing.assert_allclose(P.sum(1).numpy(), 1, rtol=1e-5)

    pool = ab.Pool(X, y)
    pool.label(np.arange(30))
    ev = learner.evidence(pool)
    assert ev.n_candidates == 70
    np.testing.assert_array_equal(ev.candidate_ids, np.arange(30, 100))
    torch.testing.assert_close(ev.probs, P[30:])
    torch.testing.assert_close(ev.embeddings, Z[30:])
    torch.testing.assert_close(ev.labeled_embeddings, Z[:30])
    assert ev.learner is learner and ev.pool is pool


def test_device_auto_and_bad_arguments():
    learner = ab.Learner(MLP(3, 2), device="auto")
    assert learner.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TypeError, match="embed"):
        ab.Learner(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError):
        ab.Learner(MLP(3, 2), lr=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            ab.Learner(MLP(3, 2), device="cuda")
    X, y = _blobs(20)
    with pytest.raises(ValueError, match="label 3"):
        ab.Learner(MLP(5, 3)).fit(X, np.full(20, 3))


@pytest.mark.parametrize("strategy", ["margin", "badge", "coreset"])
def test_the_fused_loop_selects_what_the_per_parameter_loop_selects(strategy):
    """The lean loop (fused Adam) against the loop before it (PyTorch's per-parameter Adam): the
    same batches, round after round, on digits with a fixed seed."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    picks = []
    for options in ({}, {"fused": False}):
        pool = ab.Pool(X[:1200], y[:1200], n_classes=10)
        learner = ab.Learner(MLP(64, 10, embedding_dim=64), lr=1e-3, max_epochs=60, device="cpu",
                             optimizer_options=options)
        hist = ab.run(pool, learner, strategy, initial=30, batch_size=20, rounds=3, test=(X[1200:], y[1200:]),
                      seed=0)
        picks.append([r.selected.tolist() for r in hist.rounds])
    assert picks[0] == picks[1]
