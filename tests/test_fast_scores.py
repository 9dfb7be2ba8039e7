"""The CPU row-block paths of the per-item scores and the one-pass probability check.

Scores are compared with plain float64 torch transcriptions of their formulas (the torch path
that other devices take), on inputs that span several blocks; picks through ``ab.select`` must
be those of the reference scores. The checks must refuse bad input with the messages of the
exact scan.
"""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels import scores as S
from activebatch.kernels.batchbald import bald_scores
from activebatch.utils import validation as V


def _probs(rng, n, k, dtype, zeros=0.0):
    logits = rng.normal(scale=2.0, size=(n, k))
    if zeros:
        logits[rng.random((n, k)) < zeros] = -np.inf           # exact zeros after the softmax
        logits[:, 0] = np.maximum(logits[:, 0], 0.0)           # every row keeps one class
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)


def _xlogy_sum(p):
    return torch.special.xlogy(p, p).sum(dim=-1)


# Plain float64 transcriptions of the formulas (the torch path of the kernels).
def _ref_entropy(p):
    return -_xlogy_sum(p.double())


def _ref_margin(p):
    top2 = p.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def _ref_bald(m):
    m = m.double()
    return -_xlogy_sum(m.mean(0)) + _xlogy_sum(m).mean(0)


def _ref_vote(m):
    C, _, K = m.shape
    votes = torch.nn.functional.one_hot(m.argmax(dim=2), K).sum(dim=0).double() / C
    return -_xlogy_sum(votes)


def _ref_consensus(m):
    return -_xlogy_sum(m.double().mean(0))


def _ref_kl(m):
    p = m.double()
    c = p.mean(dim=0, keepdim=True)
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, c)).sum(dim=2).mean(dim=0).clamp_min(0.0)


def _ref_egl(p, z):
    p, z = p.double(), z.double()
    u = ((p * p).sum(dim=1, keepdim=True) - 2.0 * p + 1.0).clamp_min(0.0).sqrt()
    return (p * u).sum(dim=1) * (z * z).sum(dim=1).sqrt()


PROB_SCORES = [("least_confidence", S.least_confidence_scores, lambda p: p.max(dim=1).values, False),
               ("margin", S.margin_scores, _ref_margin, False),
               ("entropy", S.entropy_scores, _ref_entropy, True)]
MC_SCORES = [("bald", bald_scores, _ref_bald, True),
             ("vote_entropy", S.vote_entropy_scores, _ref_vote, True),
             ("consensus_entropy", S.consensus_entropy_scores, _ref_consensus, True),
             ("kl_divergence", S.kl_divergence_scores, _ref_kl, True)]


