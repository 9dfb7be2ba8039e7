"""Selection over a sharded pool on a local Ray cluster: the picks of the single-machine ab.select."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="sharded selection runs on Ray (pip install 'activebatch[experiments]')")

import activebatch as ab  # noqa: E402
from activebatch.selection import MissingEvidenceError  # noqa: E402
from activebatch.selection.sharded import SHARDED_STRATEGIES  # noqa: E402

# Shards of unequal sizes, one empty and one of a single row.
SIZES = [40, 0, 1, 150, 60]
K, D, S = 5, 6, 4


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def _write(folder, name: str, arr: np.ndarray, sizes: list[int], axis: int = 0) -> list[str]:
    """``arr`` cut into shards of ``sizes`` rows along ``axis``, saved as .npy; the paths."""
    cuts = np.cumsum(sizes)[:-1]
    paths = []
    for i, part in enumerate(np.split(arr, cuts, axis=axis)):
        path = os.path.join(folder, f"{name}{i}.npy")
        np.save(path, part)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    rng = np.random.default_rng(0)
    N = sum(SIZES)
    P = rng.dirichlet(np.ones(K), size=N).astype(np.float32)
    P[100] = P[3]            # equal scores in different shards: ties go to the lowest position
    P[230] = P[3]
    Z = rng.normal(size=(N, D)).astype(np.float32)
    Z[5] = Z[200] = 8.0      # the furthest point, twice, in two shards: core-set's tie
    M = rng.dirichlet(np.ones(K), size=(S, N)).astype(np.float32)
    M[:, 150] = M[:, 20]
    folder = tmp_path_factory.mktemp("shards")
    files = {"probs": _write(folder, "p", P, SIZES), "embeddings": _write(folder, "z", Z, SIZES),
             "mc_probs": _write(folder, "m", M, SIZES, axis=1)}
    return {"P": P, "Z": Z, "M": M, "L": rng.normal(size=(20, D)).astype(np.float32), "files": files}


@pytest.fixture(scope="module")
def shards(cluster, pool):
    with ab.Shards(**pool["files"], owners=2) as sh:
        yield sh


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy", "bald"])
@pytest.mark.parametrize("exclude", [None, np.array([3, 41, 150, 199])])
def test_scores_pick_as_single_machine(shards, pool, name, exclude):
    field = {"mc_probs": pool["M"]} if name == "bald" else {"probs": pool["P"]}
    want = ab.select(name, 12, exclude=exclude, return_result=True, **field)
    got = shards.select(name, 12, exclude=exclude, return_result=True)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.scores, want.scores)
    assert got.score_name == want.score_name


def test_scores_ties_and_whole_pool(shards, pool):
    # n = N: the whole pool in order, ties (rows 3, 100, 230) by position
    N = sum(SIZES)
    want = ab.select("margin", N, probs=pool["P"])
    got = shards.select("margin", N)
    np.testing.assert_array_equal(got, want)
    assert list(got[np.isin(got, [3, 100, 230])]) == [3, 100, 230]


def test_select_with_lists_of_files(cluster, pool):
    # ab.select itself takes the lists of files (its own owners, stopped on return)
    got = ab.select("entropy", 5, probs=pool["files"]["probs"], ids=np.arange(sum(SIZES)) + 1000,
                    return_result=True)
    want = ab.select("entropy", 5, probs=pool["P"])
    np.testing.assert_array_equal(got.indices, want)
    np.testing.assert_array_equal(got.ids, want + 1000)


@pytest.mark.parametrize("labeled", [True, False])
def test_coreset_picks_as_single_machine(shards, pool, labeled):
    lab = pool["L"] if labeled else None
    ex = np.array([0, 41, 120])
    want = ab.select("coreset", 25, embeddings=pool["Z"], labeled_embeddings=lab, exclude=ex, seed=4,
                     return_result=True)
    got = shards.select("coreset", 25, labeled_embeddings=lab, exclude=ex, seed=4, return_result=True)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-12)
    if labeled:
        np.testing.assert_array_equal(got.indices, _furthest_first(pool["Z"], 25, lab, ex))
        # the furthest point is there twice: the lower position first, its copy never
        assert got.indices[0] == 5 and 200 not in got.indices[:10]


def _furthest_first(Z: np.ndarray, n: int, lab: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """The plain k-center greedy on float64 distances (ties: lowest position)."""
    X = Z.astype(np.float64)
    m = ((X[:, None, :] - lab.astype(np.float64)[None]) ** 2).sum(-1).min(1)
    m[excluded] = -np.inf
    out = []
    for _ in range(n):
        j = int(np.argmax(m))
        out.append(j)
        m = np.minimum(m, ((X - X[j]) ** 2).sum(1))
        m[out] = -np.inf
        m[excluded] = -np.inf
    return np.array(out)


def _gradient_embeddings(P: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """g_i = (p_i - e_argmax) (outer) z_i, formed explicitly (small pools only)."""
    U = P.astype(np.float64).copy()
    U[np.arange(len(U)), U.argmax(1)] -= 1.0
    return (U[:, :, None] * Z.astype(np.float64)[:, None, :]).reshape(len(U), -1)


def test_badge_draws_follow_kmeanspp(cluster, tmp_path):
    from scipy.stats import chisquare

    rng = np.random.default_rng(1)
    sizes = [5, 0, 3, 4]
    P = rng.dirichlet(np.ones(3), size=12).astype(np.float32)
    Z = rng.normal(size=(12, 4)).astype(np.float32)
    files = {"probs": _write(tmp_path, "p", P, sizes), "embeddings": _write(tmp_path, "z", Z, sizes)}
    G = _gradient_embeddings(P, Z)
    excluded = 7
    keep = np.ones(12, dtype=bool)
    keep[excluded] = False
    first = int(np.argmax(np.where(keep, (G * G).sum(1), -np.inf)))    # init="norm"
    d2 = ((G - G[first]) ** 2).sum(1)
    d2[~keep] = 0.0
    law = d2 / d2.sum()
    draws = 240
    with ab.Shards(**files, owners=2) as sh:
        picks = np.array([sh.select("badge", 2, exclude=[excluded], seed=s) for s in range(draws)])
        again = sh.select("badge", 6, exclude=[excluded], seed=3, return_result=True)
        same = sh.select("badge", 6, exclude=[excluded], seed=3, return_result=True)
    assert (picks[:, 0] == first).all()
    counts = np.bincount(picks[:, 1], minlength=12)
    assert counts[first] == 0 and counts[excluded] == 0
    support = law > 0
    assert chisquare(counts[support], law[support] * draws).pvalue > 0.001
    # the same seed gives the same batch and the same D^2 values
    np.testing.assert_array_equal(again.indices, same.indices)
    np.testing.assert_array_equal(again.scores, same.scores)
    assert np.unique(again.indices).size == 6 and excluded not in again.indices
    assert again.scores[0] == np.inf
    # each D^2 is the squared distance to the nearest earlier centre (the kernel's factorised form
    # takes z . z' in float32, as the embeddings are)
    for t in range(1, 6):
        prev = G[again.indices[:t]]
        np.testing.assert_allclose(again.scores[t], ((G[again.indices[t]] - prev) ** 2).sum(1).min(), rtol=1e-5)


def test_badge_first_centre_and_batch(shards, pool):
    got = shards.select("badge", 30, seed=2, return_result=True)
    want = ab.select("badge", 30, probs=pool["P"], embeddings=pool["Z"], seed=2, return_result=True)
    assert got.indices[0] == want.indices[0]          # init="norm": the largest gradient norm
    assert np.unique(got.indices).size == 30
    rnd = shards.select("badge", 5, seed=2, init="random")
    assert rnd[0] == ab.select("badge", 5, probs=pool["P"], embeddings=pool["Z"], seed=2, init="random")[0]


def test_ray_dataset(cluster, pool):
    P, Z = pool["P"], pool["Z"].astype(np.float64)   # float64 embeddings: the core-set pass without a screen
    ds = ray.data.from_items([{"probs": P[i], "embeddings": Z[i]} for i in range(len(P))], override_num_blocks=3)
    got = ab.select("margin", 7, probs=ds)
    np.testing.assert_array_equal(got, ab.select("margin", 7, probs=P))
    with ab.Shards.from_dataset(ds, owners=2, cpus_per_owner=0.5) as sh:
        np.testing.assert_array_equal(sh.select("coreset", 9, labeled_embeddings=pool["L"]),
                                      ab.select("coreset", 9, embeddings=Z, labeled_embeddings=pool["L"]))


def _message(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


def test_errors_before_any_work(shards, pool, cluster, tmp_path):
    N = sum(SIZES)
    with pytest.raises(ValueError, match=re.escape(f"n={N + 1} is larger than the number of candidates ({N})")):
        shards.select("margin", N + 1)
    with pytest.raises(ValueError, match=re.escape(f"n={N} is larger than the number of candidates that are not "
                                                   f"excluded ({N - 1})")):
        shards.select("margin", N, exclude=[4])
    with pytest.raises(ValueError, match="does not run on a sharded pool; the sharded strategies are "
                                         + ", ".join(SHARDED_STRATEGIES)):
        shards.select("batchbald", 3)
    with pytest.raises(ValueError, match="sampling='power'"):
        shards.select("margin", 3, sampling="power")
    bad_lab = np.zeros((4, D + 1), np.float32)
    assert _message(lambda: shards.select("coreset", 3, labeled_embeddings=bad_lab)) == \
        _message(lambda: ab.select("coreset", 3, embeddings=pool["Z"], labeled_embeddings=bad_lab))
    with pytest.raises(ValueError, match="embeddings lists 4 shards but probs lists 5"):
        ab.Shards(probs=pool["files"]["probs"], embeddings=pool["files"]["embeddings"][:4])
    with pytest.raises(MissingEvidenceError, match=r"needs embeddings; give embeddings=\[\.\.\.\]"):
        ab.Shards(probs=pool["files"]["probs"]).select("badge", 3)   # refused before any owner starts
    with pytest.raises(ValueError, match="probs given as shards but embeddings as arrays"):
        ab.select("badge", 3, probs=pool["files"]["probs"], embeddings=pool["Z"])


def test_bad_values_give_the_single_machine_errors(cluster, pool, tmp_path):
    P, Z, M = pool["P"].copy(), pool["Z"].copy(), pool["M"].copy()
    P[170] *= 2.0                 # a row summing to 2, in the fourth shard
    Z[44] = np.nan                # in the fourth shard
    M[2, 180, 0] = -0.1
    files = {"probs": _write(tmp_path, "p", P, SIZES), "embeddings": _write(tmp_path, "z", Z, SIZES),
             "mc_probs": _write(tmp_path, "m", M, SIZES, axis=1)}
    with ab.Shards(**files, owners=1) as sh:
        for name, field in (("margin", {"probs": P}), ("coreset", {"embeddings": Z}), ("bald", {"mc_probs": M})):
            want = _message(lambda name=name, field=field: ab.select(name, 3, seed=0, **field))
            assert _message(lambda name=name: sh.select(name, 3, seed=0)) == want
    assert "row 170 sums to 2" in _message(lambda: ab.select("margin", 3, probs=P))


def test_shards_that_disagree(cluster, pool, tmp_path):
    files = {"probs": _write(tmp_path, "p", pool["P"], SIZES),
             "embeddings": _write(tmp_path, "z", pool["Z"], [40, 0, 2, 149, 60])}
    with ab.Shards(**files, owners=1) as sh:
        msg = _message(lambda: sh.select("badge", 3))
    assert msg.startswith("embeddings shard 2 (") and msg.endswith("has 2 candidates but 1 are expected (the "
                                                                   "candidates of probs shard 2)")
    np.save(files["probs"][3], torch.rand(150, K + 1).numpy())
    with ab.Shards(probs=files["probs"], owners=1) as sh:
        assert "shards may differ only in their number of candidates" in _message(lambda: sh.select("margin", 3))


def test_a_shard_that_cannot_be_opened(cluster, pool, tmp_path):
    paths = [pool["files"]["probs"][0], str(tmp_path / "missing.npy")]
    with pytest.raises(OSError, match=r"probs shard 1 could not be opened by its owner on node .*missing\.npy"):
        ab.select("margin", 2, probs=paths)


def test_without_ray_the_error_names_the_extra(pool, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)   # as if ray were not installed
    with pytest.raises(ImportError, match=re.escape("pip install 'activebatch[experiments]'")):
        ab.Shards(probs=pool["files"]["probs"]).select("margin", 2)
