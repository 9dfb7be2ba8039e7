"""BADGE: factorised gradient embeddings and the exact k-means++ D^2 law."""
import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import activebatch as ab
from activebatch.kernels import (
    gradient_embedding_factors,
    gradient_embedding_sqdist,
    gradient_embedding_sqnorms,
    kmeanspp_gradient,
    sample_d2,
)


def materialised(probs, z, labels=None):
    """g = (p - e_y) outer z as explicit K*d vectors (what BADGE never builds)."""
    p = np.asarray(probs, dtype=np.float64)
    y = p.argmax(1) if labels is None else labels
    u = p.copy()
    u[np.arange(len(p)), y] -= 1.0
    return (u[:, :, None] * np.asarray(z, dtype=np.float64)[:, None, :]).reshape(len(p), -1)


def grad_of_cross_entropy(probs_logits, z, label):
    """Autograd gradient of the cross-entropy wrt the final layer W, for the check of eq. 1."""
    W = torch.tensor(probs_logits, requires_grad=True)
    zt = torch.tensor(z)
    loss = torch.nn.functional.cross_entropy((W @ zt)[None], torch.tensor([label]))
    loss.backward()
    return W.grad.numpy().reshape(-1)


def _random_pool(seed, n=30, k=5, d=7):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2, size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return p, rng.normal(size=(n, d))


def test_gradient_embedding_is_the_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 6))
    z = rng.normal(size=6)
    logits = W @ z
    p = np.exp(logits) / np.exp(logits).sum()
    y = int(p.argmax())
    np.testing.assert_allclose(materialised(p[None], z[None])[0], grad_of_cross_entropy(W, z, y), atol=1e-12)


