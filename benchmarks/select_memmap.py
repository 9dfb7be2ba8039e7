"""ab.select on memory-mapped float16 files vs the same arrays in memory: time and peak memory.

Writes a synthetic pool (probabilities and embeddings, float16 ``.npy`` files) in row chunks, then
in this one process (one torch thread) runs the selection twice, resetting the peak-RSS mark
(``/proc/self/clear_refs``) before each:

* ``memmap``: ``probs`` and ``embeddings`` are ``np.load(..., mmap_mode="r")`` maps; validation
  and the BADGE kernel read them in row blocks;
* ``in_memory``: the same float16 arrays loaded into memory first, which ``ab.select`` converts
  to float32 tensors (the path every strategy had before maps were streamed).

Peak memory is reported as *anonymous* growth: the rise of the peak RSS (``VmHWM``) minus the
rise of the file-backed resident pages (``RssFile``), because pages of a map that has been read
count towards RSS although the kernel may drop them at any time. Linux only.

    python benchmarks/select_memmap.py                      # BADGE, 1,000,000 x 64, batch 100
    python benchmarks/select_memmap.py --strategy entropy --rows 200000 --classes 1000
    python benchmarks/select_memmap.py --rows 200000 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _harness import reset_peak, status_kib


def write_pool(directory: Path, rows: int, dim: int, classes: int, seed: int = 0,
               chunk: int = 65536) -> tuple[Path, Path]:
    """Write float16 ``p.npy`` (softmax rows) and ``z.npy`` (normal embeddings) chunk by chunk."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p_path, z_path = directory / "p.npy", directory / "z.npy"
    p = np.lib.format.open_memmap(p_path, mode="w+", dtype=np.float16, shape=(rows, classes))
    z = np.lib.format.open_memmap(z_path, mode="w+", dtype=np.float16, shape=(rows, dim))
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        logits = rng.normal(scale=2.0, size=(stop - start, classes))
        e = np.exp(logits - logits.max(1, keepdims=True))
        p[start:stop] = e / e.sum(1, keepdims=True)
        z[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32)
    p.flush()
    z.flush()
    del p, z
    return p_path, z_path


def _measure(run) -> dict:
    can_reset = reset_peak()
    rss0, file0 = status_kib("VmRSS"), status_kib("RssFile")
    t0 = time.perf_counter()
    picks = run()
    seconds = time.perf_counter() - t0
    hwm, file1 = status_kib("VmHWM"), status_kib("RssFile")
    measurable = can_reset and None not in (rss0, file0, hwm, file1)
    anon = (hwm - rss0 - max(file1 - file0, 0)) / 1024 if measurable else None
    return {"seconds": seconds, "anon_peak_mib": anon, "measurable": measurable,
            "picks": [int(i) for i in picks]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--strategy", default="badge", help="any strategy that needs only probs and embeddings")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to write the .npy files (default: a temporary folder)")
    parser.add_argument("--skip-in-memory", action="store_true", help="only the memory-mapped run")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import activebatch as ab

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.dir) if args.dir else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        p_path, z_path = write_pool(directory, args.rows, args.dim, args.classes)
        pm = np.load(p_path, mmap_mode="r")
        zm = np.load(z_path, mmap_mode="r")
        name = args.strategy
        result = {"strategy": name, "rows": args.rows, "dim": args.dim, "classes": args.classes, "batch": args.batch,
                  "float16_mib": (pm.nbytes + zm.nbytes) / 2**20,
                  "float32_mib": 2 * (pm.nbytes + zm.nbytes) / 2**20}
        # Warm-up on a small in-memory pool: one-off allocations of the libraries (BLAS buffers,
        # torch's lazy initialisation) are not the selection's memory.
        ab.select(name, 2, probs=np.array(pm[:1000]), embeddings=np.array(zm[:1000]), seed=0)
        result["memmap"] = _measure(lambda pm=pm, zm=zm: ab.select(name, args.batch, probs=pm, embeddings=zm, seed=0))
        if not args.skip_in_memory:
            P, Z = np.array(pm), np.array(zm)
            result["in_memory"] = _measure(lambda: ab.select(name, args.batch, probs=P, embeddings=Z, seed=0))
            result["same_picks"] = result["memmap"]["picks"] == result["in_memory"]["picks"]
            del P, Z
        del pm, zm
    for key in ("memmap", "in_memory"):
        if key in result:
            r = result[key]
            peak = "n/a" if r["anon_peak_mib"] is None else f"{r['anon_peak_mib']:.1f} MiB"
            print(f"{key:>9}: {r['seconds']:.2f} s, anonymous peak growth {peak}", file=sys.stderr)
    print(f"arrays: {result['float16_mib']:.1f} MiB as float16, {result['float32_mib']:.1f} MiB as float32"
          + (f"; same picks: {result['same_picks']}" if "same_picks" in result else ""), file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
