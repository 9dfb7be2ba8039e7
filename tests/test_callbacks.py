"""Training callbacks: the hooks' order, extra loss terms and modules, schedules, stopping, and the
default loop unchanged (checked against a plain reimplementation of the BADGE protocol's fit)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.learning import Callback, LRScheduler
from activebatch.learning.models import MLP
from activebatch.strategies import Strategy, register
from activebatch.strategies.base import _REGISTRY


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = (rng.normal(scale=2.0, size=(3, 5))[y] + rng.normal(size=(90, 5))).astype(np.float32)
    return X, y


def learner(**kw):
    torch.manual_seed(0)
    opts = dict(lr=1e-2, batch_size=16, max_epochs=6, device="cpu", target_accuracy=1.0)
    opts.update(kw)
    return ab.Learner(MLP(5, 3, embedding_dim=12, dropout=0.3), **opts)


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, fit):
        self.calls.append("fit_start")

    def on_epoch_start(self, fit):
        self.calls.append(f"epoch_start {fit.epoch}")

    def on_batch(self, fit, batch):
        self.calls.append("batch")

    def on_batch_end(self, fit, batch):
        self.calls.append("batch_end")

    def on_epoch_end(self, fit):
        self.calls.append(f"epoch_end {fit.epoch}")

    def on_fit_end(self, fit):
        self.calls.append("fit_end")


def test_hooks_are_called_in_order(data):
    rec = Recorder()
    res = learner(callbacks=[rec]).fit(*data, seed=1)
    per_epoch = ["batch", "batch_end"] * math.ceil(90 / 16)
    expected = ["fit_start"]
    for e in range(1, res.epochs + 1):
        expected += [f"epoch_start {e}", *per_epoch, f"epoch_end {e}"]
    assert rec.calls == expected + ["fit_end"]


@pytest.mark.parametrize("options, plain_adam", [
    ({}, {"fused": True}),                         # the default: PyTorch's fused Adam
    ({"fused": False}, {"foreach": False}),        # the per-parameter update, on request
])
def test_the_default_loop_is_the_plain_protocol(data, options, plain_adam):
    """Adam from a fresh initialisation, mini-batches in a seeded random order, dropout seeded,
    until the epoch's running training accuracy reaches the target: written out plainly here."""
    X, y = data
    lrn = learner(target_accuracy=0.95, max_epochs=50, optimizer_options=options)
    res = lrn.fit(X, y, seed=3, callbacks=[Callback()])     # a no-op callback changes nothing

    model = MLP(5, 3, embedding_dim=12, dropout=0.3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model.reset_parameters()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, **plain_adam)
    gen = torch.Generator().manual_seed(3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    acc, epochs = 0.0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model.train()
        while epochs < 50 and acc < 0.95:
            epochs += 1
            perm = torch.randperm(90, generator=gen)
            correct = 0
            for i in range(0, 90, 16):
                b = perm[i:i + 16]
                out = model(Xt[b])
                loss = nn.functional.cross_entropy(out, yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                correct += int((out.argmax(1) == yt[b]).sum())
            acc = correct / 90
    assert res.epochs == epochs and res.train_accuracy == acc
    assert torch.equal(weights(lrn.model), weights(model))


def test_fused_and_per_parameter_adam_train_the_same_model_to_rounding(data):
    """The fused optimiser is the same update: over a fixed number of epochs the weights agree
    with the per-parameter implementation to float rounding."""
    X, y = data
    fused = learner(target_accuracy=1.0, max_epochs=5)
    plain = learner(target_accuracy=1.0, max_epochs=5, optimizer_options={"fused": False})
    fused.fit(X, y, seed=4)
    plain.fit(X, y, seed=4)
    assert fused.last_fit.epochs == plain.last_fit.epochs == 5
    assert torch.allclose(weights(fused.model), weights(plain.model), rtol=0, atol=1e-5)


class L2OnHead(Callback):
    def __init__(self, weight):
        self.weight = weight

    def on_batch(self, fit, batch):
        batch.add_loss("l2_head", self.weight * fit.model.head.weight.pow(2).sum())


def test_added_loss_terms_are_trained_and_recorded(data):
    plain = learner()
    plain.fit(*data, seed=0)
    shrunk = learner(callbacks=[L2OnHead(1.0)])
    shrunk.fit(*data, seed=0)
    assert shrunk.model.head.weight.norm() < 0.5 * plain.model.head.weight.norm()
    hist = []
    keep = type("H", (Callback,), {"on_fit_end": lambda self, f: hist.extend(f.history)})
    shrunk.fit(*data, seed=0, callbacks=[keep()])
    assert len(hist) == 6 and all(h["l2_head"] > 0 and h["loss"] > h["l2_head"] for h in hist)


class Probe(Callback):
    """A linear probe trained on the backbone's (detached) embeddings, with the fit's optimiser."""

    def on_fit_start(self, fit):
        with torch.random.fork_rng(devices=[]):   # leave the fit's random stream (dropout) alone
            torch.manual_seed(5)
            self.probe = nn.Linear(12, 3)
        self.before = self.probe.weight.detach().clone()
        fit.add_parameters(self.probe.parameters(), lr=5e-2)
        self.losses = []

    def on_batch(self, fit, batch):
        loss = nn.functional.cross_entropy(self.probe(batch.embeddings.detach()), batch.y)
        batch.add_loss("probe", loss)
        self.losses.append(float(loss.detach()))


def test_an_extra_module_on_the_embeddings_is_trained_without_touching_the_backbone(data):
    plain = learner()
    plain.fit(*data, seed=2)
    probe = Probe()
    with_probe = learner(callbacks=[probe])
    with_probe.fit(*data, seed=2)
    assert not torch.equal(probe.probe.weight, probe.before)
    assert np.mean(probe.losses[-5:]) < np.mean(probe.losses[:5])
    # detached embeddings and a separate parameter group: the backbone trains exactly as without it
    assert torch.equal(weights(with_probe.model), weights(plain.model))


def test_lr_scheduler_and_stopping(data):
    seen = []

    class Watch(Callback):
        def on_epoch_start(self, fit):
            seen.append(fit.optimizer.param_groups[0]["lr"])

        def on_epoch_end(self, fit):
            fit.stop = fit.epoch == 4

    res = learner(callbacks=[LRScheduler(lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)),
                             Watch()]).fit(*data, seed=0)
    assert res.epochs == 4
    np.testing.assert_allclose(seen, [1e-2 * 0.5 ** e for e in range(4)])
    steps = []
    per_step = LRScheduler(lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 / (k + 1)), interval="step")
    learner(max_epochs=1, callbacks=[per_step, type("S", (Callback,), {
        "on_batch": lambda self, f, b: steps.append(f.optimizer.param_groups[0]["lr"])})()]).fit(*data, seed=0)
    np.testing.assert_allclose(steps, [1e-2 / (k + 1) for k in range(math.ceil(90 / 16))])


