"""MAL: the minimax entropy game's signs, the query rule on hand-made scores, the training callback,
the public checks and the loop."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.learning.adversarial_nets import CosineClassifier, entropy, grad_reverse, minimax_entropy_loss
from activebatch.learning.callbacks import Callback
from activebatch.learning.models import MLP
from activebatch.strategies.mal import MAL, mal_priority
from activebatch.testing import check_strategy, make_model_evidence


def test_gradient_reversal_flips_the_gradient_only():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, eta=0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_cosine_classifier_is_scaled_cosine_similarity():
    torch.manual_seed(0)
    clf = CosineClassifier(4, 3, temperature=0.05)
    z = torch.randn(6, 4) * 7.0
    want = (z / z.norm(dim=1, keepdim=True)) @ clf.fc.weight.T / 0.05
    torch.testing.assert_close(clf(z), want)
    torch.testing.assert_close(clf(3.0 * z), want)          # depends on the direction of z only
    torch.testing.assert_close(entropy(torch.zeros(2, 5)), torch.full((2,), math.log(5)))


def test_minimax_signs_classifier_ascends_and_encoder_descends_the_entropy():
    torch.manual_seed(0)
    encoder, clf = nn.Linear(3, 4), CosineClassifier(4, 3, temperature=0.5)
    x = torch.randn(16, 3)

    def mean_h():
        with torch.no_grad():
            return entropy(clf(encoder(x))).mean().item()

    loss = minimax_entropy_loss(encoder(x), clf, weight=0.1)
    assert loss.item() == pytest.approx(-0.1 * mean_h())
    loss.backward()
    g_enc = [p.grad.clone() for p in encoder.parameters()]
    g_clf = clf.fc.weight.grad.clone()
    # against the plain gradients of H: the classifier gets d(-lambda H), the encoder d(+lambda H)
    encoder.zero_grad()
    clf.zero_grad()
    entropy(clf(encoder(x))).mean().backward()
    torch.testing.assert_close(g_clf, -0.1 * clf.fc.weight.grad)
    for got, plain in zip(g_enc, (p.grad for p in encoder.parameters())):
        torch.testing.assert_close(got, 0.1 * plain)
    # one descent step on the term: the classifier's raises the entropy, the encoder's lowers it
    h0 = mean_h()
    with torch.no_grad():
        clf.fc.weight -= 0.05 * g_clf
    h_clf = mean_h()
    with torch.no_grad():
        clf.fc.weight += 0.05 * g_clf
        for p, g in zip(encoder.parameters(), g_enc):
            p -= 0.05 * g
    h_enc = mean_h()
    assert h_clf > h0 > h_enc


def test_query_rule_on_hand_made_scores():
    p_labeled = np.array([0.2, 0.7, 0.4, 0.9, 0.1, 0.5])
    h = np.array([0.1, 1.0, 0.6, 0.2, 0.0, 1.0])
    score = mal_priority(p_labeled, h, n_classes=3)
    # predicted unlabeled (p < 1/2): 0, 2, 4, by entropy; then the others by P(labeled)
    np.testing.assert_allclose(score, [1 + 0.1 / math.log(3), 0.3, 1 + 0.6 / math.log(3), 0.1, 1.0, 0.5])
    np.testing.assert_array_equal(np.argsort(-score, kind="stable"), [2, 0, 4, 5, 1, 3])


@pytest.fixture(scope="module")
def trained():
    return make_model_evidence(0, strategy=MAL())


def test_the_fit_trains_the_extra_heads_and_leaves_them_for_selection(trained):
    learner, pool = trained
    art = learner.fit_artifacts["mal"]
    assert set(art) == {"classifier", "discriminator"}
    # the discriminator learned something: labeled items look more labeled than the unlabeled
    strat = MAL()
    p_lab, _, _ = strat.candidate_scores(learner, pool, pool.labeled_indices)
    p_unl, h_unl, k = strat.candidate_scores(learner, pool, pool.unlabeled_indices)
    assert p_lab.mean() > p_unl.mean()
    assert k == 3 and ((h_unl >= 0) & (h_unl <= math.log(3) + 1e-9)).all()


class _Keep(Callback):
    def on_fit_start(self, fit):
        self.groups = len(fit.optimizer.param_groups)

    def on_fit_end(self, fit):
        self.history = fit.history


def test_the_loss_terms_and_the_classifier_join_the_fit():
    learner, pool = make_model_evidence(0)
    keep = _Keep()
    learner.fit(*pool.labeled_data(), seed=0, callbacks=MAL().training_callbacks(pool) + [keep])
    assert keep.groups == 2                       # the cosine classifier is trained by the fit's optimiser
    assert all({"mal_ce", "mal_entropy"} <= set(epoch) for epoch in keep.history)
    assert all(epoch["mal_entropy"] <= 0 for epoch in keep.history)   # -lambda * H


def test_selection_agrees_with_a_row_by_row_computation(trained):
    learner, pool = trained
    ev = learner.evidence(pool)
    sel = MAL().query(ev, 5, np.random.default_rng(0))
    art = learner.fit_artifacts["mal"]
    model = learner.model.eval()
    slow = []
    with torch.no_grad():
        for i in pool.unlabeled_indices:
            z = model.embed(torch.as_tensor(pool.X[i:i + 1]))
            p = torch.sigmoid(art["discriminator"](z / z.norm())).item()
            logits = (z / z.norm()) @ art["classifier"].fc.weight.T / 0.05
            q = torch.softmax(logits, 1)
            h = -(q * q.log()).sum().item()
            slow.append(1 + h / math.log(3) if p < 0.5 else 1 - p)
    np.testing.assert_allclose(sel.candidate_scores, slow, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(sel.indices, np.argsort(-np.array(slow), kind="stable")[:5])


def test_same_fit_seed_same_training_and_picks():
    a_learner, a_pool = make_model_evidence(1, strategy=MAL())
    b_learner, b_pool = make_model_evidence(1, strategy=MAL())
    a = MAL().query(a_learner.evidence(a_pool), 6, np.random.default_rng(0))
    b = MAL().query(b_learner.evidence(b_pool), 6, np.random.default_rng(9))   # rng unused
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.candidate_scores, b.candidate_scores)


def test_model_trained_without_the_callbacks_is_refused():
    learner, pool = make_model_evidence(0)
    with pytest.raises(ValueError, match="training callbacks"):
        MAL().select(learner.evidence(pool), 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="pool"):
        MAL().training_callbacks()
    for bad in (dict(temperature=0), dict(entropy_weight=-1), dict(unlabeled_batch_size=0), dict(lr_discriminator=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MAL(**bad)


def test_an_exhausted_pool_trains_the_classifier_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    pool = ab.Pool(X, np.arange(20) % 2, n_classes=2)
    pool.label(np.arange(20))
    learner = ab.Learner(MLP(3, 2, embedding_dim=4), lr=1e-2, max_epochs=2, device="cpu")
    learner.fit(*pool.labeled_data(), seed=0, callbacks=MAL().training_callbacks(pool))
    assert "mal" in learner.fit_artifacts


def test_public_checks():
    check_strategy(MAL())


def test_runs_in_the_loop_and_repeats_with_the_seed():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)

    def once():
        learner = ab.Learner(MLP(4, 2, embedding_dim=8), lr=1e-2, max_epochs=5, device="cpu")
        return ab.run(ab.Pool(X, y, n_classes=2), learner, "mal", initial=10, batch_size=5, rounds=2,
                      test=(X[:20], y[:20]), seed=0)

    first, second = once(), once()
    assert len(first.rounds) == 3 and first.rounds[1].selected_scores is not None
    for r1, r2 in zip(first.rounds, second.rounds):
        np.testing.assert_array_equal(r1.selected, r2.selected)
