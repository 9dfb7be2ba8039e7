"""Learning loss (Yoo & Kweon, CVPR 2019): the ranking loss by hand, the module trained by the
callback, taps on the library's three architectures, the stop-gradient share, selection against
a plain per-item computation, the shared checks and the loop."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import activebatch as ab
from activebatch.learning import Callback
from activebatch.learning.models import CNN, MLP, ResNet18
from activebatch.strategies.loss_prediction import (
    LossPrediction,
    LossPredictionModule,
    default_taps,
    global_average_pool,
    pairwise_ranking_loss,
    predicted_losses,
)
from activebatch.testing import check_strategy


# The ranking loss ---------------------------------------------------------------------------------
def test_ranking_loss_equals_the_formula_on_hand_made_pairs():
    pred = torch.tensor([1.0, 2.0, 0.5, 3.0])
    target = torch.tensor([0.0, 1.0, 2.0, 3.0])
    # pairs (0, 3): l_0 < l_3 -> A = -1, max(0, 1 + (1 - 3)) = 0
    #       (1, 2): l_1 < l_2 -> A = -1, max(0, 1 + (2 - 0.5)) = 2.5
    assert pairwise_ranking_loss(pred, target).item() == pytest.approx(1.25)
    # the right order with a gap >= margin costs nothing; a smaller gap costs margin - gap
    assert pairwise_ranking_loss(torch.tensor([5.0, 0.0]), torch.tensor([2.0, 1.0])).item() == 0.0
    assert pairwise_ranking_loss(torch.tensor([0.3, 0.0]), torch.tensor([2.0, 1.0])).item() == pytest.approx(0.7)
    assert pairwise_ranking_loss(torch.tensor([0.3, 0.0]), torch.tensor([2.0, 1.0]), margin=2.0).item() \
        == pytest.approx(1.7)
    # equal targets count as A = -1 (the paper's "otherwise"): 1 - (-1)(0.3 - 0) = 1.3
    assert pairwise_ranking_loss(torch.tensor([0.3, 0.0]), torch.tensor([1.0, 1.0])).item() == pytest.approx(1.3)


def test_ranking_loss_leaves_the_middle_item_of_an_odd_batch_out():
    target = torch.tensor([3.0, 1.0, 100.0, 0.0, 2.0])
    # pairs (0, 4): A = +1, 1 - (0.5 - 0.0) = 0.5;  (1, 3): A = +1, 1 - (0.0 - 2.0) = 3
    pred = torch.tensor([0.5, 0.0, -50.0, 2.0, 0.0])
    assert pairwise_ranking_loss(pred, target).item() == pytest.approx((0.5 + 3.0) / 2)
    pred[2] = 50.0                                   # the unpaired item changes nothing
    assert pairwise_ranking_loss(pred, target).item() == pytest.approx(1.75)
    with pytest.raises(ValueError, match="at least one pair"):
        pairwise_ranking_loss(torch.tensor([1.0]), torch.tensor([1.0]))


def test_ranking_loss_gradient_reaches_the_predictions_only():
    pred = torch.tensor([0.3, 0.0], requires_grad=True)
    target = torch.tensor([2.0, 1.0], requires_grad=True)
    pairwise_ranking_loss(pred, target).backward()
    torch.testing.assert_close(pred.grad, torch.tensor([-1.0, 1.0]))
    assert target.grad is None


def test_global_average_pool():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    torch.testing.assert_close(global_average_pool(x), x.mean(dim=(2, 3)))
    h = torch.randn(4, 7)
    assert global_average_pool(h) is h
    seq = torch.randn(2, 5, 9)
    torch.testing.assert_close(global_average_pool(seq), seq.mean(dim=2))
    with pytest.raises(ValueError, match="tapped layer"):
        global_average_pool(torch.randn(3))


def test_module_architecture():
    module = LossPredictionModule([64, 128, 256, 512])
    assert [fc.in_features for fc in module.levels] == [64, 128, 256, 512]
    assert all(fc.out_features == 128 for fc in module.levels) and module.out.in_features == 4 * 128
    feats = [torch.randn(5, c) for c in (64, 128, 256, 512)]
    expected = module.out(torch.cat([torch.relu(fc(f)) for fc, f in zip(module.levels, feats)], 1)).squeeze(1)
    torch.testing.assert_close(module(feats), expected)


# Training ----------------------------------------------------------------------------------------------
def _blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = (rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)).astype(np.float32)
    return X, y


def _fit_mlp(X, y, strategy, **kw):
    torch.manual_seed(0)
    opts = dict(lr=1e-2, batch_size=32, max_epochs=20, target_accuracy=1.0, device="cpu")
    opts.update(kw)
    learner = ab.Learner(MLP(X.shape[1], 2, embedding_dim=32, dropout=0.2), **opts)
    learner.fit(X, y, seed=0, callbacks=strategy.training_callbacks())
    return learner


def test_the_callback_trains_the_module_to_rank_the_losses():
    X, y = _blobs()          # overlapping classes: the per-item losses spread widely
    learner = _fit_mlp(X, y, LossPrediction())
    art = learner.fit_artifacts["loss_prediction"]
    assert art["taps"] == ("hidden",) and art["model"] is learner.model
    x = torch.from_numpy(X)
    with torch.no_grad():
        ce = nn.functional.cross_entropy(learner.model(x), torch.from_numpy(y), reduction="none")
    pred = predicted_losses(art["module"], art["model"], art["taps"], x)
    assert spearmanr(pred.numpy(), ce.numpy()).correlation > 0.9
    assert "loss_prediction" in learner.fit_artifacts and learner.last_fit.epochs == 20
    # deterministic on a fixed seed
    again = _fit_mlp(X, y, LossPrediction()).fit_artifacts["loss_prediction"]
    torch.testing.assert_close(predicted_losses(again["module"], again["model"], again["taps"], x), pred,
                               rtol=0, atol=0)


class _GradProbe(Callback):
    """Per epoch: whether the loss-prediction term has a gradient on the backbone's parameters."""

    def __init__(self):
        self.reaches = {}

    def on_batch(self, fit, batch):
        term = batch.extra_losses["loss_prediction"]
        params = [p for p in fit.model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        hit = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
        self.reaches[fit.epoch] = self.reaches.get(fit.epoch, False) or hit


def test_the_gradient_into_the_backbone_stops_after_the_share():
    X, y = _blobs(64)
    strategy = LossPrediction(stop_gradient_share=0.4)
    probe = _GradProbe()
    torch.manual_seed(0)
    learner = ab.Learner(MLP(2, 2, embedding_dim=8), lr=1e-2, batch_size=16, max_epochs=5, target_accuracy=1.0,
                         device="cpu")
    learner.fit(X, y, seed=1, callbacks=strategy.training_callbacks() + [probe])
    assert learner.fit_artifacts["loss_prediction"]["stop_epoch"] == 2          # floor(0.4 * 5)
    assert probe.reaches == {1: True, 2: True, 3: False, 4: False, 5: False}


def test_detached_from_the_start_the_backbone_trains_as_without_the_callback():
    """With share 0 the term never reaches the backbone; the module's seeded initialisation does not
    move the backbone's random stream (dropout masks), so its weights equal a plain fit's."""
    X, y = _blobs(96)
    plain = _fit_mlp(X, y, ab.strategies.get("random"), max_epochs=6)
    joint = _fit_mlp(X, y, LossPrediction(stop_gradient_share=0.0), max_epochs=6)
    for a, b in zip(plain.model.parameters(), joint.model.parameters()):
        assert torch.equal(a, b)
    coupled = _fit_mlp(X, y, LossPrediction(stop_gradient_share=1.0), max_epochs=6)
    assert not torch.equal(plain.model.hidden.weight, coupled.model.hidden.weight)


# Taps on the three architectures -----------------------------------------------------------------------
def _images_pool(n=24, seed=0, hw=8):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.normal(size=(n, 1, hw, hw)) + y[:, None, None, None]).astype(np.float32)
    pool = ab.Pool(X.reshape(n, -1), y, n_classes=3)
    pool.label(np.arange(12))
    return pool


