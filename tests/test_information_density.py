"""Information density: the exact O(N d) mean cosine similarity equals the brute-force double loop."""
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels import rowblocks
from activebatch.kernels.information_density import mean_cosine_similarity
from activebatch.strategies.information_density import InformationDensity
from activebatch.testing import check_strategy, make_evidence


def cosine(a, b):
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return 0.0 if na == 0 or nb == 0 else sum(x * y for x, y in zip(a, b)) / (na * nb)


def plain_density(Z):
    """(1/U) sum_u cos(x, x_u), a double loop over all pairs (x itself included)."""
    return np.array([sum(cosine(x, u) for u in Z) / len(Z) for x in Z])


def plain_phi(P, measure):
    out = []
    for p in P:
        s = sorted(p, reverse=True)
        if measure == "entropy":
            out.append(-sum(v * math.log(v) for v in p if v > 0))
        elif measure == "margin":
            out.append(1 - (s[0] - s[1]))
        else:
            out.append(1 - s[0])
    return np.array(out)


def plain_information_density(P, Z, measure="entropy", beta=1.0):
    return plain_phi(P, measure) * np.maximum(plain_density(Z), 0.0) ** beta


def test_mean_cosine_similarity_equals_the_double_loop():
    rng = np.random.default_rng(0)
    Z = np.abs(rng.normal(size=(40, 5)))          # non-negative features, as in the paper
    Z[3] = 0.0                                     # a zero row: cosine 0 with everything
    np.testing.assert_allclose(mean_cosine_similarity(Z).numpy(), plain_density(Z), rtol=1e-12, atol=1e-15)
    W = rng.normal(size=(30, 4))                  # mixed signs: negative means are kept by the kernel
    np.testing.assert_allclose(mean_cosine_similarity(torch.from_numpy(W)).numpy(), plain_density(W),
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("measure", ["entropy", "margin", "least_confidence"])
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_scores_and_picks_equal_the_plain_definition(measure, beta):
    ev = make_evidence(seed=1, n=50, d=6)
    P, Z = ev["probs"], np.abs(ev["embeddings"])
    expected = plain_information_density(P, Z, measure, beta)
    sel = InformationDensity(measure=measure, beta=beta).query(
        ab.Evidence.from_arrays(probs=P, embeddings=Z), 10, np.random.default_rng(0))
    np.testing.assert_allclose(sel.candidate_scores, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(sel.indices, np.argsort(-expected, kind="stable")[:10])
    idx = ab.select("information_density", 10, probs=P, embeddings=Z, measure=measure, beta=beta)
    np.testing.assert_array_equal(idx, sel.indices)


def test_the_default_is_entropy_with_beta_one():
    assert InformationDensity().get_params() == {"measure": "entropy", "beta": 1.0}
    ev = make_evidence(seed=2, n=40)
    P, Z = ev["probs"], ev["embeddings"]        # mixed-sign embeddings: negative densities count as 0
    expected = plain_information_density(P, Z)
    assert (plain_density(Z) < 0).any()
    idx = ab.select("information_density", 8, probs=P, embeddings=Z)
    np.testing.assert_array_equal(idx, np.argsort(-expected, kind="stable")[:8])


def test_density_outweighs_an_outlier():
    # Two equally uncertain candidates: one in a dense cluster, one alone; the dense one goes first.
    Z = np.array([[1.0, 0.0], [0.99, 0.05], [0.98, 0.1], [1.0, 0.02], [0.0, 1.0]])
    P = np.array([[0.5, 0.5], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.5, 0.5]])
    assert ab.select("information_density", 1, probs=P, embeddings=Z).tolist() == [0]
    # beta = 0 is plain entropy: the tie between 0 and 4 goes to the lowest position
    assert ab.select("information_density", 2, probs=P, embeddings=Z, beta=0.0).tolist() == [0, 4]


def test_ties_go_to_the_lowest_position():
    Z = np.ones((6, 3))
    P = np.tile([[0.6, 0.4]], (6, 1))
    assert ab.select("information_density", 3, probs=P, embeddings=Z).tolist() == [0, 1, 2]


def test_blocks_memory_maps_and_float32(tmp_path, monkeypatch):
    ev = make_evidence(seed=3, n=80, d=7)
    P, Z = ev["probs"], ev["embeddings"]
    whole = InformationDensity().query(ab.Evidence.from_arrays(probs=P, embeddings=Z), 10,
                                       np.random.default_rng(0))
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 16)      # two rows per block
    np.testing.assert_allclose(mean_cosine_similarity(Z).numpy(), plain_density(Z), rtol=1e-10, atol=1e-14)
    np.save(tmp_path / "p.npy", P.astype(np.float32))
    np.save(tmp_path / "z.npy", Z.astype(np.float32))
    Pm, Zm = np.load(tmp_path / "p.npy", mmap_mode="r"), np.load(tmp_path / "z.npy", mmap_mode="r")
    sel = InformationDensity().query(ab.Evidence.from_arrays(probs=Pm, embeddings=Zm), 10, np.random.default_rng(0))
    np.testing.assert_array_equal(sel.indices, whole.indices)
    np.testing.assert_allclose(sel.candidate_scores, whole.candidate_scores, rtol=1e-5, atol=1e-6)


def test_options_are_checked_and_public_checks_pass():
    for bad in (dict(measure="bald"), dict(beta=-1.0), dict(beta="1"), dict(beta=float("nan"))):
        with pytest.raises(ValueError):
            ab.strategies.get("information_density", **bad)
    check_strategy(InformationDensity(measure="least_confidence", beta=2.0))
