"""Core-set speed by the shape of the data: our kernel against the plain reference, side by side.

    python benchmarks/coreset_data.py                  # both default cases (below)
    python benchmarks/coreset_data.py --n 100000 --labeled 10000 --batch 1000 --plain-seconds 30
    python benchmarks/coreset_data.py --threads 1 --json benchmarks/coreset_data.json

The exact lazy traversal's work depends on the data: how many points can reach the top of the
order, how much a pick lowers its neighbours, and how well spatial groups of the labeled set
bound the distances. ``benchmarks/selection.py`` measures isotropic Gaussian embeddings; this
script adds shapes closer to real embeddings, by default in two cases (N = L = 10,000, d = 512,
B = 1,000; and N = 20,000, L = 2,000, d = 512, B = 200), or in the one case that ``--n``,
``--labeled``, ``--dim`` and ``--batch`` describe (missing ones from the first default case).
Each measurement runs in a fresh process with ``--threads`` threads (default 2):

* ``gaussian``: standard normal pool and labeled set;
* ``relu``: the same through max(., 0) (non-negative, like post-activation features);
* ``clusters``: 20 Gaussian clusters of unequal sizes, the labeled set drawn like the pool;
* ``clusters_skewed``: the same clusters, but the labeled set concentrated in a few of them
  (picks then cover whole clusters, lowering their neighbours);
* ``low_rank``: a 32-dimensional signal with decaying scales plus small isotropic noise.

The plain reference is the authors' ``furthest_first`` from ``benchmarks/selection.py`` on float64
copies, run once; runs longer than ``--plain-seconds`` are extrapolated from the steps completed.
Our kernel runs ``--repeats`` times, each in a fresh process, and its median time is reported. Every
row also says whether the picks were identical (in every one of our runs and the plain one).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from _harness import in_child, set_threads, write_json
from selection import plain_coreset_seconds

SHAPES = ("gaussian", "relu", "clusters", "clusters_skewed", "low_rank")
#: The default cases: a labeled set as large as the pool, and a pool ten times the labeled set.
CASES = (dict(N=10_000, L=10_000, d=512, B=1000), dict(N=20_000, L=2_000, d=512, B=200))


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
    parser.add_argument("--n", type=int, default=None, help="pool size N (one case instead of the defaults)")
    parser.add_argument("--labeled", type=int, default=None, help="labeled set size L")
    parser.add_argument("--dim", type=int, default=None, help="embedding dimension d")
    parser.add_argument("--batch", type=int, default=None, help="picks B")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated data shapes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh-process runs of our kernel per row, the median reported (default 3)")
    parser.add_argument("--plain-seconds", type=float, default=60.0,
                        help="stop a plain run after this long and extrapolate (default 60)")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args(argv)

    given = dict(N=args.n, L=args.labeled, d=args.dim, B=args.batch)
    if all(v is None for v in given.values()):
        cases = [dict(c) for c in CASES]
    else:
        cases = [{k: CASES[0][k] if v is None else v for k, v in given.items()}]
    rows = []
    for case in cases:
        print(f"\ncore-set, N={case['N']:,} L={case['L']:,} d={case['d']} B={case['B']}, {args.threads} threads")
        print("| data | ours s | plain s | speed-up | identical picks |\n|---|---|---|---|---|", flush=True)
        for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
            # our runs take a fraction of a second, so one stall of a shared machine would
            # dominate a single one: the median of a few fresh processes
            runs = [in_child(_child, shape, "ours", case, args.threads, args.plain_seconds)
                    for _ in range(max(1, args.repeats))]
            ours = dict(runs[0], seconds=statistics.median(r["seconds"] for r in runs))
            same_runs = all(r["picks"] == runs[0]["picks"] for r in runs)
            plain = in_child(_child, shape, "plain", case, args.threads, args.plain_seconds)
            plain_s = plain_coreset_seconds(plain, case["B"])
            same = same_runs and ours["picks"][:plain["steps"]] == plain["picks"]
            row = dict(case, data=shape, ours_s=ours["seconds"], ours_runs_s=[r["seconds"] for r in runs],
                       plain_s=plain_s, speedup=plain_s / ours["seconds"], identical=same,
                       extrapolated=plain["steps"] < case["B"])
            rows.append(row)
            note = " (plain extrapolated)" if row["extrapolated"] else ""
            print(f"| {shape} | {row['ours_s']:.2f} | {plain_s:.1f}{note} | {row['speedup']:.0f}x | {same} |",
                  flush=True)
    write_json(args.json, dict(cases=cases, threads=args.threads, rows=rows))
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
