"""k-DPP: the exact spectral sampler and Kang's chain against the exact law det(L_Y) / e_k."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

import activebatch as ab
from activebatch.kernels import gradient_embedding_factors
from activebatch.kernels.kdpp import default_steps, gradient_kernel, kdpp_exact, kdpp_mcmc


def _pool(seed, n=7, k=3, d=3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    z = rng.normal(size=(n, d))
    return gradient_embedding_factors(torch.tensor(p)), torch.tensor(z)


def _exact_law(L, k):
    subsets = list(itertools.combinations(range(L.shape[0]), k))
    dets = np.array([np.linalg.det(L[np.ix_(s, s)]) for s in subsets])
    dets = np.clip(dets, 0, None)
    return subsets, dets / dets.sum()


def test_kernel_is_the_gram_matrix_of_gradient_embeddings():
    u, z = _pool(0)
    g = (u[:, :, None] * z[:, None, :]).reshape(len(u), -1)
    torch.testing.assert_close(gradient_kernel(u, z), g @ g.T)


def test_default_chain_length():
    assert default_steps(10) == math.floor(50 * math.log(10)) == 115
    assert default_steps(1) == 1


def _chi2(samples, subsets, law):
    index = {s: i for i, s in enumerate(subsets)}
    counts = np.zeros(len(subsets))
    for s in samples:
        counts[index[tuple(int(i) for i in s)]] += 1
    keep = law * len(samples) >= 5
    obs, exp = counts[keep], law[keep] * len(samples)
    if law[~keep].sum() > 0:
        obs, exp = np.append(obs, counts[~keep].sum()), np.append(exp, law[~keep].sum() * len(samples))
    return stats.chisquare(obs, exp).pvalue


def test_exact_sampler_matches_the_k_dpp_law():
    u, z = _pool(1)
    L = gradient_kernel(u, z).numpy()
    subsets, law = _exact_law(L, 3)
    samples = [kdpp_exact(L, 3, np.random.default_rng(s)) for s in range(3000)]
    assert _chi2(samples, subsets, law) > 1e-3


def test_mcmc_chain_matches_the_k_dpp_law_and_the_exact_sampler_marginals():
    u, z = _pool(2)
    L = gradient_kernel(u, z).numpy()
    subsets, law = _exact_law(L, 3)
    chain = [kdpp_mcmc(u, z, 3, np.random.default_rng(s), steps=40) for s in range(2000)]
    assert _chi2(chain, subsets, law) > 1e-3
    exact = [kdpp_exact(L, 3, np.random.default_rng(10_000 + s)) for s in range(2000)]
    m_chain = np.bincount(np.concatenate(chain), minlength=7) / 2000
    m_exact = np.bincount(np.concatenate(exact), minlength=7) / 2000
    # inclusion probabilities agree within sampling error (sd <= sqrt(0.25 * 2 / 2000) = 0.016)
    np.testing.assert_allclose(m_chain, m_exact, atol=0.05)


def test_inverse_stays_accurate_over_a_long_chain():
    u, z = _pool(3, n=60, k=5, d=6)
    sel = kdpp_mcmc(u, z, 12, np.random.default_rng(0), steps=3000, recompute_every=10**9)
    assert np.unique(sel).size == 12
    L = gradient_kernel(u, z).numpy()
    assert np.linalg.det(L[np.ix_(sel, sel)]) > 0


def _plain_chain(u, z, k, rng, steps):
    """Kang's exchange chain with every determinant ratio computed afresh (same random draws)."""
    from activebatch.kernels.kdpp import _init_subset

    L = gradient_kernel(u, z).numpy()
    N = L.shape[0]
    Y = _init_subset(u.double(), z.double(), k, rng, 1e-10)
    inY = np.zeros(N, dtype=bool)
    inY[Y] = True
    rs, vs, acc = rng.integers(k, size=steps), rng.integers(N, size=steps), rng.random(steps)
    for t in range(steps):
        v = int(vs[t])
        while inY[v]:
            v = int(rng.integers(N))
        Y2 = list(Y)
        Y2[int(rs[t])] = v
        ratio = np.linalg.det(L[np.ix_(Y2, Y2)]) / np.linalg.det(L[np.ix_(Y, Y)])
        if acc[t] < 0.5 * min(1.0, max(ratio, 0.0)):
            inY[Y[int(rs[t])]], inY[v] = False, True
            Y = Y2
    return np.sort(Y)


