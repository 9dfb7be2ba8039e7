"""Bayes by Backprop heads: the closed-form KL, sampling in training mode and means in eval mode,
the KL / N term of the Learner's loss, consistent weight-sample mc_probs, and the model, grid and
workspace options."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

import activebatch as ab
from activebatch.datasets.pool import Pool
from activebatch.experiments import GridSpec
from activebatch.experiments.runner import build_model, execute_run
from activebatch.learning import Callback, Learner
from activebatch.learning.models import CNN, MLP, BayesianLinear, LinearHead, ResNet18, for_dataset
from activebatch.learning.models.bayesian import mc_weight_probs
from activebatch.workspace.errors import WorkspaceError
from activebatch.workspace.model import ModelConfig, build_learner

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _rho(sigma):
    return math.log(math.expm1(sigma))      # softplus^-1


def test_kl_matches_the_closed_form_by_hand():
    layer = BayesianLinear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.weight_rho.fill_(_rho(0.2))
    # log(1 / 0.2) + (0.2^2 + 0.5^2) / 2 - 1/2
    assert layer.kl_divergence().item() == pytest.approx(math.log(5) + 0.29 / 2 - 0.5, rel=1e-6)
    narrow = BayesianLinear(1, 1, bias=False, prior_sigma=0.5)
    narrow.load_state_dict(layer.state_dict())
    # log(0.5 / 0.2) + 0.29 / (2 * 0.25) - 1/2
    assert narrow.kl_divergence().item() == pytest.approx(math.log(2.5) + 0.58 - 0.5, rel=1e-6)
    # the posterior equal to the prior costs nothing
    with torch.no_grad():
        narrow.weight.zero_()
        narrow.weight_rho.fill_(_rho(0.5))
    assert abs(narrow.kl_divergence().item()) < 1e-6


def test_kl_matches_torch_distributions_weights_and_biases():
    torch.manual_seed(0)
    layer = BayesianLinear(6, 4, prior_sigma=0.7)
    with torch.no_grad():
        layer.weight_rho.uniform_(-4, 1)
        layer.bias_rho.uniform_(-4, 1)
        layer.bias.normal_()
    prior = Normal(0.0, 0.7)
    expected = (kl_divergence(Normal(layer.weight, F.softplus(layer.weight_rho)), prior).sum()
                + kl_divergence(Normal(layer.bias, F.softplus(layer.bias_rho)), prior).sum())
    torch.testing.assert_close(layer.kl_divergence(), expected)
    # it has gradients for the means and the rhos
    layer.kl_divergence().backward()
    assert layer.weight.grad is not None and layer.weight_rho.grad is not None and layer.bias_rho.grad is not None


@pytest.mark.parametrize("device", DEVICES)
def test_training_mode_samples_eval_mode_uses_the_means(device):
    layer = BayesianLinear(3, 2, rho_init=_rho(0.3)).to(device)
    x = torch.randn(5, 3, device=device)
    layer.eval()
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=0)
    layer.train()
    a, b = layer(x), layer(x)
    assert not torch.allclose(a, b)                    # a fresh weight sample per forward pass
    torch.manual_seed(7)
    c = layer(x)
    torch.manual_seed(7)
    torch.testing.assert_close(layer(x), c, rtol=0, atol=0)   # drawn from torch's (seeded) generator
    # over many passes the weights have mean mu and standard deviation sigma: x = e_1 reads column 1
    e1 = torch.zeros(1, 3, device=device)
    e1[0, 1] = 1.0
    with torch.no_grad():
        out = torch.stack([layer(e1)[0] - layer.bias for _ in range(4000)])   # bias noise: sigma^2 * 2 in total
    torch.testing.assert_close(out.mean(0), layer.weight[:, 1], atol=0.03, rtol=0)
    torch.testing.assert_close(out.std(0), torch.full((2,), 0.3 * math.sqrt(2), device=device), atol=0.03, rtol=0)


def test_the_head_keeps_the_model_contract_and_resets():
    for model in (MLP(4, 3, embedding_dim=8, bayesian=True), CNN(1, 3, bayesian=True),
                  ResNet18(1, 3, bayesian=True), LinearHead(4, 3, bayesian=True)):
        assert isinstance(model.head, BayesianLinear) and isinstance(model.head, nn.Linear)
    assert type(MLP(4, 3).head) is nn.Linear
    with pytest.raises(TypeError, match="bayesian must be True or False"):
        MLP(4, 3, bayesian="yes")
    learner = Learner(MLP(4, 3, embedding_dim=8, bayesian=True), device="cpu")
    with torch.no_grad():
        learner.model.head.weight_rho.fill_(2.0)
    learner.reset(0)
    assert torch.all(learner.model.head.weight_rho == -3.0) and torch.all(learner.model.head.bias_rho == -3.0)
    first = learner.model.head.weight.detach().clone()
    learner.reset(0)
    torch.testing.assert_close(learner.model.head.weight, first, rtol=0, atol=0)


class _Record(Callback):
    def __init__(self):
        self.rows = []

    def on_batch(self, fit, batch):
        # runs after the Learner's own KL callback, so the term is already there
        self.rows.append((batch.loss.item(), batch.extra_losses["kl"].item(), batch.total_loss.item(),
                          fit.model.head.kl_divergence().item() / len(fit.y)))

    def on_fit_end(self, fit):
        self.history = fit.history


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.normal(scale=3.0, size=(3, 4))[y] + rng.normal(size=(n, 4))).astype(np.float32)
    return X, y


def test_the_learner_adds_kl_over_n_to_the_loss():
    X, y = _blobs()
    rec = _Record()
    learner = Learner(MLP(4, 3, embedding_dim=8, bayesian=True), lr=1e-2, batch_size=16, max_epochs=3, device="cpu")
    learner.fit(X, y, seed=0, callbacks=[rec])
    assert len(rec.rows) == 3 * 4                                # 4 mini-batches an epoch
    for ce, kl, total, expected in rec.rows:
        assert kl == pytest.approx(expected, rel=1e-6)           # KL of the current posterior / N (N = 60)
        assert total == pytest.approx(ce + kl, rel=1e-6)
    assert [h["epoch"] for h in rec.history] == [1, 2, 3] and all("kl" in h for h in rec.history)
    sizes = [16, 16, 16, 12]                                     # the epoch's mean, weighted by batch size
    assert rec.history[0]["kl"] == pytest.approx(sum(r[1] * s for r, s in zip(rec.rows[:4], sizes)) / 60, rel=1e-6)
    # an ordinary head gets no such term
    hist = []

    class Keep(Callback):
        def on_fit_end(self, fit):
            hist.extend(fit.history)

    Learner(MLP(4, 3, embedding_dim=8), lr=1e-2, max_epochs=2, device="cpu").fit(X, y, seed=0, callbacks=[Keep()])
    assert hist and all("kl" not in h for h in hist)


def test_mc_weight_probs_is_softmax_of_each_weight_sample():
    g = torch.Generator().manual_seed(0)
    z, W, b = torch.randn(7, 5, generator=g), torch.randn(4, 3, 5, generator=g), torch.randn(4, 3, generator=g)
    masks = (torch.rand(4, 5, generator=g) > 0.5).float() * 2.0
    expected = torch.stack([torch.softmax(z @ W[s].T + b[s], dim=1) for s in range(4)])
    torch.testing.assert_close(mc_weight_probs(z, W, b), expected)
    masked = torch.stack([torch.softmax((masks[s] * z) @ W[s].T + b[s], dim=1) for s in range(4)])
    torch.testing.assert_close(mc_weight_probs(z, W, b, masks), masked)


@pytest.mark.parametrize("device", DEVICES)
def test_mc_probs_shapes_consistency_and_seed(device):
    X, y = _blobs()
    learner = Learner(MLP(4, 3, embedding_dim=8, bayesian=True), lr=1e-2, max_epochs=5, device=device,
                      mc_samples=6, eval_batch_size=7)
    learner.fit(X, y, seed=1)
    assert {"mc_probs", "target_mc_probs"} <= learner.evidence_fields()
    mc = learner.mc_probs(X, seed=3)
    assert mc.shape == (6, 60, 3) and mc.device.type == device
    torch.testing.assert_close(mc.sum(-1), torch.ones(6, 60, device=device))
    assert mc.std(0).max() > 1e-3                                           # the samples differ
    torch.testing.assert_close(learner.mc_probs(X, seed=3), mc, rtol=0, atol=0)   # determined by the seed
    assert not torch.allclose(learner.mc_probs(X, seed=4), mc)
    learner.eval_batch_size = 1000                                          # chunking does not matter
    torch.testing.assert_close(learner.mc_probs(X, seed=3), mc)
    perm = np.random.default_rng(0).permutation(60)                         # nor do the other rows
    torch.testing.assert_close(learner.mc_probs(X[perm[:9]], seed=3), mc[:, perm[:9]])
    # the samples are those of one weight draw per s: log-ratios are affine in the embedding
    z = torch.as_tensor(learner.embed(X), device=device)
    logr = torch.log(mc[..., 1] / mc[..., 0])                               # (S, n) = z . (w1 - w0) + (b1 - b0)
    A = torch.cat([z, torch.ones(60, 1, device=device)], 1).double()
    coef = torch.linalg.lstsq(A, logr.double().T).solution
    torch.testing.assert_close((A @ coef).T, logr.double(), atol=1e-4, rtol=0)
    # the mean prediction is close to the deterministic one of the means
    torch.testing.assert_close(mc.mean(0), learner.outputs(X, embeddings=False)[0], atol=0.1, rtol=0)


def test_mc_probs_of_a_bayesian_head_after_dropout_use_both():
    X, y = _blobs()
    learner = Learner(MLP(4, 3, embedding_dim=8, dropout=0.5, bayesian=True), lr=1e-2, max_epochs=3, device="cpu",
                      mc_samples=4)
    learner.fit(X, y, seed=0)
    from activebatch.learning.mc_dropout import consistent_masks

    seed = 5
    masks = consistent_masks(8, 4, 0.5, seed)
    W, b = learner.model.head.sample_weights(4, int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
    z = torch.as_tensor(learner.embed(X))
    torch.testing.assert_close(learner.mc_probs(X, seed=seed), mc_weight_probs(z, W, b, masks))


@pytest.mark.parametrize("strategy", ["bald", "batchbald"])
def test_run_bald_and_batchbald_on_a_bayesian_mlp(strategy):
    X, y = _blobs(90)
    pool = Pool(X, y, n_classes=3, name="blobs")
    learner = Learner(MLP(4, 3, embedding_dim=8, bayesian=True), lr=1e-2, max_epochs=5, device="cpu", mc_samples=5)
    hist = ab.run(pool, learner, strategy, initial=9, batch_size=4, rounds=2, seed=0, test=(X, y))
    assert list(hist.to_frame()["n_labeled"]) == [9, 13, 17]


def test_a_model_without_mc_samples_is_refused_with_a_hint():
    learner = Learner(MLP(4, 3, embedding_dim=8), device="cpu")
    assert "mc_probs" not in learner.evidence_fields()
    with pytest.raises(ValueError, match="bayesian=True"):
        learner.mc_probs(np.zeros((2, 4), dtype=np.float32))


# Options: models, grid specs, workspaces ---------------------------------------------------------------
BASE = dict(datasets=["digits"], models=["mlp"], batch_sizes=[10], seeds=1, initial=20, rounds=1)


def test_for_dataset_and_the_grid_build_a_bayesian_head():
    data = ab.datasets.load("digits")
    assert isinstance(for_dataset(data, "mlp", bayesian=True).head, BayesianLinear)
    assert isinstance(build_model("mlp", data, bayesian=True).head, BayesianLinear)
    assert type(build_model("mlp", data).head) is nn.Linear


def test_grid_spec_bayesian_option():
    with pytest.raises(ValueError, match="mc_probs.*bayesian = true"):
        GridSpec.from_dict({**BASE, "strategies": ["bald"], "training": {"max_epochs": 2}})
    with pytest.raises(ValueError, match="training.bayesian must be True or False, got str 'yes'"):
        GridSpec.from_dict({**BASE, "strategies": ["margin"], "training": {"bayesian": "yes"}})
    spec = GridSpec.from_dict({**BASE, "strategies": ["bald"],
                               "training": {"lr": 1e-3, "max_epochs": 3, "bayesian": True, "mc_samples": 4}})
    out = execute_run(spec.to_dict(), "digits|mlp|10|bald|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]


def test_workspace_model_option():
    with pytest.raises(WorkspaceError, match="bayesian must be true or false"):
        ModelConfig(bayesian="yes")
    config = ModelConfig(bayesian=True, hidden=8)
    assert ModelConfig.from_dict(config.to_dict()) == config
    learner = build_learner(config, kind="tabular", n_features=4, n_classes=3, meta={}, device="cpu")
    assert isinstance(learner.model.head, BayesianLinear) and "mc_probs" in learner.evidence_fields()
    plain = build_learner(ModelConfig(hidden=8), kind="tabular", n_features=4, n_classes=3, meta={}, device="cpu")
    assert "mc_probs" not in plain.evidence_fields()
