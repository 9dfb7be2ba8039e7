"""The cheap ensembles (snapshot, diversity-encouraging, split-head): their members against what an
independent callback or a plain computation says they must be, the learning-rate formula, the
mc_probs evidence, runs with member-reading strategies, and the grid-spec options."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import activebatch as ab
from activebatch.learning import Callback
from activebatch.learning.ensembles import (
    DiversityEnsemble,
    SnapshotCycles,
    SnapshotEnsemble,
    SplitHeadEnsemble,
    SplitHeadNetwork,
    cyclic_cosine_lr,
)
from activebatch.learning.models import MLP

KINDS = [SnapshotEnsemble, DiversityEnsemble, SplitHeadEnsemble]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.arange(150) % 3
    X = (rng.normal(scale=2.0, size=(3, 5))[y] + rng.normal(size=(150, 5))).astype(np.float32)
    return X, y


def mlp(dropout=0.0):
    return MLP(5, 3, embedding_dim=12, dropout=dropout)


def make(cls, **kw):
    opts = dict(lr=1e-2, batch_size=16, device="cpu", max_epochs=30)
    if cls is SnapshotEnsemble:
        opts["cycle_epochs"] = 3
    opts.update(kw)
    return cls(mlp(), n_members=3, **opts)


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class EpochCheckpoints(Callback):
    """State dicts at the end of every ``every``-th epoch (counted by epochs, not iterations)."""

    def __init__(self, every):
        self.every, self.states = every, []

    def on_epoch_end(self, fit):
        if fit.epoch % self.every == 0:
            self.states.append({k: v.detach().clone() for k, v in fit.model.state_dict().items()})


class LRLog(Callback):
    """The learning rate of every parameter group in each optimiser step."""

    def __init__(self):
        self.lrs = []

    def on_batch_end(self, fit, batch):
        self.lrs.append([g["lr"] for g in fit.optimizer.param_groups])


# Snapshot ensemble ---------------------------------------------------------------------------------
def test_snapshot_members_are_the_checkpoints_at_the_cycle_ends(data):
    X, y = data
    ens = make(SnapshotEnsemble)
    cap = EpochCheckpoints(every=3)
    fit = ens.fit(X[:100], y[:100], seed=4, callbacks=[cap])
    assert fit.epochs == 9 == ens.trained_epochs            # 3 cycles of 3 epochs, whatever the accuracy
    assert len(cap.states) == 3
    for member, state in zip(ens.model.members, cap.states):
        assert states_equal(member.state_dict(), state)
    assert not states_equal(cap.states[0], cap.states[1])
    # the last snapshot is the network the run ends with, and gives the embeddings
    assert states_equal(ens.model.members[-1].state_dict(), ens.trainer.model.state_dict())
    torch.testing.assert_close(ens.outputs(X[100:])[1], ens.model.members[-1].embed(torch.from_numpy(X[100:])))


def test_snapshot_learning_rate_follows_the_formula(data):
    X, y = data
    n, bs, cycle_epochs, M, alpha0 = 100, 16, 3, 3, 1e-2
    log = LRLog()
    ens = make(SnapshotEnsemble)
    ens.fit(X[:n], y[:n], seed=0, callbacks=[log])
    T = M * cycle_epochs * math.ceil(n / bs)
    c = math.ceil(T / M)
    expected = [alpha0 / 2 * (math.cos(math.pi * ((t - 1) % c) / c) + 1) for t in range(1, T + 1)]
    got = [lrs[0] for lrs in log.lrs]
    assert len(got) == T
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] == got[c] == got[2 * c] == alpha0              # warm restarts
    np.testing.assert_allclose(cyclic_cosine_lr(np.arange(1, T + 1), alpha0, c), expected, rtol=1e-12)


def test_snapshot_schedule_anneals_groups_added_by_callbacks_from_their_own_rate(data):
    X, y = data

    class ExtraGroup(Callback):
        def on_fit_start(self, fit):
            self.p = nn.Parameter(torch.zeros(1))
            fit.add_parameters([self.p], lr=0.5)

    log = LRLog()
    ens = make(SnapshotEnsemble)
    ens.fit(X[:40], y[:40], seed=0, callbacks=[ExtraGroup(), log])
    lrs = np.array(log.lrs)
    np.testing.assert_allclose(lrs[:, 1] / 0.5, lrs[:, 0] / 1e-2, rtol=1e-12)


def test_snapshot_budget_is_fixed_and_checked(data):
    X, y = data
    ens = make(SnapshotEnsemble, lr=5e-2, target_accuracy=0.5)
    fit = ens.fit(X[:30], y[:30], seed=0)          # easy data: 50% is reached in the first epoch
    assert ens.trainer.last_fit.epochs == 9
    assert len(ens.snapshot_accuracies) == 3
    assert fit.reached_target == all(a >= 0.5 for a in ens.snapshot_accuracies)
    with pytest.raises(ValueError, match="max_epochs"):
        SnapshotEnsemble(mlp(), n_members=5, cycle_epochs=10, max_epochs=40)
    with pytest.raises(ValueError, match="cycle_epochs"):
        SnapshotEnsemble(mlp(), n_members=2, cycle_epochs=0)


def test_snapshot_cycles_work_on_a_plain_learner(data):
    X, y = data
    learner = ab.Learner(mlp(), lr=1e-2, batch_size=16, device="cpu", max_epochs=4, target_accuracy=1.0)
    cycles, log = SnapshotCycles(2), LRLog()
    learner.fit(X[:32], y[:32], seed=0, callbacks=[cycles, log])     # 2 iterations an epoch: cycles of 4
    assert learner.last_fit.epochs == 4
    assert len(cycles.snapshots) == 2 and len(cycles.accuracies) == 2
    assert states_equal(cycles.snapshots[-1], learner.model.state_dict())
    np.testing.assert_allclose([lr[0] for lr in log.lrs], cyclic_cosine_lr(np.arange(1, 9), 1e-2, 4), rtol=1e-12)


# Diversity-encouraging ensemble ----------------------------------------------------------------------
def test_diversity_members_start_from_the_same_base_and_differ(data):
    X, y = data

    class StartWeights(Callback):
        def __init__(self):
            self.states = []

        def on_fit_start(self, fit):
            self.states.append({k: v.detach().clone() for k, v in fit.model.state_dict().items()})

    ens = make(DiversityEnsemble, base_epochs=2, dropout=0.5)
    starts = StartWeights()
    fit = ens.fit(X[:100], y[:100], seed=1, callbacks=[starts])
    assert ens.base.last_fit.epochs <= 2
    base = ens.base.model.state_dict()
    assert len(starts.states) == 3                       # the callbacks run in the members' fits only
    for s in starts.states:
        assert states_equal(s, base)
    assert all(m.model.dropout.p == 0.5 for m in ens.members) and ens.base.model.dropout.p == 0.0
    w = [m.model.hidden.weight.detach() for m in ens.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    mp = ens.member_probs(X[100:])
    assert (mp[0] - mp[1]).abs().max() > 1e-4
    assert fit.epochs == ens.base.last_fit.epochs + max(m.last_fit.epochs for m in ens.members)
    assert ens.trained_epochs == ens.base.last_fit.epochs + sum(m.last_fit.epochs for m in ens.members)
    assert fit.reached_target == all(m.last_fit.reached_target for m in ens.members)


def test_diversity_member_is_the_base_trained_on_with_dropout_and_its_seed(data):
    # member i by hand: a plain Learner from the base's weights, dropout p, seed member_seed(seed, i)
    X, y = data
    ens = make(DiversityEnsemble, base_epochs=1, dropout=0.5)
    ens.fit(X[:60], y[:60], seed=0)
    net = copy.deepcopy(ens.members[1].model)
    plain = ab.Learner(net, lr=1e-2, batch_size=16, device="cpu", max_epochs=30)
    plain.reset = lambda seed: net.load_state_dict(ens.base.model.state_dict())
    plain.fit(X[:60], y[:60], seed=ab.Committee.member_seed(0, 1))
    assert states_equal(net.state_dict(), ens.members[1].model.state_dict())


def test_diversity_needs_a_dropout_module():
    class NoDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = nn.Linear(5, 4), nn.Linear(4, 3)

        def embed(self, x):
            return self.body(x)

        def forward(self, x):
            return self.head(self.embed(x))

    with pytest.raises(TypeError, match="dropout"):
        DiversityEnsemble(NoDropout())
    with pytest.raises(ValueError, match="dropout"):
        DiversityEnsemble(mlp(), dropout=0.0)
    with pytest.raises(ValueError, match="base_epochs"):
        DiversityEnsemble(mlp(), base_epochs=0)


# Split-head ensemble ---------------------------------------------------------------------------------
def test_split_head_members_share_the_backbone_and_differ_in_heads(data):
    X, y = data
    ens = make(SplitHeadEnsemble)
    ens.fit(X[:100], y[:100], seed=2)
    net = ens.model
    assert isinstance(net, SplitHeadNetwork) and len(net.heads) == 3 and net.heads[0] is net.backbone.head
    Xt = torch.from_numpy(X[100:])
    z = net.backbone.embed(Xt)
    mp = ens.member_probs(X[100:])
    for m, head in enumerate(net.heads):   # every member is one head on the one shared embedding
        torch.testing.assert_close(mp[m], torch.softmax(head(z), dim=1))
    torch.testing.assert_close(ens.outputs(X[100:])[1], z)
    assert not torch.equal(net.heads[0].weight, net.heads[1].weight)
    # each head its own initialisation, drawn from the seed
    ens.reset(5)
    w0 = [h.weight.detach().clone() for h in net.heads]
    assert not torch.equal(w0[0], w0[1]) and not torch.equal(w0[1], w0[2])
    ens.reset(5)
    assert all(torch.equal(a, h.weight) for a, h in zip(w0, net.heads))


def test_split_head_loss_is_the_sum_of_the_heads_losses(data):
    X, y = data

    class FirstBatch(Callback):
        def on_batch(self, fit, batch):
            if batch.step == 0:
                with torch.no_grad():
                    z = fit.model.backbone.embed(batch.x)     # the model has no dropout
                    self.expected = sum(F.cross_entropy(h(z), batch.y) for h in fit.model.heads)
                self.total = batch.total_loss.detach()

    rec = FirstBatch()
    ens = make(SplitHeadEnsemble, max_epochs=1)
    ens.fit(X[:50], y[:50], seed=0, callbacks=[rec])
    torch.testing.assert_close(rec.total, rec.expected)


def test_split_head_trains_until_every_head_reaches_the_target(data):
    X, y = data

    class History(Callback):
        def on_fit_end(self, fit):
            self.history = fit.history

    h = History()
    ens = make(SplitHeadEnsemble, target_accuracy=0.9, max_epochs=40)
    fit = ens.fit(X[:100], y[:100], seed=0, callbacks=[h])
    lowest = [min(e[f"head_{m}_accuracy"] for m in range(3)) for e in h.history]
    assert [e["train_accuracy"] for e in h.history] == lowest   # the epoch's accuracy is the lowest head's
    assert fit.reached_target and lowest[-1] >= 0.9 and all(a < 0.9 for a in lowest[:-1])
    assert fit.epochs == len(h.history) < 40


# All three -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", KINDS)
def test_mc_probs_are_the_members_and_seeded(cls, data):
    X, y = data
    pool = ab.Pool(X[:120], y[:120], n_classes=3)
    pool.label(np.arange(60))
    ens = make(cls)
    ens.fit(*pool.labeled_data(), seed=3)
    assert "mc_probs" in ens.evidence_fields()
    ev = ens.evidence(pool)
    assert ev.mc_probs.shape == (3, 60, 3)
    torch.testing.assert_close(ev.probs, ev.mc_probs.mean(0))
    assert ev.embeddings.shape == (60, 12)
    torch.testing.assert_close(ens.mc_probs(pool.features(pool.unlabeled_indices)), ev.mc_probs)
    with pytest.raises(ValueError, match="members"):
        ens.mc_probs(X[:5], samples=7)
    assert ens.score(X[120:], y[120:]) == pytest.approx((ens.predict(X[120:]) == y[120:]).mean())
    again = make(cls)
    again.fit(*pool.labeled_data(), seed=3)
    torch.testing.assert_close(again.evidence(pool).mc_probs, ev.mc_probs, rtol=0, atol=0)
    other = make(cls)
    other.fit(*pool.labeled_data(), seed=4)
    assert not torch.equal(other.evidence(pool).mc_probs, ev.mc_probs)
    assert ens.model_name == f"MLPx3-{cls.kind}"


@pytest.mark.parametrize("cls", KINDS)
def test_strategy_callbacks_and_artifacts_reach_the_training(cls, data):
    X, y = data

    class Leave(Callback):
        def on_fit_end(self, fit):
            fit.artifacts["mine"] = fit.epoch

    ens = make(cls)
    ens.fit(X[:40], y[:40], seed=0, callbacks=[Leave()])
    assert "mine" in ens.fit_artifacts


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("strategy", ["var_ratio", "bald"])
def test_active_learning_runs_on_each(cls, strategy, data):
    X, y = data
    pool = ab.Pool(X[:120], y[:120], n_classes=3)
    hist = ab.run(pool, make(cls), strategy, initial=20, batch_size=10, rounds=2, test=(X[120:], y[120:]), seed=0)
    frame = hist.to_frame()
    assert len(frame) == 3 and pool.n_labeled == 40
    assert frame["model"].iloc[0] == f"MLPx3-{cls.kind}"
    assert frame["test_accuracy"].between(0, 1).all()


@pytest.mark.parametrize("cls", KINDS)
def test_member_count_is_checked(cls):
    with pytest.raises(ValueError, match="n_members"):
        cls(mlp(), n_members=1)


# Grid specs ----------------------------------------------------------------------------------------
GRID = dict(datasets=["digits"], models=["mlp"], batch_sizes=[10], seeds=1, initial=20, rounds=1,
            strategies=["var_ratio", "bald"])


def grid(**training):
    from activebatch.experiments import GridSpec

    return GridSpec.from_dict({**GRID, "training": {"lr": 1e-3, "max_epochs": 20, **training}})


@pytest.mark.parametrize("kind, options", [("snapshot", {"cycle_epochs": 2}), ("diversity", {"base_epochs": 1}),
                                           ("split_head", {})])
def test_grid_spec_trains_a_cheap_ensemble(kind, options, monkeypatch):
    from activebatch.experiments import runner

    built = []
    original = ab.run

    def spy(pool, learner, *args, **kw):
        built.append(learner)
        return original(pool, learner, *args, **kw)

    monkeypatch.setattr("activebatch.loop.run", spy)
    spec = grid(ensemble=kind, members=3, ensemble_options=options)
    out = runner.execute_run(spec.to_dict(), "digits|mlp|10|bald|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]
    (learner,) = built
    assert learner.kind == kind and learner.n_members == 3 and learner.lr == 1e-3
    assert all(getattr(learner, k) == v for k, v in options.items())


@pytest.mark.parametrize("training, error, message", [
    (dict(ensemble="bagging"), ValueError, "training.ensemble must be one of 'snapshot', 'diversity', 'split_head'"),
    (dict(ensemble="snapshot", committee=3), ValueError, "give one of them"),
    (dict(members=3), ValueError, "set training.ensemble"),
    (dict(ensemble_options={"cycle_epochs": 2}), ValueError, "set training.ensemble"),
    (dict(ensemble="split_head", members=1), ValueError, "training.members"),
    (dict(ensemble="snapshot", ensemble_options={"cycle_epochs": 10}), ValueError,
     "snapshot.*50 epochs, more than max_epochs=20"),
    (dict(ensemble="diversity", ensemble_options={"dropout": 1.5}), ValueError, "'diversity'.*dropout"),
    (dict(ensemble="split_head", ensemble_options={"cycles": 2}), TypeError, "'split_head'.*cycles"),
    (dict(ensemble="snapshot", ensemble_options=3), ValueError, "ensemble_options must be a table"),
])
def test_grid_spec_ensemble_errors_are_clear(training, error, message):
    with pytest.raises(error, match=message):
        grid(**training)


def test_member_reading_strategies_are_accepted_with_a_cheap_ensemble():
    with pytest.raises(ValueError, match="ensemble = 'snapshot'"):
        grid()                                       # no dropout, no committee, no ensemble: no mc_probs
    assert grid(ensemble="split_head").training["ensemble"] == "split_head"
