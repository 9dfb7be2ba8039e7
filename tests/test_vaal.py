"""VAAL: the VAE's loss terms against their formulas, the architectures, picks on a toy pool, the
public checks and the loop."""
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import activebatch as ab
from activebatch.learning.adversarial_nets import (
    MLPVAE,
    ConvVAE,
    LatentDiscriminator,
    gaussian_kl,
    image_shape,
    vae_loss,
)
from activebatch.learning.evidence import Evidence
from activebatch.learning.models import MLP
from activebatch.strategies.vaal import VAAL
from activebatch.testing import check_strategy

#: Small networks and few iterations: the tests check behaviour, not the paper's budget.
SMALL = dict(iterations=20, discriminator_width=32, mlp_width=32)


def test_gaussian_kl_is_the_closed_form():
    mu = torch.tensor([[1.0, 2.0], [0.0, 0.0], [-0.5, 3.0]], dtype=torch.float64)
    var = torch.tensor([[1.0, 4.0], [1.0, 1.0], [0.25, 2.0]], dtype=torch.float64)
    # KL(N(m, s^2) || N(0, 1)) = 0.5 (m^2 + s^2 - 1 - log s^2), summed over dimensions
    by_hand = torch.tensor([0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 4 - 1 - math.log(4)),
                            0.0,
                            0.5 * (0.25 + 0.25 - 1 - math.log(0.25)) + 0.5 * (9 + 2 - 1 - math.log(2))],
                           dtype=torch.float64)
    torch.testing.assert_close(gaussian_kl(mu, var.log()), by_hand)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, var.sqrt()),
                                            torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, var.log()), ref)


def test_vae_loss_is_mse_plus_beta_times_mean_kl():
    g = torch.Generator().manual_seed(0)
    x, recon, mu, logvar = (torch.randn(4, k, generator=g, dtype=torch.float64) for k in (3, 3, 2, 2))
    total, rec, kl = vae_loss(x, recon, mu, logvar, beta=2.5)
    assert rec.item() == pytest.approx(((x - recon) ** 2).sum().item() / 12)
    kl_rows = [0.5 * sum(mu[i, j] ** 2 + logvar[i, j].exp() - 1 - logvar[i, j] for j in range(2)) for i in range(4)]
    assert kl.item() == pytest.approx(float(sum(kl_rows)) / 4)
    assert total.item() == pytest.approx(rec.item() + 2.5 * kl.item())


def test_vae_objective_and_discriminator_objective_formulas():
    torch.manual_seed(0)
    s = VAAL(beta=0.5, adversary_weight=3.0)
    vae, disc = MLPVAE(3, latent_dim=4, hidden=8), LatentDiscriminator(4, hidden=8)
    xl, xu = torch.randn(5, 3), torch.randn(7, 3)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        got = s.vae_objective(vae, disc, xl, xu)
    with torch.random.fork_rng():
        torch.manual_seed(1)   # the same reparameterisation noise
        rl, mul, lvl = vae(xl)
        ru, muu, lvu = vae(xu)
    sig = lambda t: torch.sigmoid(disc(t))   # noqa: E731
    want = (F.mse_loss(rl, xl) + 0.5 * gaussian_kl(mul, lvl).mean() + F.mse_loss(ru, xu)
            + 0.5 * gaussian_kl(muu, lvu).mean() - 3.0 * (sig(mul).log().mean() + sig(muu).log().mean()))
    torch.testing.assert_close(got, want)
    d_loss = VAAL.discriminator_objective(vae, disc, xl, xu)
    mu_l, mu_u = vae.encode(xl)[0], vae.encode(xu)[0]
    torch.testing.assert_close(d_loss, -(sig(mu_l).log().mean() + (1 - sig(mu_u)).log().mean()))
    d_loss.backward()
    assert all(p.grad is None for p in vae.parameters())        # the discriminator step leaves the VAE alone


@pytest.mark.parametrize(("row_shape", "expected"), [
    ((3, 32, 32), (3, 32, 32)), ((28, 28), (1, 28, 28)), ((784,), (1, 28, 28)), ((3072,), (3, 32, 32)),
    ((64,), None), ((1, 8, 8), None), ((5,), None), ((300,), None)])
def test_image_rows_are_recognised(row_shape, expected):
    assert image_shape(row_shape) == expected


def test_conv_vae_is_the_papers_network_at_32_pixels_and_crops_other_sizes():
    vae = ConvVAE((3, 32, 32), latent_dim=32)
    assert vae.fc_mu.in_features == 1024 * 2 * 2 and vae.decoder[0].out_features == 1024 * 4 * 4
    x = torch.randn(2, 3, 32, 32)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 32)
    small = ConvVAE((1, 28, 28), latent_dim=8)
    assert small(torch.randn(2, 1, 28, 28))[0].shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="16"):
        ConvVAE((1, 8, 8))