def test_factorised_distances_equal_materialised_distances():
    p, z = _random_pool(1)
    g = materialised(p, z)
    ref = ((g[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    u = gradient_embedding_factors(torch.tensor(p))
    ours = gradient_embedding_sqdist(u, torch.tensor(z), u, torch.tensor(z)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gradient_embedding_sqnorms(u, torch.tensor(z)).numpy(), (g ** 2).sum(1), rtol=1e-12)
    # float32 embeddings: same distances to float32 precision
    ours32 = gradient_embedding_sqdist(u, torch.tensor(z, dtype=torch.float32), u[:5],
                                       torch.tensor(z[:5], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(ours32, ref[:, :5], rtol=1e-5, atol=1e-5)


def test_proposition_1_predicted_label_gives_the_smallest_norm():
    for seed in range(5):
        p, z = _random_pool(seed, n=50, k=6)
        norms = np.stack([np.linalg.norm(materialised(p, z, np.full(len(p), y)), axis=1) for y in range(6)], 1)
        predicted = np.linalg.norm(materialised(p, z), axis=1)
        assert np.all(predicted <= norms.min(1) + 1e-12)
        u = gradient_embedding_factors(torch.tensor(p))
        np.testing.assert_allclose(np.sqrt(gradient_embedding_sqnorms(u, torch.tensor(z)).numpy()), predicted)


def test_first_centre_is_the_largest_norm():
    p, z = _random_pool(2)
    g = materialised(p, z)
    for seed in range(5):
        idx = ab.select("badge", 4, probs=p, embeddings=z, seed=seed)
        assert idx[0] == int(np.argmax((g ** 2).sum(1)))


def _d2_law(g, chosen):
    d2 = np.min(((g[:, None, :] - g[None, chosen, :]) ** 2).sum(-1), axis=1)
    d2[chosen] = 0
    return d2 / d2.sum()


def test_draw_frequencies_match_exact_d2_law_norm_init():
    """Second centre: chi-square of 4,000 seeded draws against D^2 / sum D^2."""
    p, z = _random_pool(3, n=8, k=3, d=3)
    g = materialised(p, z)
    first = int(np.argmax((g ** 2).sum(1)))
    law = _d2_law(g, [first])
    draws = np.array([ab.select("badge", 2, probs=p, embeddings=z, seed=s)[1] for s in range(4000)])
    counts = np.bincount(draws, minlength=8)
    assert counts[first] == 0
    keep = law > 0
    _, pval = stats.chisquare(counts[keep], law[keep] * len(draws))
    assert pval > 1e-3, (counts, law * len(draws))


def test_ordered_triples_match_exact_kmeanspp_law_random_init():
    """init="random": P(a, b, c) = 1/N * D2(b | a) / sum * D2(c | a, b) / sum over all 60 triples."""
    p, z = _random_pool(4, n=5, k=3, d=2)
    g = materialised(p, z)
    N = len(p)
    triples = list(itertools.permutations(range(N), 3))
    exact = np.array([(1 / N) * _d2_law(g, [a])[b] * _d2_law(g, [a, b])[c] for a, b, c in triples])
    assert np.isclose(exact.sum(), 1.0)
    u = gradient_embedding_factors(torch.tensor(p))
    zt = torch.tensor(z)
    M = 6000
    index = {t: i for i, t in enumerate(triples)}
    counts = np.zeros(len(triples))
    for s in range(M):
        t = tuple(kmeanspp_gradient(u, zt, 3, np.random.default_rng(s), init="random").tolist())
        counts[index[t]] += 1
    _, pval = stats.chisquare(counts, exact * M)
    assert pval > 1e-3


def test_select_init_random_uses_a_uniform_first_centre():
    p, z = _random_pool(5, n=6)
    firsts = np.array([ab.select("badge", 1, probs=p, embeddings=z, init="random", seed=s)[0]
                       for s in range(1200)])
    _, pval = stats.chisquare(np.bincount(firsts, minlength=6))
    assert pval > 1e-3
    with pytest.raises(ValueError, match="init"):
        ab.select("badge", 1, probs=p, embeddings=z, init="furthest")


def test_confident_pool_falls_back_to_uniform_without_repeats():
    # one-hot predictions: every gradient embedding is zero, so D^2 sampling is undefined
    p = np.eye(3)[np.arange(12) % 3]
    z = np.random.default_rng(0).normal(size=(12, 4))
    idx = ab.select("badge", 12, probs=p, embeddings=z, seed=0)
    assert sorted(idx.tolist()) == list(range(12))
    # three uncertain points and nine confident ones (g = 0, one cluster at the origin): the
    # first four centres are the three uncertain points and one confident point; after that every
    # remaining distance is zero and the last two come uniformly from the other confident points
    p2 = p.copy()
    p2[[2, 5, 7]] = [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5]]
    lasts = []
    for s in range(300):
        idx = ab.select("badge", 6, probs=p2, embeddings=z, seed=s)
        assert {2, 5, 7} <= set(idx[:4].tolist())
        assert np.unique(idx).size == 6
        lasts.append(idx[5])
    assert not {2, 5, 7} & set(lasts)
    assert len(set(lasts)) == 9  # every confident point can come last


def test_duplicates_are_never_drawn_twice():
    p, z = _random_pool(6, n=5)
    p = np.repeat(p, 4, axis=0)
    z = np.repeat(z, 4, axis=0)
    for s in range(20):
        idx = ab.select("badge", 20, probs=p, embeddings=z, seed=s)
        assert np.unique(idx).size == 20
        # the first five picks are five distinct originals: a copy has zero distance
        assert np.unique(idx[:5] // 4).size == 5


def test_sample_d2_never_draws_zero_weight_and_handles_all_zero():
    w = torch.tensor([0.0, 1.0, 0.0, 3.0, 0.0], dtype=torch.float64)
    rng = np.random.default_rng(0)
    draws = np.array([sample_d2(w, rng) for _ in range(2000)])
    assert set(draws.tolist()) == {1, 3}
    assert abs((draws == 3).mean() - 0.75) < 0.04
    assert sample_d2(torch.zeros(4), rng) == -1


def test_float32_and_float64_give_the_same_selection():
    p, z = _random_pool(7, n=200, k=10, d=32)
    a = ab.select("badge", 20, probs=p, embeddings=z, seed=3)
    b = ab.select("badge", 20, probs=p.astype(np.float32), embeddings=z.astype(np.float32), seed=3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tuning", [
    dict(chunk=1),                                   # one proposal at a time
    dict(chunk=64, refresh_factor=0.0),              # refresh before every chunk
    dict(chunk=64, refresh_factor=1e9),              # refresh only when rejections pile up
])
def test_rejection_sampler_matches_exact_law_under_every_refresh_policy(tuning):
    """Ordered 4-tuples on 6 points, init="random", against the exact k-means++ law."""
    p, z = _random_pool(8, n=6, k=3, d=2)
    g = materialised(p, z)
    N = 6
    tuples = list(itertools.permutations(range(N), 3))
    exact = np.array([(1 / N) * _d2_law(g, [a])[b] * _d2_law(g, [a, b])[c] for a, b, c in tuples])
    u = gradient_embedding_factors(torch.tensor(p))
    zt = torch.tensor(z)
    index = {t: i for i, t in enumerate(tuples)}
    counts = np.zeros(len(tuples))
    M = 5000
    for s in range(M):
        sel = kmeanspp_gradient(u, zt, 4, np.random.default_rng(s), init="random", **tuning)
        assert np.unique(sel).size == 4
        counts[index[tuple(sel[:3].tolist())]] += 1
    _, pval = stats.chisquare(counts, exact * M)
    assert pval > 1e-3


def test_block_refresh_on_a_larger_pool_matches_plain_d2_sampling():
    """Marginal law of the third centre, pooled over seeds, against the exact k-means++ law
    sum_b P(b | first) P(c | first, b), on a pool processed in blocks of 7 rows with small chunks
    (rejections, forced refreshes and several block passes all occur)."""
    from activebatch.kernels.kmeanspp import badge_kmeanspp

    p, z = _random_pool(9, n=40, k=4, d=3)
    g = materialised(p, z)
    first = int(np.argmax((g ** 2).sum(1)))
    law1 = _d2_law(g, [first])
    law = sum(law1[b] * _d2_law(g, [first, b]) for b in range(40) if law1[b] > 0)
    M = 2000
    third = np.array([badge_kmeanspp(torch.tensor(p), torch.tensor(z), 6, np.random.default_rng(s),
                                     block_rows=7, chunk=4, refresh_factor=0.1)[2] for s in range(M)])
    counts = np.bincount(third, minlength=40)
    assert counts[first] == 0
    keep = law * M >= 5
    observed, expected = counts[keep], law[keep] * M
    if law[~keep].sum() > 0:
        observed, expected = np.append(observed, counts[~keep].sum()), np.append(expected, law[~keep].sum() * M)
    _, pval = stats.chisquare(observed, expected)
    assert pval > 1e-3


def test_memory_mapped_float16_pool(tmp_path):
    from activebatch.kernels.kmeanspp import badge_kmeanspp

    p, z = _random_pool(10, n=300, k=5, d=8)
    np.save(tmp_path / "p.npy", p.astype(np.float32))
    np.save(tmp_path / "z.npy", z.astype(np.float16))
    pm = np.load(tmp_path / "p.npy", mmap_mode="r")
    zm = np.load(tmp_path / "z.npy", mmap_mode="r")
    a = badge_kmeanspp(pm, zm, 30, np.random.default_rng(0), block_rows=64)
    b = badge_kmeanspp(torch.tensor(p, dtype=torch.float32), torch.tensor(z.astype(np.float16).astype(np.float32)),
                       30, np.random.default_rng(0))
    assert np.unique(a).size == 30
    np.testing.assert_array_equal(a, b)


def test_inputs_are_never_modified():
    p, z = _random_pool(11, n=50)
    p0, z0 = p.copy(), z.copy()
    ab.select("badge", 10, probs=p, embeddings=z, seed=0)
    pt, zt = torch.tensor(p), torch.tensor(z)
    ab.select("badge", 10, probs=pt, embeddings=zt, seed=0)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(pt.numpy(), p0)
