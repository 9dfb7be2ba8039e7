"""CLUE: entropy-weighted k-means, then the candidate nearest each centre."""
import math

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels import rowblocks
from activebatch.kernels.clue import nearest_to_centres, tempered_entropy
from activebatch.strategies.clue import CLUE
from activebatch.testing import check_strategy

CENTRES = np.array([[0, 0], [40, 0], [0, 40], [40, 40], [20, 80]], dtype=float)


def _blobs(seed=0, per=20):
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(len(CENTRES)), per)
    Z = CENTRES[blob] + rng.normal(size=(blob.size, 2))
    logits = rng.normal(scale=1.5, size=(blob.size, 3))
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Z, P, blob


def plain_entropy(P, T=1.0):
    out = []
    for p in P:
        q = [v ** (1 / T) for v in p]
        q = [v / sum(q) for v in q]
        out.append(-sum(v * math.log(v) for v in q if v > 0))
    return np.array(out)


def test_one_pick_per_blob_nearest_to_its_entropy_weighted_centre():
    Z, P, blob = _blobs()
    w = plain_entropy(P)
    for seed in range(3):
        sel = CLUE().query(ab.Evidence.from_arrays(probs=P, embeddings=Z), 5, np.random.default_rng(seed))
        assert sorted(blob[sel.indices].tolist()) == [0, 1, 2, 3, 4]
        for i in sel.indices:
            members = np.flatnonzero(blob == blob[i])
            centre = (w[members, None] * Z[members]).sum(0) / w[members].sum()
            # the nearest candidate of the whole pool to the weighted centre (the nearest-to-centre rule)
            assert i == np.argmin(((Z - centre) ** 2).sum(1))
        # ordered by the uncertainty mass of the picked cluster, which is the score
        mass = np.array([w[blob == blob[i]].sum() for i in sel.indices])
        np.testing.assert_allclose(sel.scores, mass, rtol=1e-10)
        assert np.all(np.diff(sel.scores) <= 0)


def test_the_entropy_weights_pull_the_centre():
    Z = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    P = np.array([[0.99, 0.01]] * 4 + [[0.5, 0.5]])      # the last item is by far the most uncertain
    w = plain_entropy(P)
    centre = (w * Z[:, 0]).sum() / w.sum()                 # about 3.5: pulled from 2 towards 4
    expected = int(np.argmin(np.abs(Z[:, 0] - centre)))
    assert expected in (3, 4)
    assert ab.select("clue", 1, probs=P, embeddings=Z, seed=0).tolist() == [expected]


def test_tempered_entropy_equals_the_plain_formula():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=20)
    P[0] = [1.0, 0.0, 0.0, 0.0]
    for T in (1.0, 0.1, 2.0):
        np.testing.assert_allclose(tempered_entropy(torch.from_numpy(P), T).numpy(), plain_entropy(P, T),
                                   rtol=1e-10, atol=1e-12)


def test_nearest_to_centres_gives_distinct_candidates():
    Z = np.array([[0.0], [1.0], [5.0], [10.0]])
    # Both centres 0.2 and 0.4 are nearest to candidate 0; 0.2 is closer so keeps it, 0.4 takes 1.
    chosen, d2 = nearest_to_centres(Z, np.array([[0.4], [0.2], [9.0]]))
    assert chosen.tolist() == [1, 0, 3]
    np.testing.assert_allclose(d2, [0.36, 0.04, 1.0])
    # Equidistant: the lower centre index keeps the candidate; a candidate tie goes to the lowest position.
    chosen, _ = nearest_to_centres(Z, np.array([[0.5], [0.5]]))
    assert chosen.tolist() == [0, 1]
    # Every candidate for as many centres, all at the same point.
    chosen, _ = nearest_to_centres(Z, np.full((4, 1), 4.0))
    assert chosen.tolist() == [2, 1, 0, 3]


def test_nearest_to_centres_in_blocks_and_memory_maps(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(200, 6))
    C = rng.normal(size=(12, 6))
    plain = [int(np.argmin(((Z - c) ** 2).sum(1))) for c in C]
    chosen, _ = nearest_to_centres(Z, C)
    if len(set(plain)) == len(plain):
        assert chosen.tolist() == plain
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 40)
    np.save(tmp_path / "z.npy", Z)
    np.testing.assert_array_equal(nearest_to_centres(np.load(tmp_path / "z.npy", mmap_mode="r"), C)[0], chosen)
    np.testing.assert_array_equal(nearest_to_centres(torch.from_numpy(Z), C)[0], chosen)


def test_duplicates_and_a_confident_model_still_give_n_distinct_picks():
    import warnings

    Z = np.zeros((12, 3))
    Z[6:] = 1.0
    P = np.tile([[0.6, 0.4]], (12, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # k-means warns about fewer distinct points than clusters
        idx = ab.select("clue", 5, probs=P, embeddings=Z, seed=0)
    assert np.unique(idx).size == 5
    conf = np.tile([[1.0, 0.0]], (30, 1))          # every entropy zero: unweighted k-means
    Z2 = np.random.default_rng(0).normal(size=(30, 2))
    sel = CLUE().query(ab.Evidence.from_arrays(probs=conf, embeddings=Z2), 6, np.random.default_rng(0))
    assert np.unique(sel.indices).size == 6 and np.all(sel.scores == 0)


def test_float32_and_memory_mapped_inputs_agree(tmp_path):
    Z, P, _ = _blobs(2)
    a = ab.select("clue", 5, probs=P, embeddings=Z, seed=4)
    np.save(tmp_path / "p.npy", P.astype(np.float32))
    np.save(tmp_path / "z.npy", Z.astype(np.float32))
    b = ab.select("clue", 5, probs=np.load(tmp_path / "p.npy", mmap_mode="r"),
                  embeddings=np.load(tmp_path / "z.npy", mmap_mode="r"), seed=4)
    np.testing.assert_array_equal(np.sort(a), np.sort(b))


def test_options_are_checked_and_public_checks_pass():
    for bad in (dict(temperature=0.0), dict(temperature=-1.0), dict(n_init=0), dict(max_iter=0), dict(n_init=1.5)):
        with pytest.raises(ValueError):
            ab.strategies.get("clue", **bad)
    assert CLUE.randomized
    check_strategy(CLUE(temperature=0.5, n_init=2))


def test_without_scikit_learn_the_extra_is_named():
    import subprocess
    import sys

    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import numpy as np, activebatch as ab\n"
            "try:\n"
            "    ab.select('clue', 2, probs=np.full((5, 2), 0.5), embeddings=np.eye(5))\n"
            "except ImportError as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingExtraError") and "pip install 'activebatch[clustering]'" in out
    assert "the clue strategy" in out