def test_per_epoch_predictions_leave_training_mode(data):
    X, _ = data
    preds, modes = [], []

    class EachEpoch(Callback):
        def on_epoch_end(self, fit):
            preds.append(fit.predict(X[:10]).numpy())
            modes.append(fit.model.training)

    learner(callbacks=[EachEpoch()]).fit(*data, seed=0)
    assert len(preds) == 6 and all(m for m in modes)
    assert all(p.shape == (10, 3) and np.allclose(p.sum(1), 1, atol=1e-5) for p in preds)
    assert not np.allclose(preds[0], preds[-1])


def test_optimizer_choice(data):
    sgd = learner(optimizer="sgd", optimizer_options={"momentum": 0.9})
    sgd.fit(*data, seed=0)
    rms = learner(optimizer=torch.optim.RMSprop)
    rms.fit(*data, seed=0)
    assert not torch.equal(weights(sgd.model), weights(rms.model))
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'adamw', 'sgd'"):
        learner(optimizer="adagrad")
    with pytest.raises(TypeError, match="Callback instances"):
        learner(callbacks=[lambda fit: None])
    with pytest.raises(ValueError, match="scalar tensor"):
        learner(callbacks=[type("B", (Callback,), {"on_batch": lambda s, f, b: b.add_loss("x", torch.ones(2))})()]
                ).fit(*data, seed=0)


