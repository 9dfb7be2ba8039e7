"""The shared suite: every registered strategy must pass these checks."""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch import strategies
from conftest import make_evidence

ALL = strategies.names()


def _needed(name, arrays):
    cls = strategies.strategy_class(name)
    return {k: v for k, v in arrays.items() if k in cls.needs | cls.optional}


@pytest.mark.parametrize("name", ALL)
def test_returns_n_distinct_positions_in_range(name, evidence_arrays):
    for n in (1, 7, 30):
        idx = ab.select(name, n, seed=1, **evidence_arrays)
        assert isinstance(idx, np.ndarray) and idx.dtype == np.int64
        assert idx.shape == (n,)
        assert np.unique(idx).size == n
        assert idx.min() >= 0 and idx.max() < 60


@pytest.mark.parametrize("name", ALL)
def test_n_equal_to_number_of_candidates(name, evidence_arrays):
    idx = ab.select(name, 60, seed=0, **evidence_arrays)
    assert sorted(idx.tolist()) == list(range(60))


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_selection(name, evidence_arrays):
    a = ab.select(name, 12, seed=5, **evidence_arrays)
    b = ab.select(name, 12, seed=5, **evidence_arrays)
    np.testing.assert_array_equal(a, b)
    g1 = ab.select(name, 12, seed=np.random.default_rng(3), **evidence_arrays)
    g2 = ab.select(name, 12, seed=np.random.default_rng(3), **evidence_arrays)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("name", ALL)
def test_torch_and_numpy_inputs_agree(name, evidence_arrays):
    as_torch = {k: torch.from_numpy(v) for k, v in evidence_arrays.items()}
    np.testing.assert_array_equal(ab.select(name, 9, seed=2, **evidence_arrays),
                                  ab.select(name, 9, seed=2, **as_torch))


@pytest.mark.parametrize("name", ALL)
def test_never_selects_an_excluded_item(name, evidence_arrays):
    rng = np.random.default_rng(0)
    excluded = rng.choice(60, size=25, replace=False)
    for seed in range(3):
        idx = ab.select(name, 35, exclude=excluded, seed=seed, **evidence_arrays)
        assert not set(idx.tolist()) & set(excluded.tolist())
        assert np.unique(idx).size == 35
    mask = np.zeros(60, dtype=bool)
    mask[excluded] = True
    np.testing.assert_array_equal(ab.select(name, 10, exclude=mask, seed=4, **evidence_arrays),
                                  ab.select(name, 10, exclude=excluded, seed=4, **evidence_arrays))
    with pytest.raises(ValueError, match="not excluded"):
        ab.select(name, 36, exclude=excluded, seed=0, **evidence_arrays)


@pytest.mark.parametrize("name", ALL)
def test_bad_n_is_refused(name, evidence_arrays):
    with pytest.raises(ValueError, match="at least 1"):
        ab.select(name, 0, seed=0, **evidence_arrays)
    with pytest.raises(ValueError, match="larger than the number of candidates"):
        ab.select(name, 61, seed=0, **evidence_arrays)
    with pytest.raises(TypeError, match="integer"):
        ab.select(name, 2.5, seed=0, **evidence_arrays)


@pytest.mark.parametrize("name", ALL)
def test_bad_evidence_is_refused(name, evidence_arrays):
    used = _needed(name, evidence_arrays)
    for field in sorted(set(used) - {"labeled_embeddings"}):
        bad = dict(evidence_arrays)
        arr = np.array(evidence_arrays[field], copy=True)
        arr.reshape(-1)[3] = np.nan
        bad[field] = arr
        with pytest.raises(ValueError, match="NaN"):
            ab.select(name, 3, seed=0, **bad)
        missing = {k: v for k, v in evidence_arrays.items() if k != field}
        if field in strategies.strategy_class(name).needs:
            with pytest.raises(ValueError, match=field):
                ab.select(name, 3, seed=0, **missing)
    if "probs" in used:
        bad = dict(evidence_arrays, probs=evidence_arrays["probs"] * 2)
        with pytest.raises(ValueError, match="sum to 1"):
            ab.select(name, 3, seed=0, **bad)
        neg = np.array(evidence_arrays["probs"])
        neg[0, :2] = [-0.1, neg[0, 0] + neg[0, 1] + 0.1]
        with pytest.raises(ValueError, match="negative"):
            ab.select(name, 3, seed=0, **dict(evidence_arrays, probs=neg))
    if {"probs", "embeddings"} <= set(used):
        short = dict(evidence_arrays, embeddings=evidence_arrays["embeddings"][:-1])
        with pytest.raises(ValueError, match="rows"):
            ab.select(name, 3, seed=0, **short)


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_refused(name, evidence_arrays):
    with pytest.raises(TypeError, match="unknown option"):
        ab.select(name, 3, seed=0, no_such_option=1, **evidence_arrays)


@pytest.mark.parametrize("name", ALL)
def test_other_seeds_still_valid(name):
    for seed in range(5):
        arrays = make_evidence(seed=seed, n=25, k=3, d=4, n_labeled=3)
        idx = ab.select(name, 25, seed=seed, **arrays)
        assert sorted(idx.tolist()) == list(range(25))


def test_unknown_strategy_lists_known_ones(evidence_arrays):
    with pytest.raises(ValueError) as err:
        ab.select("no-such-strategy", 3, **evidence_arrays)
    for name in ALL:
        assert name in str(err.value)


def test_registry_contents():
    assert {"random", "least_confidence", "margin", "entropy", "coreset", "badge"} <= set(ALL)
    assert ALL == sorted(ALL)
    with pytest.raises(ValueError, match="already registered"):
        @strategies.register
        class Fake(strategies.Strategy):
            name = "random"


def test_unused_evidence_is_ignored(evidence_arrays):
    # entropy does not read embeddings, so a broken embeddings array does not matter
    bad_emb = np.full((3, 2), np.nan)
    a = ab.select("entropy", 4, probs=evidence_arrays["probs"], embeddings=bad_emb)
    b = ab.select("entropy", 4, probs=evidence_arrays["probs"])
    np.testing.assert_array_equal(a, b)
    # random only needs the number of rows
    assert ab.select("random", 60, embeddings=evidence_arrays["embeddings"], seed=0).size == 60
    with pytest.raises(ValueError, match="no candidate evidence"):
        ab.select("random", 1)