def test_chain_with_rank_one_inverse_updates_equals_the_plain_determinant_chain():
    # the in-place updates of inv(L_Y) (never recomputed here) take the same accept/reject
    # decisions as determinants computed from scratch, step for step
    for seed in range(3):
        u, z = _pool(20 + seed, n=40, k=6, d=8)
        ours = kdpp_mcmc(u, z, 6, np.random.default_rng(seed), steps=400, recompute_every=10**9)
        np.testing.assert_array_equal(ours, _plain_chain(u, z, 6, np.random.default_rng(seed), 400))


def test_rank_deficient_kernel_falls_back_to_uniform_fill():
    # one-hot predictions: all gradient embeddings vanish, every determinant is 0
    p = np.eye(3)[np.arange(9) % 3]
    z = np.random.default_rng(0).normal(size=(9, 2))
    idx = ab.select("kdpp", 4, probs=p, embeddings=z, seed=0)
    assert np.unique(idx).size == 4
    with pytest.raises(ValueError, match="rank below"):
        kdpp_exact(np.zeros((4, 4)), 2, np.random.default_rng(0))


def test_strategy_options():
    u, z = _pool(4, n=20)
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=20)
    a = ab.select("kdpp", 5, probs=p, embeddings=np.random.default_rng(1).normal(size=(20, 4)), seed=3, steps=10)
    assert a.size == 5
    with pytest.raises(ValueError, match="steps"):
        ab.select("kdpp", 5, probs=p, embeddings=np.zeros((20, 4)), steps=0)


def test_the_chain_never_enters_a_numerically_singular_subset():
    """Proposals whose point lies in the span of the others (here exact copies) have probability
    zero, however the rounding of the running inverse falls: the chain stays invertible."""
    rng = np.random.default_rng(3)
    z = np.repeat(rng.normal(size=(8, 5)), 30, axis=0)            # 8 items, 30 exact copies each
    p = np.repeat(rng.dirichlet(np.ones(3), size=8), 30, axis=0)
    u = gradient_embedding_factors(torch.from_numpy(p))
    for seed in range(10):
        Y = kdpp_mcmc(u, torch.from_numpy(z), 6, np.random.default_rng(seed), steps=2000, recompute_every=16)
        assert len(np.unique(np.repeat(np.arange(8), 30)[Y])) == 6   # never two copies of one item


def test_a_refresh_on_a_singular_subset_keeps_the_running_inverse(monkeypatch):
    """Should LU find the current L_Y singular when the inverse is refreshed, the chain carries on
    with the inverse it has kept up to date: the same chain as one that never refreshes."""
    u, z = _pool(31, n=40, k=6, d=8)
    plain = kdpp_mcmc(u, z, 6, np.random.default_rng(5), steps=400, recompute_every=10**9)
    real_inv_ex = torch.linalg.inv_ex
    calls = []

    def singular(A):
        calls.append(A.shape)
        inv, info = real_inv_ex(A)
        return inv, torch.ones_like(info)     # as LU reports an exactly zero pivot

    monkeypatch.setattr(torch.linalg, "inv_ex", singular)
    refreshed = kdpp_mcmc(u, z, 6, np.random.default_rng(5), steps=400, recompute_every=2)
    assert calls, "the chain never refreshed its inverse"
    np.testing.assert_array_equal(refreshed, plain)