def test_strategies_training_callbacks_are_attached_by_the_loop(data):
    X, y = data
    fits, seen_pools = [], []

    class Counts(Callback):
        def on_fit_start(self, fit):
            fits.append(fit.learner)

    @register
    class WithCallbacks(Strategy):
        name = "test_with_callbacks"
        needs = frozenset({"probs"})

        def training_callbacks(self, pool=None):
            seen_pools.append(pool)
            return [Counts()]

        def _select(self, evidence, n, rng):
            return np.arange(n)

    try:
        lrn = learner(max_epochs=2)
        pool = ab.Pool(X, y, n_classes=3)
        ab.run(pool, lrn, "test_with_callbacks", initial=10, batch_size=5, rounds=2, test=(X, y))
        assert fits == [lrn] * 3
        assert seen_pools == [pool]          # the callbacks may read the unlabeled items
        fits.clear()
        proxy = learner(max_epochs=1)
        ab.run(ab.Pool(X, y, n_classes=3), learner(max_epochs=2), "test_with_callbacks", initial=10, batch_size=5,
               rounds=2, test=(X, y), proxy=proxy)
        assert fits == [proxy] * 3     # the selection model's fits, not the reported model's
    finally:
        _REGISTRY.pop("test_with_callbacks")


class EntropyOnUnlabeled(Callback):
    """A semi-supervised term: minimise the predictive entropy on mini-batches of unlabeled items."""

    def __init__(self, pool, weight=1.0):
        self.pool, self.weight = pool, weight

    def on_fit_start(self, fit):
        self.rng = np.random.default_rng(fit.seed)

    def on_batch(self, fit, batch):
        rows = self.rng.choice(self.pool.unlabeled_indices, size=16, replace=False)
        p = torch.softmax(fit.model(fit.learner._to_tensor(self.pool.features(rows))), dim=1)
        batch.add_loss("unlabeled_entropy", self.weight * -(p * p.clamp_min(1e-12).log()).sum(1).mean())


def test_a_callback_can_train_on_the_unlabeled_items(data):
    X, y = data
    pool = ab.Pool(X, y, n_classes=3)
    pool.label(np.arange(12))
    Xu = pool.features(pool.unlabeled_indices)

    def unlabeled_entropy(lrn):
        p = lrn.predict_proba(Xu)
        return float(-(p * np.log(np.clip(p, 1e-12, None))).sum(1).mean())

    plain = learner(batch_size=4, max_epochs=100)
    semi = learner(batch_size=4, max_epochs=100, callbacks=[EntropyOnUnlabeled(pool)])
    plain.fit(*pool.labeled_data(), seed=0)
    semi.fit(*pool.labeled_data(), seed=0)
    assert unlabeled_entropy(semi) < 0.75 * unlabeled_entropy(plain)   # measured: 0.34 against 0.54


