"""Adversarial margin: DeepFool and BIM distances against closed forms, ranking and edge cases."""
import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.learning.committee import Committee
from activebatch.learning.models import MLP, EmbeddingModel
from activebatch.strategies import AdversarialBIM, AdversarialDeepFool
from activebatch.strategies.adversarial import bim_distances, deepfool_distances

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _linear(k, d, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(d, k).to(torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(k, d, generator=g, dtype=torch.float64))
        lin.bias.copy_(torch.randn(k, generator=g, dtype=torch.float64))
    return lin.to(device).eval()


@pytest.mark.parametrize("device", DEVICES)
def test_deepfool_finds_the_exact_distance_of_a_linear_model(device):
    model = _linear(5, 7, seed=0, device=device)
    x = torch.randn(64, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(device)
    W, b = model.weight.detach(), model.bias.detach()
    f = x @ W.T + b
    k0 = f.argmax(1)
    ar = torch.arange(64, device=device)
    gap = (f - f[ar, k0][:, None]).abs()
    wdist = (W[None, :, :] - W[k0][:, None, :]).norm(dim=2)
    closed = torch.where(torch.arange(5, device=device)[None, :] == k0[:, None], torch.inf, gap / wdist).min(1).values
    for max_iter in (1, 50):                # one step is exact for an affine classifier
        dist, flipped = deepfool_distances(model, x, max_iter=max_iter)
        assert flipped.all() and dist.device.type == device
        torch.testing.assert_close(dist, closed.to(torch.float64), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_bim_finds_the_linf_distance_of_a_two_class_linear_model(norm):
    # For two classes the BIM direction sign(W_other - W_k0) is the optimal L-inf direction, so
    # the flip happens at |f_0 - f_1| / ||W_0 - W_1||_1 (and that times sqrt(d) in L2).
    model = _linear(2, 6, seed=3)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    W, b = model.weight.detach(), model.bias.detach()
    f = x @ W.T + b
    t = (f[:, 0] - f[:, 1]).abs() / (W[0] - W[1]).abs().sum()
    dist, flipped = bim_distances(model, x, step=0.01, max_iter=1000, refine=30, norm=norm)
    assert flipped.all()
    expected = t if norm == "linf" else t * np.sqrt(6)
    torch.testing.assert_close(dist, expected, rtol=0, atol=1e-7)
    coarse, _ = bim_distances(model, x, step=0.01, max_iter=1000, refine=0)
    assert ((coarse - t) >= -1e-12).all() and ((coarse - t) <= 0.01 + 1e-12).all()   # the iterate itself


def test_bim_epsilon_ball_and_iteration_cap():
    model = _linear(2, 6, seed=3)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    full, _ = bim_distances(model, x, step=0.01, max_iter=1000)
    capped, flipped = bim_distances(model, x, step=0.01, max_iter=1000, epsilon=0.1)
    assert torch.equal(flipped, full <= 0.1 + 1e-9)
    assert torch.isinf(capped[~flipped]).all()
    few, flipped_few = bim_distances(model, x, step=0.01, max_iter=3)
    assert torch.equal(flipped_few, full <= 0.03 + 1e-9) and torch.isinf(few[~flipped_few]).all()


class _Hinge(EmbeddingModel):
    """f_1 - f_0 = relu(x_0) - 0.5: flips at x_0 = 0.5; for x_0 < 0 the gradient is zero."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[0.0], [1.0]]))
            self.head.bias.copy_(torch.tensor([0.0, -0.5]))

    def embed(self, x):
        return torch.relu(x[:, :1])


def _hinge_pool(x0):
    X = np.stack([x0, np.zeros_like(x0)], axis=1).astype(np.float32)
    pool = ab.Pool(X, np.zeros(len(x0), dtype=int), n_classes=2)
    return pool, ab.Learner(_Hinge(), device="cpu")       # never fitted: the weights stay as set


def test_items_that_never_flip_come_last_in_pool_order():
    x0 = np.array([0.3, -1.0, 0.9, 0.45, -0.2, 0.58, 2.0, 0.1])
    pool, learner = _hinge_pool(x0)
    flips = x0 > 0
    expected = np.concatenate([np.flatnonzero(flips)[np.argsort(np.abs(x0[flips] - 0.5), kind="stable")],
                               np.flatnonzero(~flips)])
    for strat in (AdversarialDeepFool(), AdversarialBIM(step=0.01, max_iter=300, refine=20)):
        order = strat.select(learner.evidence(pool), len(x0), np.random.default_rng(0))
        np.testing.assert_array_equal(order, expected)
    dist, flipped = deepfool_distances(learner.model, torch.as_tensor(pool.X))
    np.testing.assert_array_equal(flipped.numpy(), flips)
    np.testing.assert_allclose(dist.numpy()[flips], np.abs(x0[flips] - 0.5), rtol=1e-6)
    assert np.isinf(dist.numpy()[~flips]).all()


@pytest.fixture(scope="module")
def trained():
    data = ab.datasets.load("digits")
    pool = ab.Pool(data.X_train[:200], data.y_train[:200], n_classes=10)
    pool.label(np.arange(100))
    learner = ab.Learner(MLP(64, 10, embedding_dim=16), lr=1e-2, device="cpu", max_epochs=30)
    learner.fit(*pool.labeled_data(), seed=0)
    return learner, pool


@pytest.mark.parametrize("cls", [AdversarialDeepFool, AdversarialBIM])
def test_ranking_follows_the_distances_and_ignores_chunking(cls, trained):
    learner, pool = trained
    ev = learner.evidence(pool)
    a = cls(chunk_size=7).select(ev, 100, np.random.default_rng(0))
    b = cls().select(ev, 100, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    x = torch.as_tensor(pool.features(pool.unlabeled_indices))
    fn = deepfool_distances if cls is AdversarialDeepFool else bim_distances
    dist, flipped = fn(learner.model, x)
    assert flipped.float().mean() > 0.9
    d = dist.numpy()[a]
    assert np.all(np.diff(d[np.isfinite(d)]) >= 0)
    # candidates near the boundary in input space also have small softmax margins
    probs = learner.outputs(x)[0]
    top2 = probs.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).numpy()
    assert np.median(margin[a[:10]]) < np.median(margin[a[-10:]])


def test_committee_is_attacked_as_one_classifier(trained):
    _, pool = trained
    com = Committee(MLP(64, 10, embedding_dim=16), 3, lr=1e-2, device="cpu", max_epochs=10)
    com.fit(*pool.labeled_data(), seed=0)
    idx = AdversarialDeepFool().select(com.evidence(pool), 10, np.random.default_rng(0))
    assert np.unique(idx).size == 10
    x = torch.as_tensor(pool.features(pool.unlabeled_indices[:5]))
    torch.testing.assert_close(torch.softmax(com.model(x), 1), com.outputs(x)[0])


def test_options_are_checked():
    with pytest.raises(ValueError, match="max_iter"):
        AdversarialDeepFool(max_iter=0)
    with pytest.raises(ValueError, match="overshoot"):
        AdversarialDeepFool(overshoot=-1)
    with pytest.raises(ValueError, match="step"):
        AdversarialBIM(step=0)
    with pytest.raises(ValueError, match="norm"):
        AdversarialBIM(norm="l1")
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialBIM(epsilon=-0.1)
    with pytest.raises(ValueError, match="chunk_size"):
        AdversarialBIM(chunk_size=0)
    ev = ab.Evidence(3, learner=object(), pool=object())
    with pytest.raises(ValueError, match="candidate_ids"):
        AdversarialDeepFool().select(ev, 1, np.random.default_rng(0))