def _plain_features(model, x):
    """The tapped layers' pooled outputs, computed by hand (no hooks)."""
    if isinstance(model, MLP):
        return [model.hidden(model.input_norm(x.float()).flatten(1))]
    imgs = x.reshape(-1, 1, 8, 8)
    if isinstance(model, CNN):
        c1 = model.conv1(imgs)
        c2 = model.conv2(nn.functional.max_pool2d(torch.relu(c1), 2))
        flat = torch.flatten(nn.functional.adaptive_avg_pool2d(nn.functional.max_pool2d(torch.relu(c2), 2), 4), 1)
        return [c1.mean((2, 3)), c2.mean((2, 3)), model.fc(flat)]
    out = torch.relu(model.bn1(model.conv1(imgs)))
    feats = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        out = layer(out)
        feats.append(out.mean((2, 3)))
    return feats


@pytest.mark.parametrize(("make", "widths"), [
    (lambda: MLP(64, 3, embedding_dim=16), [16]),
    (lambda: CNN(1, 3, embedding_dim=16), [32, 64, 16]),
    (lambda: ResNet18(1, 3), [64, 128, 256, 512]),
], ids=["mlp", "cnn", "resnet18"])
def test_default_taps_train_and_select_on_each_architecture(make, widths):
    pool = _images_pool()
    torch.manual_seed(0)
    model = make()
    learner = ab.Learner(model, lr=1e-3, batch_size=6, max_epochs=2, target_accuracy=1.0, device="cpu")
    strategy = LossPrediction()
    learner.fit(*pool.labeled_data(), seed=0, callbacks=strategy.training_callbacks(pool))
    art = learner.fit_artifacts["loss_prediction"]
    assert art["taps"] == default_taps(model)
    assert [fc.in_features for fc in art["module"].levels] == widths
    # the hooks are gone after the fit
    assert all(not m._forward_hooks for m in model.modules())
    sel = strategy.query(learner.evidence(pool), 4, np.random.default_rng(0))
    # a plain computation: each candidate alone, features by hand, the module on them
    cand = pool.unlabeled_indices
    with torch.no_grad():
        plain = torch.cat([art["module"](_plain_features(model, torch.from_numpy(pool.features(cand[i:i + 1]))))
                           for i in range(cand.size)]).double().numpy()
    np.testing.assert_allclose(sel.candidate_scores, plain, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(sel.indices, np.argsort(-sel.candidate_scores, kind="stable")[:4])
    np.testing.assert_array_equal(sel.scores, sel.candidate_scores[sel.indices])


def test_named_taps_and_clear_errors():
    pool = _images_pool()
    learner = ab.Learner(CNN(1, 3, embedding_dim=16), max_epochs=1, device="cpu")
    strategy = LossPrediction(taps=["conv2"])
    assert strategy.taps == ("conv2",) and LossPrediction(taps="fc").taps == ("fc",)
    learner.fit(*pool.labeled_data(), seed=0, callbacks=strategy.training_callbacks(pool))
    assert [fc.in_features for fc in learner.fit_artifacts["loss_prediction"]["module"].levels] == [64]
    with pytest.raises(ValueError, match=r"cannot tap \['nope'\].*conv1"):
        learner.fit(*pool.labeled_data(), seed=0, callbacks=LossPrediction(taps=["nope"]).training_callbacks(pool))

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(64, 8)
            self.head = nn.Linear(8, 3)

        def embed(self, x):
            return torch.relu(self.body(x.flatten(1)))

        def forward(self, x):
            return self.head(self.embed(x))

    other = ab.Learner(Plain(), max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"no default layers to tap in a Plain.*taps=\[\.\.\.\].*body"):
        other.fit(*pool.labeled_data(), seed=0, callbacks=LossPrediction().training_callbacks(pool))
    other.fit(*pool.labeled_data(), seed=0, callbacks=LossPrediction(taps=["body"]).training_callbacks(pool))
    assert other.fit_artifacts["loss_prediction"]["taps"] == ("body",)
    for bad in ({"width": 0}, {"weight": 0.0}, {"margin": -1.0}, {"stop_gradient_share": 1.5}, {"subset": 0},
                {"taps": []}, {"taps": [""]}):
        with pytest.raises(ValueError):
            LossPrediction(**bad)


def test_selecting_without_the_callbacks_is_a_clear_error():
    pool = _images_pool()
    learner = ab.Learner(MLP(64, 3, embedding_dim=8), max_epochs=1, device="cpu")
    learner.fit(*pool.labeled_data(), seed=0)
    with pytest.raises(ValueError, match="training callbacks.*callbacks=strategy.training_callbacks"):
        LossPrediction().select(learner.evidence(pool), 2, np.random.default_rng(0))


def test_subset_scores_a_seeded_random_subset():
    pool = _images_pool(n=60)
    learner = ab.Learner(MLP(64, 3, embedding_dim=8), max_epochs=2, device="cpu")
    strategy = LossPrediction(subset=10)
    learner.fit(*pool.labeled_data(), seed=0, callbacks=strategy.training_callbacks(pool))
    ev = learner.evidence(pool)
    full = LossPrediction().query(ev, 3, np.random.default_rng(0)).candidate_scores
    sel = strategy.query(ev, 3, np.random.default_rng(5))
    scored = ~np.isnan(sel.candidate_scores)
    assert scored.sum() == 10
    np.testing.assert_allclose(sel.candidate_scores[scored], full[scored], rtol=1e-5)   # other batching
    best = np.flatnonzero(scored)[np.argsort(-sel.candidate_scores[scored], kind="stable")[:3]]
    np.testing.assert_array_equal(sel.indices, best)
    again = strategy.query(ev, 3, np.random.default_rng(5))
    np.testing.assert_array_equal(again.candidate_scores, sel.candidate_scores)
    other = strategy.query(ev, 3, np.random.default_rng(6)).candidate_scores
    assert not np.array_equal(np.isnan(other), np.isnan(sel.candidate_scores))
    assert (~np.isnan(strategy.query(ev, 15, np.random.default_rng(5)).candidate_scores)).sum() == 15   # >= n


# The shared checks and the loop -------------------------------------------------------------------------
def test_the_shared_checks_pass():
    check_strategy(LossPrediction())


def test_the_loop_runs_it_for_a_couple_of_rounds():
    X, y = _blobs(160, seed=3)
    pool = ab.Pool(X[:120], y[:120])
    torch.manual_seed(0)
    learner = ab.Learner(MLP(2, 2, embedding_dim=16), lr=1e-2, batch_size=16, max_epochs=10, device="cpu")
    hist = ab.run(pool, learner, "loss_prediction", initial=20, batch_size=10, rounds=2, test=(X[120:], y[120:]),
                  seed=0)
    assert [r.n_labeled for r in hist.rounds] == [20, 30, 40]
    assert all(r.selected_scores is not None and np.isfinite(r.selected_scores).all() for r in hist.rounds[1:])
    assert "loss_prediction" in learner.fit_artifacts


def test_a_committee_selects_with_its_first_members_module():
    pool = _images_pool(n=40)
    strategy = LossPrediction()
    committee = ab.learning.Committee(MLP(64, 3, embedding_dim=8), n_members=2, max_epochs=2, device="cpu")
    committee.fit(*pool.labeled_data(), seed=0, callbacks=strategy.training_callbacks(pool))
    art = committee.fit_artifacts["loss_prediction"]
    assert art["model"] is committee.members[0].model
    assert art is not committee.members[1].fit_artifacts["loss_prediction"]     # one module per member
    sel = strategy.query(committee.evidence(pool), 3, np.random.default_rng(0))
    x = torch.from_numpy(pool.features(pool.unlabeled_indices))
    np.testing.assert_allclose(sel.candidate_scores, predicted_losses(art["module"], art["model"], art["taps"], x)
                               .double().numpy(), rtol=1e-6)


def test_training_taps_keep_nothing_from_eval_mode_passes():
    """Predictions taken during a fit (eval mode, e.g. per-epoch predictions on the whole pool)
    neither replace the training pass's features nor keep their own alive."""
    from activebatch.strategies.loss_prediction import _Taps

    model = MLP(4, 3, embedding_dim=5)
    taps = _Taps(model, ["hidden"], training_only=True)
    model.eval()
    model(torch.randn(50, 4))
    assert taps.out == {}
    model.train()
    x = torch.randn(6, 4)
    model(x)
    model.eval()
    model(torch.randn(50, 4))
    (feat,) = taps.take()
    torch.testing.assert_close(feat, model.hidden(x))
    assert taps.out == {}
    with pytest.raises(RuntimeError, match="did not run"):
        taps.take()
    taps.remove()
    assert not model.hidden._forward_hooks