def _tol(dtype):
    # float32 inputs take float32 logarithms (about 1e-7 of the value); float64 ones float64
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few hundred values and the thread pool from the first block on."""
    monkeypatch.setattr(S, "_BLOCK_ELEMENTS", 500)
    monkeypatch.setattr(S, "_THREADED_ELEMENTS", 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("zeros", [0.0, 0.3])
@pytest.mark.parametrize("name,fn,ref,largest", PROB_SCORES)
def test_prob_scores_match_the_formulas(small_blocks, name, fn, ref, largest, zeros, dtype):
    P = _probs(np.random.default_rng(0), 3001, 13, dtype, zeros)
    t = torch.from_numpy(P)
    got, want = fn(t), ref(t)
    np.testing.assert_allclose(got.numpy(), want.numpy(), **_tol(dtype))
    if name != "entropy":           # the max and the margin are exact, in the input's dtype
        assert got.dtype == t.dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    picks = ab.select(name, 40, probs=P)
    np.testing.assert_array_equal(picks, S.top_n(want.numpy(), 40, largest=largest))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,fn,ref,largest", MC_SCORES)
def test_mc_scores_match_the_formulas(small_blocks, name, fn, ref, largest, dtype):
    M = _probs(np.random.default_rng(1), 7 * 1201, 5, dtype, zeros=0.2).reshape(7, 1201, 5)
    t = torch.from_numpy(M)
    got, want = fn(t), ref(t)
    assert got.dtype == torch.float64
    tol = dict(rtol=1e-12, atol=1e-12) if name in ("bald", "kl_divergence", "vote_entropy") else _tol(dtype)
    np.testing.assert_allclose(got.numpy(), want.numpy(), **tol)
    picks = ab.select(name, 30, mc_probs=M)
    np.testing.assert_array_equal(picks, S.top_n(want.numpy(), 30, largest=largest))


@pytest.mark.parametrize("bias", [False, True])
def test_egl_matches_the_formula(small_blocks, bias):
    rng = np.random.default_rng(2)
    P = _probs(rng, 2003, 7, np.float32, zeros=0.2)
    Z = rng.normal(size=(2003, 11)).astype(np.float32)
    want = _ref_egl(torch.from_numpy(P), torch.from_numpy(Z))
    if bias:
        z = torch.from_numpy(Z).double()
        want = want / (z * z).sum(dim=1).sqrt() * ((z * z).sum(dim=1) + 1.0).sqrt()
    got = S.egl_scores(torch.from_numpy(P), torch.from_numpy(Z), bias=bias)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    picks = ab.select("egl", 25, probs=P, embeddings=Z, bias=bias)
    np.testing.assert_array_equal(picks, S.top_n(want.numpy(), 25, largest=True))


def test_threads_do_not_change_the_scores(monkeypatch):
    P = torch.from_numpy(_probs(np.random.default_rng(3), 4000, 9, np.float32, zeros=0.1))
    M = torch.from_numpy(_probs(np.random.default_rng(4), 6 * 900, 4, np.float32).reshape(6, 900, 4))
    monkeypatch.setattr(S, "_BLOCK_ELEMENTS", 700)
    monkeypatch.setattr(S, "_THREADED_ELEMENTS", 0)
    fns = [lambda: S.entropy_scores(P), lambda: S.margin_scores(P), lambda: bald_scores(M),
           lambda: S.vote_entropy_scores(M), lambda: S.kl_divergence_scores(M)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [f() for f in fns]
        torch.set_num_threads(3)
        three = [f() for f in fns]
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, three):
        assert torch.equal(a, b)


def test_entropy_of_exact_zeros_and_nan():
    """0 log 0 = 0, as xlogy; a NaN row stays NaN (the kernels do not hide bad values)."""
    p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [np.nan, 0.5, 0.5]], dtype=torch.float32)
    h = S.entropy_scores(p).numpy()
    np.testing.assert_allclose(h[:2], [np.log(2.0), 0.0], rtol=1e-7, atol=0)
    assert np.isnan(h[2])


# The one-pass check -------------------------------------------------------------------------------
def _exact_message(value):
    """The message of the full scan, which decides every input the one-pass check does not accept."""
    t = V.as_tensor(value, "probs")
    with pytest.raises(ValueError) as info:
        V._raise_problems(V._scan([(0, t)], probs=True), "probs", probs=True, n_cols=int(t.shape[1]))
    return str(info.value)


def _bad_inputs():
    P = _probs(np.random.default_rng(5), 50, 4, np.float32)
    out = {}
    for name, row, col, value in [("nan", 7, 2, np.nan), ("inf", 3, 0, np.inf), ("-inf", 40, 1, -np.inf)]:
        Q = P.copy()
        Q[row, col] = value
        out[name] = Q
    Q = P.copy()
    Q[[9, 31], 1] = np.nan                                      # two bad rows, the first named
    out["two nan rows"] = Q
    Q = P.copy()
    Q[11, 0] += Q[11, 1] + 0.01
    Q[11, 1] = -0.01                                            # negative, the row still sums to 1
    out["negative"] = Q
    Q = P.copy()
    Q[20] *= 1.5
    out["bad sum"] = Q
    out["logits"] = np.random.default_rng(6).normal(size=(30, 4)).astype(np.float32)
    Q = P.copy()
    Q[5, 0] = 3e38
    Q[5, 1] = 3e38                                              # finite, but the sum overflows
    out["overflowing row"] = Q
    return out


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_probabilities_get_the_exact_messages(case):
    Q = _bad_inputs()[case]
    with pytest.raises(ValueError) as info:
        ab.select("entropy", 2, probs=Q)
    assert str(info.value) == _exact_message(Q)


def test_messages_name_the_problem():
    bad = _bad_inputs()
    for case, text in [("nan", "probs contains NaN or infinite values (in 1 rows; the first is row 7)"),
                       ("two nan rows", "(in 2 rows; the first is row 9)"),
                       ("negative", "probs contains negative values"),
                       ("bad sum", "probs rows must sum to 1 (softmax probabilities, not logits); row 20 sums to 1.5"),
                       ("overflowing row", "probs rows must sum to 1")]:
        with pytest.raises(ValueError) as info:
            V.check_probs(bad[case])
        assert text in str(info.value), (case, str(info.value))


def test_mc_probs_refused_with_the_same_messages():
    M = _probs(np.random.default_rng(7), 3 * 20, 4, np.float32).reshape(3, 20, 4)
    M[1, 6, 2] = np.nan
    with pytest.raises(ValueError,
                       match=r"mc_probs contains NaN or infinite values \(in 1 rows; the first is row 26\)"):
        ab.select("bald", 2, mc_probs=M)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_sum_tolerance_is_decided_in_float64(dtype):
    """Rows near the tolerance are decided by the float64 sums, as before."""
    K = 8
    ok = np.full((3, K), 1.0 / K)
    ok[1, 0] += 0.999e-3
    bad = ok.copy()
    bad[2, 0] += 1.001e-3
    V.check_probs(ok.astype(dtype))
    with pytest.raises(ValueError, match="row 2 sums to 1.001"):
        V.check_probs(bad.astype(dtype))


def test_huge_finite_embeddings_are_accepted():
    """A sum that overflows from finite values is no NaN: the exact scan clears it."""
    Z = np.full((4, 3), 3e38, dtype=np.float32)
    assert V.check_matrix(Z, "embeddings").shape == (4, 3)
    Z[2, 1] = np.inf
    with pytest.raises(ValueError,
                       match=r"embeddings contains NaN or infinite values \(in 1 rows; the first is row 2\)"):
        V.check_matrix(Z, "embeddings")
