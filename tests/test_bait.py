"""BAIT (Ash et al., NeurIPS 2021): factorised kernel vs explicit Fisher matrices, the objective, the strategy."""
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels.bait import bait_memory_bytes, bait_select, fisher_factors, fisher_sum
from activebatch.testing import check_strategy


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data(seed=0, n=30, k=3, d=4, n_labeled=6):
    rng = np.random.default_rng(seed)
    return dict(probs=_softmax(rng.normal(scale=2.0, size=(n, k))), embeddings=rng.normal(size=(n, d)),
                labeled_probs=_softmax(rng.normal(scale=2.0, size=(n_labeled, k))),
                labeled_embeddings=rng.normal(size=(n_labeled, d)))


def _fisher_embedding(p, z):
    """V_x, K x (K d): row k = sqrt(p_k) (e_k - p) (kron) z, the K gradients weighted by sqrt(p)."""
    K = p.size
    return np.stack([math.sqrt(p[k]) * np.kron(np.eye(K)[k] - p, z) for k in range(K)])


def _plain_bait(probs, embeddings, labeled_probs, labeled_embeddings, n, lamb=1.0, oversample=2.0):
    """BAIT with explicit (K d) x (K d) Fisher matrices and a fresh inverse for every evaluation."""
    N, L = len(probs), len(labeled_probs)
    D = probs.shape[1] * embeddings.shape[1]
    fisher = [_fisher_embedding(p, z).T @ _fisher_embedding(p, z) for p, z in zip(probs, embeddings)]
    fisher_lab = [_fisher_embedding(p, z).T @ _fisher_embedding(p, z) for p, z in zip(labeled_probs,
                                                                                       labeled_embeddings)]
    F_U = (sum(fisher) + sum(fisher_lab, np.zeros((D, D)))) / (N + L)     # the whole pool's mean Fisher
    w_lab, w_pick = 1.0 / (L + n), n / (L + n)                            # the reference code's weights
    M0 = lamb * np.eye(D) + w_lab * sum(fisher_lab, np.zeros((D, D)))

    def f(M):
        return float(np.trace(np.linalg.inv(M) @ F_U))

    M, chosen, gains = M0.copy(), [], []
    for _ in range(min(N, math.ceil(oversample * n))):
        values = [f(M + w_pick * fisher[i]) if i not in chosen else np.inf for i in range(N)]
        i = int(np.argmin(values))
        gains.append(f(M) - values[i])
        chosen.append(i)
        M = M + w_pick * fisher[i]
    held, removed, costs = list(chosen), [], []
    while len(held) > n:
        values = [f(M - w_pick * fisher[i]) for i in held]
        j = int(np.argmin(values))
        costs.append(values[j] - f(M))
        M = M - w_pick * fisher[held[j]]
        removed.append(held.pop(j))
    decreases, M = [], M0.copy()
    for i in held:
        before = f(M)
        M = M + w_pick * fisher[i]
        decreases.append(before - f(M))
    return dict(indices=held, decreases=decreases, forward=chosen, forward_gains=gains, removed=removed,
                removal_costs=costs, objective_start=f(M0), objective_end=f(M))


def _run(data, n, **kw):
    return bait_select(torch.tensor(data["probs"]), torch.tensor(data["embeddings"]),
                       torch.tensor(data["labeled_probs"]), torch.tensor(data["labeled_embeddings"]), n, **kw)


@pytest.mark.parametrize(("seed", "n", "kw"), [(0, 5, {}), (1, 8, {}), (2, 3, {"lamb": 0.1}),
                                               (3, 6, {"oversample": 1.0}), (4, 20, {})])