def _toy_pool():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(100, 2)) + [-3, 0], rng.normal(size=(100, 2)) + [3, 0]]).astype(np.float32)
    pool = ab.Pool(X, np.r_[np.zeros(100, int), np.ones(100, int)], n_classes=2)
    pool.label(np.arange(30))            # labeled items cover only the left blob
    return pool


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_picks_come_from_the_region_the_labeled_items_do_not_cover(seed):
    pool = _toy_pool()
    cand = pool.unlabeled_indices
    ev = Evidence(cand.size, candidate_ids=cand, pool=pool)
    sel = VAAL(iterations=60, discriminator_width=32, mlp_width=32).query(ev, 20, np.random.default_rng(seed))
    # 100 of the 170 candidates are on the right: a random batch of 20 has about 12 of them
    assert (cand[sel.indices] >= 100).sum() >= 15
    right = cand >= 100
    assert sel.candidate_scores[right].mean() < sel.candidate_scores[~right].mean()
    np.testing.assert_array_equal(sel.scores, np.sort(sel.candidate_scores)[:20])


def test_same_seed_same_picks_other_seed_other_picks():
    pool = _toy_pool()
    cand = pool.unlabeled_indices
    ev = Evidence(cand.size, candidate_ids=cand, pool=pool)
    a, b, c = (VAAL(**SMALL).query(ev, 10, np.random.default_rng(s)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.candidate_scores, b.candidate_scores)
    assert not np.array_equal(a.candidate_scores, c.candidate_scores)


def test_iteration_count_follows_the_papers_rule():
    s = VAAL()
    assert s.n_iterations(50_000) == 50_000 * 100 // 64       # CIFAR-10: 78,125 iterations
    assert VAAL(epochs=2, batch_size=10).n_iterations(25) == 5
    assert VAAL(epochs=0.01).n_iterations(10) == 1
    assert VAAL(iterations=7).n_iterations(10**6) == 7


def test_image_pool_uses_the_conv_vae_and_a_one_item_labeled_set_works():
    rng = np.random.default_rng(0)
    X = rng.random((12, 1, 16, 16)).astype(np.float32)
    pool = ab.Pool(X, np.arange(12) % 2, n_classes=2)
    pool.label([3])
    s = VAAL(iterations=1, batch_size=2, latent_dim=4, discriminator_width=8)
    mods = s.fit_modules(pool, pool.labeled_indices, pool.unlabeled_indices, seed=0)
    assert isinstance(mods.vae, ConvVAE) and mods.shape == (1, 16, 16)
    assert mods.iterations == 1 and mods.mean.shape == (1, 1, 1)
    ev = Evidence(11, candidate_ids=pool.unlabeled_indices, pool=pool)
    assert np.unique(s.select(ev, 3, np.random.default_rng(0))).size == 3
    flat = VAAL(iterations=1, architecture="mlp", mlp_width=8, discriminator_width=8, latent_dim=4)
    assert isinstance(flat.fit_modules(pool, [3], [0, 1], seed=0).vae, MLPVAE)
    with pytest.raises(ValueError, match="image rows"):
        VAAL(architecture="conv").fit_modules(_toy_pool(), [0], [150], seed=0)


def test_standardisation_uses_the_rows_vaal_sees():
    pool = _toy_pool()
    s = VAAL(iterations=1, **{k: v for k, v in SMALL.items() if k != "iterations"})
    lab, unl = pool.labeled_indices, pool.unlabeled_indices[:50]
    mods = s.fit_modules(pool, lab, unl, seed=0)
    seen = pool.X[np.r_[lab, unl]].astype(np.float64)
    np.testing.assert_allclose(mods.mean.numpy(), seen.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mods.std.numpy(), seen.std(0), rtol=1e-5)


def test_refusals():
    pool = _toy_pool()
    with pytest.raises(ValueError, match="labeled"):
        VAAL(**SMALL).fit_modules(pool, [], [1], seed=0)
    fresh = ab.Pool(pool.X, np.r_[np.zeros(100, int), np.ones(100, int)], n_classes=2)
    with pytest.raises(ValueError, match="no labeled items"):
        VAAL(**SMALL).select(Evidence(200, candidate_ids=np.arange(200), pool=fresh), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="candidate_ids"):
        VAAL(**SMALL).select(Evidence(170, pool=pool), 2, np.random.default_rng(0))
    for bad in (dict(latent_dim=0), dict(beta=-1), dict(lr_vae=0), dict(epochs=0), dict(iterations=0),
                dict(architecture="resnet"), dict(vae_steps=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            VAAL(**bad)


def test_public_checks():
    check_strategy(VAAL(**SMALL))


def test_runs_in_the_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    learner = ab.Learner(MLP(4, 2, embedding_dim=8), lr=1e-2, max_epochs=5, device="cpu")
    hist = ab.run(ab.Pool(X, y, n_classes=2), learner, VAAL(**SMALL), initial=10, batch_size=5, rounds=2,
                  test=(X[:20], y[:20]), seed=0)
    assert len(hist.rounds) == 3 and all(r.selected_scores is not None for r in hist.rounds[1:])
    again = ab.run(ab.Pool(X, y, n_classes=2), learner, VAAL(**SMALL), initial=10, batch_size=5, rounds=2,
                   test=(X[:20], y[:20]), seed=0)
    for r1, r2 in zip(hist.rounds, again.rounds):   # the run's seed fixes VAAL's training too
        np.testing.assert_array_equal(r1.selected, r2.selected)
