"""BADGE selection: factorised gradient embeddings vs materialised K*d vectors.

Each case runs in a fresh child process (one torch thread) so that peak memory (max RSS) is
measured per implementation. Both start from the largest-norm point; our kernel then draws by
rejection sampling, which follows the same k-means++ law (checked by chi-square tests in
tests/test_badge.py) but consumes the random stream differently, so the table compares the first
centre, the time ratio and the memory of each.

    python benchmarks/badge_factorised.py            # default cases
    python benchmarks/badge_factorised.py --quick    # small cases only
"""
from __future__ import annotations

import argparse
import resource
import time

from _harness import in_child, write_json
from selection import _badge_data as _data  # the same synthetic pools as benchmarks/selection.py


def _materialised(p, z, b, rng):
    """Plain k-means++ on explicit gradient embeddings (the authors' first implementation)."""
    import numpy as np

    u = p.astype(np.float64)
    u[np.arange(len(p)), p.argmax(1)] -= 1.0
    g = (u[:, :, None] * z[:, None, :].astype(np.float64)).reshape(len(p), -1).astype(np.float32)
    sq = (g.astype(np.float64) ** 2).sum(1)
    first = int(np.argmax(sq))
    order = [first]
    mind = np.full(len(p), np.inf)
    last = first
    while len(order) < b:
        d2 = np.maximum(sq + sq[last] - 2.0 * (g @ g[last]).astype(np.float64), 0.0)
        mind = np.minimum(mind, d2)
        mind[order] = 0.0
        cs = np.cumsum(mind)
        nxt = int(np.searchsorted(cs, rng.random() * cs[-1], side="right"))
        order.append(nxt)
        last = nxt
    return np.asarray(order)


def _child(impl: str, n: int, k: int, d: int, b: int, out) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import activebatch as ab

    p, z = _data(n, k, d)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if impl == "factorised":
        sel = ab.select("badge", b, probs=p, embeddings=z, seed=0)
    else:
        sel = _materialised(p, z, b, np.random.default_rng(0))
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put({"seconds": secs, "extra_mib": max(peak - base, 0) / 1024, "selection": sel.tolist()})


def _measure(impl, n, k, d, b):
    return in_child(_child, impl, n, k, d, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    cases = [(2000, 10, 256, 50), (10000, 10, 512, 100)]
    if not args.quick:
        cases += [(10000, 100, 512, 100), (20000, 100, 512, 200)]
    rows = []
    print("| N | K | d | B | factorised s | materialised s | speed-up | factorised extra MiB "
          "| materialised extra MiB | same first centre |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, k, d, b in cases:
        f = _measure("factorised", n, k, d, b)
        m = _measure("materialised", n, k, d, b)
        same = f["selection"][0] == m["selection"][0]  # the later draws use the RNG differently
        row = dict(N=n, K=k, d=d, B=b, factorised_s=f["seconds"], materialised_s=m["seconds"],
                   speedup=m["seconds"] / f["seconds"], factorised_mib=f["extra_mib"],
                   materialised_mib=m["extra_mib"], same_first_centre=same)
        rows.append(row)
        print(f"| {n} | {k} | {d} | {b} | {f['seconds']:.3f} | {m['seconds']:.3f} | {row['speedup']:.1f}x | "
              f"{f['extra_mib']:.0f} | {m['extra_mib']:.0f} | {same} |", flush=True)
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