def test_a_strategys_training_work_counts_as_its_selection_time():
    import time

    import activebatch as ab
    from activebatch.learning import Callback
    from activebatch.learning.callbacks import TimedCallback
    from activebatch.strategies import Random

    class Slow(Callback):
        def on_fit_end(self, fit):
            time.sleep(0.2)

    class SlowRandom(Random):
        def training_callbacks(self, pool=None):
            return [Slow()]

    timed = TimedCallback(Slow())
    timed.on_fit_end(None)
    assert timed.seconds >= 0.2
    with pytest.raises(TypeError, match="wraps a Callback"):
        TimedCallback(object())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    learner = ab.Learner(ab.learning.models.MLP(4, 2, embedding_dim=8), max_epochs=2, device="cpu")
    frame = ab.run(ab.Pool(X, y, n_classes=2), learner, SlowRandom(), initial=10, batch_size=5, rounds=2,
                   test=(X, y), seed=0).to_frame()
    # each selection is charged the 0.2 s its model's fit spent in the strategy's callback
    assert (frame.loc[frame["round"] > 0, "select_seconds"] >= 0.2).all()
    plain = ab.run(ab.Pool(X, y, n_classes=2), learner, "random", initial=10, batch_size=5, rounds=2,
                   test=(X, y), seed=0).to_frame()
    assert (plain["select_seconds"] < 0.2).all()


class _Snapshot(Callback):
    """Records the weights and the optimiser's state size at the end of every epoch."""

    def __init__(self):
        self.weights, self.states = [], []

    def on_epoch_end(self, fit):
        self.weights.append(weights(fit.model).clone())
        self.states.append(len(fit.optimizer.state))


def test_restart_if_stalled_draws_fresh_weights_and_a_fresh_optimiser(data):
    from activebatch.learning import RestartIfStalled

    X, y = data
    before, after = _Snapshot(), _Snapshot()
    restart = RestartIfStalled(every=2, below=1.0)      # never reached at this lr: a restart every 2 epochs
    lrn = learner(lr=1e-9, max_epochs=6, callbacks=[before, restart, after])
    lrn.fit(X, y, seed=3)
    assert restart.restarts == 3 and restart.total_restarts == 3
    for e in range(6):
        restarted = (e + 1) % 2 == 0
        assert after.states[e] == (0 if restarted else len(list(lrn.model.parameters())))
        assert torch.equal(before.weights[e], after.weights[e]) is not restarted
    # the epochs after a restart start from the new weights (lr 1e-9 barely moves them)
    assert torch.allclose(after.weights[1], before.weights[2], atol=1e-6)
    assert not torch.allclose(before.weights[1], before.weights[2], atol=1e-3)
    # every restart draws new weights from the fit's seeded stream: reproducible, never repeated
    again = _Snapshot()
    learner(lr=1e-9, max_epochs=6, callbacks=[RestartIfStalled(every=2, below=1.0), again]).fit(X, y, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(after.weights, again.weights))
    assert not torch.allclose(after.weights[1], after.weights[3], atol=1e-3)
    lrn.fit(X, y, seed=3)
    assert restart.restarts == 3 and restart.total_restarts == 6


def test_restart_if_stalled_leaves_a_fit_that_learns_untouched(data):
    from activebatch.learning import RestartIfStalled

    X, y = data
    restart = RestartIfStalled(every=1)               # 3 separable classes: above 20% from the first epoch
    with_cb = learner(callbacks=[restart])
    with_cb.fit(X, y, seed=1)
    plain = learner()
    plain.fit(X, y, seed=1)
    assert restart.restarts == 0
    assert torch.equal(weights(with_cb.model), weights(plain.model))


@pytest.mark.parametrize("value, error, message", [
    (dict(every=0), ValueError, "every must be an integer >= 1, got 0"),
    (dict(below=0.0), ValueError, r"below must be a number in \(0, 1\], got 0.0"),
    (dict(below=1.5), ValueError, r"below must be a number in \(0, 1\], got 1.5"),
    (dict(after=3), ValueError, "unknown restart_stalled option"),
    ("yes", TypeError, "restart_stalled must be true/false or a table"),
])
def test_restart_if_stalled_options_are_checked(value, error, message):
    from activebatch.learning import RestartIfStalled

    with pytest.raises(error, match=message):
        RestartIfStalled.coerce(value)
    assert RestartIfStalled.coerce(False) is None and RestartIfStalled.coerce(None) is None
    assert repr(RestartIfStalled.coerce(True)) == "RestartIfStalled(every=50, below=0.2)"
