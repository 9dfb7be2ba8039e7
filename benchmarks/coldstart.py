"""The cold-start strategies at scale: TypiClust and ProbCover on 100,000 x 512 float32 embeddings.

Each strategy runs once in a fresh child process (``_harness.in_child``) on the same synthetic
pool, with no labeled items (a cold start): unit-length rows (as the authors' self-supervised
features) drawn from 200 overlapping Gaussian modes in a 32-dimensional subspace plus isotropic
noise, so that ProbCover's purity rule finds a radius whose balls hold tens to hundreds of
items, as on real features. Printed per strategy: wall time, the growth of the peak resident
set over the pool already in memory (``VmHWM`` after ``/proc/self/clear_refs``, Linux), and the
selection's notes (clusters; delta and the ball graph's edges).

Neither strategy forms an N x N matrix: k-NN, purity radii and the ball graph are computed in
tiles of at most 8M distances (kernels/neighbors.py). ProbCover's cost is two passes over the
N^2 / 2 pairs (purity radii, then the ball graph); TypiClust's is k-means plus one pass per
visited cluster over its own pairs.

    python benchmarks/coldstart.py                       # 100,000 x 512, n = 100, both strategies
    python benchmarks/coldstart.py --rows 20000 --strategies probcover --json out.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from _harness import in_child, reset_peak, set_threads, status_kib, write_json


def make_pool(rows: int, dim: int, seed: int = 0, modes: int = 200, intrinsic: int = 32, spread: float = 0.3,
              noise: float = 0.3):
    """Unit-length float32 rows from ``modes`` Gaussian modes in an ``intrinsic``-dim subspace plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, intrinsic)))[0].T.astype(np.float32)
    centres = rng.normal(size=(modes, intrinsic)).astype(np.float32)
    mode = rng.integers(0, modes, rows)
    out = np.empty((rows, dim), dtype=np.float32)
    for s in range(0, rows, 8192):
        m = mode[s:s + 8192]
        z = centres[m] + spread * rng.standard_normal((m.size, intrinsic), dtype=np.float32)
        x = z @ basis + noise * np.sqrt(intrinsic / dim) * rng.standard_normal((m.size, dim), dtype=np.float32)
        out[s:s + 8192] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _child(name: str, options: dict, rows: int, dim: int, n: int, threads: int, q) -> None:
    set_threads(threads)
    import numpy as np

    import activebatch as ab

    X = make_pool(rows, dim)
    evidence = ab.Evidence.from_arrays(embeddings=X)
    strategy = ab.strategies.get(name, **options)
    can_reset = reset_peak()
    rss0 = status_kib("VmRSS")
    t0 = time.perf_counter()
    sel = strategy.query(evidence, n, np.random.default_rng(0))
    seconds = time.perf_counter() - t0
    hwm = status_kib("VmHWM")
    q.put({"strategy": name, "options": options, "seconds": seconds,
           "peak_growth_mib": (hwm - rss0) / 1024 if can_reset and None not in (rss0, hwm) else None,
           "pool_mib": X.nbytes / 2**20, "notes": list(sel.notes), "first_scores": sel.scores[:5].tolist(),
           "picks": sel.indices.tolist()})


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--n", type=int, default=100, help="batch size")
    parser.add_argument("--classes", type=int, default=10, help="ProbCover's n_classes (k-means pseudo-labels)")
    parser.add_argument("--strategies", default="typiclust,probcover")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    options = {"typiclust": {}, "probcover": {"n_classes": args.classes}}
    print(f"pool {args.rows:,} x {args.dim} float32 ({args.rows * args.dim * 4 / 2**20:.0f} MiB), n = {args.n}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    results = []
    for name in args.strategies.split(","):
        res = in_child(_child, name, options.get(name, {}), args.rows, args.dim, args.n, args.threads)
        results.append(res)
        peak = "n/a" if res["peak_growth_mib"] is None else f"{res['peak_growth_mib']:,.0f} MiB"
        print(f"{name:10s} {res['seconds']:8.1f} s   peak memory growth {peak} (pool {res['pool_mib']:.0f} MiB)",
              flush=True)
        for note in res["notes"]:
            print(f"           {note}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    write_json(args.json, {"rows": args.rows, "dim": args.dim, "n": args.n, "threads": args.threads,
                           "results": results})
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
