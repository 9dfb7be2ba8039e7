"""ab.select on memory-mapped inputs: block-wise validation, streaming to BADGE, same picks."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch import strategies
from activebatch.kernels import rowblocks
from activebatch.kernels.rowblocks import RowSelection
from activebatch.learning.evidence import Evidence
from conftest import make_evidence

STREAM_BLOCK_ROWS = 4096   # rows per validation block in these tests (BLOCK_VALUES set to match)

ROOT = Path(__file__).resolve().parents[1]
ARRAY_LEVEL = [n for n in strategies.names()
               if not strategies.strategy_class(n).needs & {"learner", "pool"}]


def _save_map(path, arr):
    np.save(path, arr)
    return np.load(path, mmap_mode="r")


@pytest.fixture(scope="module")
def big_pool(tmp_path_factory):
    """200,000 x 64 float16 embeddings and 200,000 x 10 float16 probabilities, as maps and in memory."""
    rng = np.random.default_rng(0)
    n, k, d = 200_000, 10, 64
    logits = rng.normal(scale=2.0, size=(n, k)).astype(np.float32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = (e / e.sum(1, keepdims=True)).astype(np.float16)
    z = rng.standard_normal((n, d), dtype=np.float32).astype(np.float16)
    folder = tmp_path_factory.mktemp("pool")
    return {"p": p, "z": z, "pm": _save_map(folder / "p.npy", p), "zm": _save_map(folder / "z.npy", z)}


def test_badge_on_float16_maps_matches_in_memory_arrays(big_pool):
    pm, zm, p, z = big_pool["pm"], big_pool["zm"], big_pool["p"], big_pool["z"]
    a = ab.select("badge", 40, probs=pm, embeddings=zm, seed=0)
    np.testing.assert_array_equal(a, ab.select("badge", 40, probs=p, embeddings=z, seed=0))
    excluded = np.random.default_rng(1).choice(len(p), size=5000, replace=False)
    b = ab.select("badge", 40, probs=pm, embeddings=zm, seed=0, exclude=excluded, ids=np.arange(len(p)) + 7)
    np.testing.assert_array_equal(b, ab.select("badge", 40, probs=p, embeddings=z, seed=0, exclude=excluded))
    assert not np.isin(b, excluded).any()


def test_badge_kernel_receives_the_maps_unconverted(big_pool, monkeypatch):
    import activebatch.strategies.badge as badge_module

    seen = []
    real = badge_module.badge_kmeanspp

    def spy(probs, z, *args, **kwargs):
        seen.append((probs, z))
        return real(probs, z, *args, **kwargs)

    monkeypatch.setattr(badge_module, "badge_kmeanspp", spy)
    pm, zm = big_pool["pm"], big_pool["zm"]
    ab.select("badge", 3, probs=pm, embeddings=zm, seed=0)
    assert seen[-1][0] is pm and seen[-1][1] is zm
    ab.select("badge", 3, probs=pm, embeddings=zm, seed=0, exclude=[0, 5])
    probs, z = seen[-1]
    assert isinstance(probs, RowSelection) and isinstance(z, RowSelection)
    assert probs.base is pm and z.shape == (len(pm) - 2, 64)
    np.testing.assert_array_equal(z[0:3], np.asarray(zm[[1, 2, 3]]))


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy", "egl"])
def test_row_scores_stream_maps_block_by_block_with_the_same_picks(big_pool, name, monkeypatch):
    # scores are computed per block (here 200,000 rows in blocks of 1,563 or fewer), and the
    # maps are never converted whole (the evidence never holds them as tensors)
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 100_000)
    pm, zm, p, z = big_pool["pm"], big_pool["zm"], big_pool["p"], big_pool["z"]
    kept = []
    real = Evidence.rowwise

    def spy(self, fn, *names):
        out = real(self, fn, *names)
        kept.append({k: k in self._values for k in names})
        return out

    monkeypatch.setattr(Evidence, "rowwise", spy)
    a = ab.select(name, 50, probs=pm, embeddings=zm, seed=0)
    np.testing.assert_array_equal(a, ab.select(name, 50, probs=p, embeddings=z, seed=0))
    assert kept[0] and not any(kept[0].values())  # read in blocks, never held whole
    excluded = np.arange(0, len(p), 3)
    b = ab.select(name, 50, probs=pm, embeddings=zm, seed=0, exclude=excluded)
    np.testing.assert_array_equal(b, ab.select(name, 50, probs=p, embeddings=z, seed=0, exclude=excluded))


def test_rowwise_equals_the_whole_computation_across_block_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 3000)  # blocks of 1,000 rows
    rng = np.random.default_rng(4)
    n = 5 * 1000 + 17
    z = rng.normal(size=(n, 3)).astype(np.float32)
    zm = _save_map(tmp_path / "z.npy", z)
    p = rng.random(size=(n, 2))  # an in-memory field read alongside the map, block by block
    ev = Evidence(n, embeddings=zm, probs=torch.tensor(p))
    got = ev.rowwise(lambda a, b: a.sum(1).double() * b[:, 0], "embeddings", "probs")
    np.testing.assert_allclose(got.numpy(), z.sum(1).astype(np.float64) * p[:, 0], rtol=1e-6)
    assert "embeddings" not in ev._values


def test_nan_in_a_late_block_names_argument_count_and_first_row(tmp_path, monkeypatch):
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", STREAM_BLOCK_ROWS * 8)
    n = 3 * STREAM_BLOCK_ROWS + 100
    rng = np.random.default_rng(2)
    z = rng.standard_normal((n, 8), dtype=np.float32).astype(np.float16)
    late = 2 * STREAM_BLOCK_ROWS + 17
    z[late, 3] = np.nan
    z[n - 1, 0] = np.inf
    zm = _save_map(tmp_path / "z.npy", z)
    p = np.full((n, 2), 0.5, dtype=np.float16)
    msg = f"embeddings contains NaN or infinite values (in 2 rows; the first is row {late})"
    with pytest.raises(ValueError, match=re.escape(msg)):
        ab.select("badge", 5, probs=_save_map(tmp_path / "p.npy", p), embeddings=zm, seed=0)
    with pytest.raises(ValueError, match=re.escape(msg)):  # the in-memory message is the same
        ab.select("badge", 5, probs=p, embeddings=z, seed=0)


@pytest.mark.parametrize("problem", ["sum", "negative", "nan", "columns", "rows"])
def test_map_validation_messages_equal_in_memory_ones(tmp_path, problem, monkeypatch):
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", STREAM_BLOCK_ROWS * 4)
    n = 2 * STREAM_BLOCK_ROWS + 50
    p = np.full((n, 4), 0.25, dtype=np.float32)
    z = np.zeros((n, 3), dtype=np.float16)
    late = STREAM_BLOCK_ROWS + 1000
    if problem == "sum":
        p[17] = [0.25, 0.25, 0.25, 0.26]  # within tolerance of nothing: 1.01
        p[late] = [1.0, 0.5, 0.0, 0.0]    # the worst row, in the second block
    elif problem == "negative":
        p[late] = [1.5, -0.5, 0.0, 0.0]
    elif problem == "nan":
        p[late, 0] = np.nan
    elif problem == "columns":
        p = np.ones((n, 1), dtype=np.float32)
    else:
        z = z[:-1]
    with pytest.raises((ValueError, TypeError)) as in_memory:
        ab.select("badge", 3, probs=p, embeddings=z, seed=0)
    with pytest.raises(type(in_memory.value)) as mapped:
        ab.select("badge", 3, probs=_save_map(tmp_path / "p.npy", p), embeddings=_save_map(tmp_path / "z.npy", z),
                  seed=0)
    assert str(mapped.value) == str(in_memory.value)
    if problem == "sum":
        assert f"row {late} sums to 1.5" in str(mapped.value)


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_every_array_strategy_accepts_maps(name, tmp_path):
    arrays = make_evidence()
    maps = {k: _save_map(tmp_path / f"{k}.npy", v) for k, v in arrays.items() if k != "mc_probs"}
    maps["mc_probs"] = arrays["mc_probs"]  # (S, N, K) is always converted
    np.testing.assert_array_equal(ab.select(name, 9, seed=2, **maps), ab.select(name, 9, seed=2, **arrays))
    excluded = np.random.default_rng(0).choice(60, size=25, replace=False)
    ids = np.arange(60) * 10
    a = ab.select(name, 12, seed=3, exclude=excluded, ids=ids, **maps)
    np.testing.assert_array_equal(a, ab.select(name, 12, seed=3, exclude=excluded, ids=ids, **arrays))
    assert not np.isin(a, excluded).any()
    for key in ("probs", "embeddings", "labeled_embeddings"):  # still read-only maps, left intact
        assert isinstance(maps[key], np.memmap) and not maps[key].flags.writeable
        np.testing.assert_array_equal(maps[key], arrays[key])


def test_evidence_keeps_maps_and_converts_on_first_read(tmp_path):
    arrays = make_evidence(n=20)
    pm = _save_map(tmp_path / "p.npy", arrays["probs"].astype(np.float16))
    zm = _save_map(tmp_path / "z.npy", arrays["embeddings"].astype(np.float16))
    lm = _save_map(tmp_path / "l.npy", arrays["labeled_embeddings"].astype(np.float32))
    ev = Evidence.from_arrays(probs=pm, embeddings=zm, labeled_embeddings=lm)
    assert ev.n_candidates == 20 and ev.stream("probs") is pm and ev.stream("labeled_embeddings") is lm
    sub = ev.subset([3, 1, 7])
    assert isinstance(sub.stream("embeddings"), RowSelection) and sub.stream("labeled_embeddings") is lm
    np.testing.assert_array_equal(sub.embeddings.numpy(), np.asarray(zm[[3, 1, 7]], dtype=np.float32))
    assert sub.embeddings.dtype == torch.float32 and sub.embeddings.numpy().flags.writeable
    twice = sub.subset([2, 0])  # a selection of a selection reads the map directly
    assert twice.stream("probs").base is pm
    np.testing.assert_array_equal(twice.probs.numpy(), np.asarray(pm[[7, 3]], dtype=np.float32))
    t = ev.embeddings  # converted once read; from then on stream() gives the tensor
    assert isinstance(t, torch.Tensor) and ev.stream("embeddings") is t
    assert ev.labeled_embeddings.dtype == torch.float32
    with pytest.raises(ValueError, match=r"labeled_embeddings has 8 columns but 4 are expected"):
        Evidence.from_arrays(embeddings=zm[:, :4], labeled_embeddings=lm)


def test_row_selection_rejects_non_vector_rows():
    with pytest.raises(ValueError, match="1-D"):
        RowSelection(np.zeros((4, 2)), np.zeros((2, 2), dtype=int))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset")
def test_maps_are_not_read_whole_peak_memory(tmp_path):
    """Peak anonymous memory of ab.select('badge') on maps stays well below one float32 copy.

    benchmarks/select_memmap.py runs in a fresh process: the in-memory path (float32 tensors,
    as every strategy converted maps before) serves as the control that the measurement works.
    """
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "select_memmap.py"), "--rows", "500000",
                           "--batch", "20", "--dir", str(tmp_path), "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["same_picks"]
    if not (r["memmap"]["measurable"] and r["in_memory"]["measurable"]):
        pytest.skip("peak RSS cannot be reset or read here")
    f32, mapped, in_memory = r["float32_mib"], r["memmap"]["anon_peak_mib"], r["in_memory"]["anon_peak_mib"]
    if in_memory < 0.9 * f32:
        pytest.skip(f"the measurement misses even the in-memory float32 copy ({in_memory:.0f} of {f32:.0f} MiB)")
    # About 0.3 x here (block buffers and O(N) kernel vectors); reading the maps whole cost 2.6 x.
    assert mapped < 0.75 * f32, (mapped, f32)
    assert mapped < 0.5 * in_memory, (mapped, in_memory)
