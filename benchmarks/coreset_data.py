"""Core-set speed by the shape of the data: our kernel against the plain reference, side by side.

    python benchmarks/coreset_data.py                  # N = L = 10,000, d = 512, B = 1,000
    python benchmarks/coreset_data.py --n 100000 --labeled 10000 --plain-seconds 30
    python benchmarks/coreset_data.py --json out.json

The exact lazy traversal's work depends on the data: how many points can reach the top of the
order, and how much a pick lowers its neighbours. ``benchmarks/selection.py`` measures isotropic
Gaussian embeddings; this script adds shapes closer to real embeddings, each with the same N, L,
d and B, and each run in a fresh process with 2 threads:

* ``gaussian``: standard normal pool and labeled set;
* ``relu``: the same through max(., 0) (non-negative, like post-activation features);
* ``clusters``: 20 Gaussian clusters of unequal sizes, the labeled set drawn like the pool;
* ``clusters_skewed``: the same clusters, but the labeled set concentrated in a few of them
  (picks then cover whole clusters, lowering their neighbours);
* ``low_rank``: a 32-dimensional signal with decaying scales plus small isotropic noise.

The plain reference is the authors' ``furthest_first`` from ``benchmarks/selection.py`` on float64
copies; runs longer than ``--plain-seconds`` are extrapolated from the steps completed. Every row
also says whether the picks were identical.
"""
from __future__ import annotations

import argparse
import sys
import time

from _harness import in_child, set_threads, write_json
from selection import plain_coreset_seconds

SHAPES = ("gaussian", "relu", "clusters", "clusters_skewed", "low_rank")


def make_data(shape: str, n: int, labeled: int, d: int, seed: int = 1):
    """(pool, labeled) float32 arrays of the named shape."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if shape in ("gaussian", "relu"):
        x, lab = rng.normal(size=(n, d)), rng.normal(size=(labeled, d))
        if shape == "relu":
            x, lab = np.maximum(x, 0), np.maximum(lab, 0)
    elif shape in ("clusters", "clusters_skewed"):
        means = rng.normal(size=(20, d))
        weights = rng.dirichlet(np.ones(20))
        lab_weights = rng.dirichlet(0.2 * np.ones(20)) if shape == "clusters_skewed" else weights
        x = means[rng.choice(20, n, p=weights)] + 0.5 * rng.normal(size=(n, d))
        lab = means[rng.choice(20, labeled, p=lab_weights)] + 0.5 * rng.normal(size=(labeled, d))
    elif shape == "low_rank":
        basis = rng.normal(size=(32, d)) * np.exp(-np.arange(32) / 8)[:, None]
        x = rng.normal(size=(n, 32)) @ basis + 0.1 * rng.normal(size=(n, d))
        lab = rng.normal(size=(labeled, 32)) @ basis + 0.1 * rng.normal(size=(labeled, d))
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return x.astype(np.float32), lab.astype(np.float32)


def _child(shape: str, impl: str, case: dict, threads: int, seconds_cap: float, out) -> None:
    set_threads(threads)
    import numpy as np
    import torch

    from activebatch.kernels import kcenter_greedy
    from selection import plain_coreset

    x, lab = make_data(shape, case["N"], case["L"], case["d"])
    if impl == "ours":
        t0 = time.perf_counter()
        sel = kcenter_greedy(torch.from_numpy(x), case["B"], centers=torch.from_numpy(lab))
        out.put(dict(seconds=time.perf_counter() - t0, steps=case["B"], init_seconds=0.0, picks=sel.tolist()))
        return
    sel, secs, steps, init = plain_coreset(x.astype(np.float64), lab.astype(np.float64), case["B"], seconds_cap)
    out.put(dict(seconds=secs, steps=steps, init_seconds=init, picks=[int(i) for i in sel]))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="pool size N")
    parser.add_argument("--labeled", type=int, default=10_000, help="labeled set size L")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated data shapes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plain-seconds", type=float, default=60.0,
                        help="stop a plain run after this long and extrapolate (default 60)")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args(argv)

    case = dict(N=args.n, L=args.labeled, d=args.dim, B=args.batch)
    print(f"core-set, N={args.n:,} L={args.labeled:,} d={args.dim} B={args.batch}, {args.threads} threads")
    print("| data | ours s | plain s | speed-up | identical picks |\n|---|---|---|---|---|", flush=True)
    rows = []
    for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        ours = in_child(_child, shape, "ours", case, args.threads, args.plain_seconds)
        plain = in_child(_child, shape, "plain", case, args.threads, args.plain_seconds)
        plain_s = plain_coreset_seconds(plain, args.batch)
        same = ours["picks"][:plain["steps"]] == plain["picks"]
        row = dict(data=shape, ours_s=ours["seconds"], plain_s=plain_s, speedup=plain_s / ours["seconds"],
                   identical=same, extrapolated=plain["steps"] < args.batch)
        rows.append(row)
        note = " (plain extrapolated)" if row["extrapolated"] else ""
        print(f"| {shape} | {row['ours_s']:.2f} | {plain_s:.1f}{note} | {row['speedup']:.0f}x | {same} |", flush=True)
    write_json(args.json, dict(case=case, threads=args.threads, rows=rows))
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