def test_bait_matches_explicit_fisher_matrices_pick_for_pick(seed, n, kw):
    data = _data(seed)
    plain = _plain_bait(**data, n=n, **kw)
    res = _run(data, n, **kw)
    assert res.forward.tolist() == plain["forward"]
    assert res.removed.tolist() == plain["removed"]
    assert res.indices.tolist() == plain["indices"]
    np.testing.assert_allclose(res.forward_gains, plain["forward_gains"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(res.removal_costs, plain["removal_costs"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(res.decreases, plain["decreases"], rtol=1e-7, atol=1e-10)
    assert res.objective_start == pytest.approx(plain["objective_start"], rel=1e-10)
    assert res.objective_end == pytest.approx(plain["objective_end"], rel=1e-9)


def test_bait_without_labeled_items_and_with_all_candidates():
    data = _data(5, n=12, n_labeled=0)
    for n in (1, 4, 12):                          # n = N: forward takes all, nothing is pruned
        plain = _plain_bait(**data, n=n)
        res = _run(data, n)
        assert res.indices.tolist() == plain["indices"]
        np.testing.assert_allclose(res.decreases, plain["decreases"], rtol=1e-7, atol=1e-10)


def test_bait_objective_decreases_as_in_the_paper():
    data = _data(6, n=40, k=4, d=5, n_labeled=8)
    n = 6
    res = _run(data, n)
    # forward: every step lowers tr(M^-1 F_U); backward: every removal raises it, by the least possible
    assert len(res.forward) == 2 * n and len(res.removed) == n
    assert (res.forward_gains > 0).all() and (res.removal_costs >= 0).all()
    # greedy: gains shrink as the batch grows (the objective's marginal decreases diminish here)
    assert res.forward_gains[0] == res.forward_gains.max()
    # the per-pick decreases telescope to the batch's total decrease
    assert res.decreases.sum() == pytest.approx(res.objective_start - res.objective_end, rel=1e-9)
    assert (res.decreases > 0).all() and res.objective_end < res.objective_start
    # the final objective is the one of the batch, computed afresh
    plain = _plain_bait(**data, n=n)
    assert res.objective_end == pytest.approx(plain["objective_end"], rel=1e-9)
    # pruning from 2n is no worse here than plain forward greedy of n, and better than random batches
    forward_only = _run(data, n, oversample=1.0)
    assert res.objective_end <= forward_only.objective_end + 1e-12
    rng = np.random.default_rng(0)
    for _ in range(5):
        pick = rng.choice(40, size=n, replace=False)
        assert _objective(data, pick, n) > res.objective_end


def _objective(data, batch, n, lamb=1.0):
    """tr(M^-1 F_U) for a given batch, with explicit matrices."""
    N, L = len(data["probs"]), len(data["labeled_probs"])
    fis = lambda p, z: _fisher_embedding(p, z).T @ _fisher_embedding(p, z)   # noqa: E731
    D = data["probs"].shape[1] * data["embeddings"].shape[1]
    F_lab = sum((fis(p, z) for p, z in zip(data["labeled_probs"], data["labeled_embeddings"])), np.zeros((D, D)))
    F_U = (sum(fis(p, z) for p, z in zip(data["probs"], data["embeddings"])) + F_lab) / (N + L)
    M = lamb * np.eye(D) + F_lab / (L + n) + n / (L + n) * sum(fis(data["probs"][i], data["embeddings"][i])
                                                                for i in batch)
    return float(np.trace(np.linalg.inv(M) @ F_U))


def test_fisher_factors_and_sum_are_the_explicit_fisher():
    data = _data(7, n=9, k=3, d=4)
    p, z = data["probs"], data["embeddings"]
    u = fisher_factors(torch.tensor(p)).numpy()
    for i in range(9):
        V = _fisher_embedding(p[i], z[i])
        np.testing.assert_allclose(np.kron(u[i], z[i][None, :]), V, atol=1e-15)
        np.testing.assert_allclose(u[i].T @ u[i], np.diag(p[i]) - np.outer(p[i], p[i]), atol=1e-15)
    explicit = sum(_fisher_embedding(a, b).T @ _fisher_embedding(a, b) for a, b in zip(p, z))
    np.testing.assert_allclose(fisher_sum(torch.tensor(p), torch.tensor(z)).numpy(), explicit, atol=1e-13)


def test_bait_reads_memory_maps_and_low_precision(tmp_path):
    data = _data(8, n=50, k=4, d=6, n_labeled=5)
    want = ab.select("bait", 7, **data)
    maps = {}
    for key in ("probs", "embeddings", "labeled_embeddings"):
        np.save(tmp_path / f"{key}.npy", data[key])
        maps[key] = np.load(tmp_path / f"{key}.npy", mmap_mode="r")
    np.testing.assert_array_equal(ab.select("bait", 7, labeled_probs=data["labeled_probs"], **maps), want)
    as32 = {k: v.astype(np.float32) for k, v in data.items()}
    np.testing.assert_array_equal(ab.select("bait", 7, **as32), want)
    # the candidates that are excluded play no part: not as picks, nor in the pool's Fisher
    keep = np.arange(1, 50, 2)
    sub = dict(data, probs=data["probs"][keep], embeddings=data["embeddings"][keep])
    np.testing.assert_array_equal(ab.select("bait", 5, exclude=np.arange(0, 50, 2), **data),
                                  keep[ab.select("bait", 5, **sub)])


def test_bait_refuses_too_large_fisher_matrices():
    assert bait_memory_bytes(1000, 10, 512) == 8 * (3 * 5120 ** 2 + 3 * 1000 * 100)
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(3, 100)))
    z = np.zeros((3, 512))
    with pytest.raises(ValueError, match=r"\(51200 x 51200\).*K = 100 classes and d = 512.*bound of 4.00 GiB"):
        ab.select("bait", 1, probs=probs, embeddings=z, labeled_probs=probs, labeled_embeddings=z)
    with pytest.raises(ValueError, match="memory bound of 0.00 GiB"):
        bait_select(probs[:, :3] / probs[:, :3].sum(1, keepdims=True), z[:, :4], probs[:, :3], z[:, :4], 1,
                    max_bytes=10)
    with pytest.raises(ValueError, match="lamb"):
        ab.strategies.get("bait", lamb=0.0)
    with pytest.raises(ValueError, match="oversample"):
        ab.strategies.get("bait", oversample=0.5)


def test_bait_strategy_scores_and_options():
    data = _data(9, n=30, k=3, d=4)
    sel = ab.strategies.get("bait", lamb=0.5).query(ab.Evidence.from_arrays(**data), 4, np.random.default_rng(0))
    plain = _plain_bait(**data, n=4, lamb=0.5)
    assert sel.indices.tolist() == plain["indices"]
    np.testing.assert_allclose(sel.scores, plain["decreases"], rtol=1e-7)
    assert "tr(M^-1 F_U)" in sel.score_name and sel.candidate_scores is None
    assert repr(ab.strategies.get("bait")) == "Bait(lamb=1.0, oversample=2.0, memory_limit_mib=4096)"
    with pytest.raises(ValueError, match="labeled_probs"):
        ab.select("bait", 3, probs=data["probs"], embeddings=data["embeddings"],
                  labeled_embeddings=data["labeled_embeddings"])


def test_bait_public_checks():
    check_strategy("bait")
