"""Each strategy against random, seed by seed, from a results store: the tables of docs/training_strategies.md.

    python benchmarks/vs_random.py docs/results/training_strategies_imbalance/results.sqlite

For every (data set, model, batch size) setting and strategy: test accuracy at the last label count
(mean ± standard error over seeds), its paired difference from random over the seeds both ran, the
same for the mean accuracy over the whole curve, and at each label count the paired difference
with z = sqrt(n) * mean / std (the BADGE paper's rule: z > 1.96 is a win) and the number of seeds
where the strategy was ahead.
"""
from __future__ import annotations

import argparse
import sqlite3
import sys

import numpy as np
import pandas as pd


def paired(a: pd.Series, b: pd.Series) -> tuple[float, float, float, int, int]:
    """(mean, standard error, z, seeds ahead, seeds) of a - b over the seeds both hold."""
    d = (a - b).dropna()
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    se = sd / np.sqrt(n) if n > 1 else float("nan")
    z = float(np.sqrt(n) * d.mean() / sd) if n > 1 and sd > 0 else float("nan")
    return float(d.mean()), se, z, int((d > 0).sum()), n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", help="a results.sqlite written by activebatch bench")
    ap.add_argument("--metric", default="test_accuracy", help="column of the rounds table (default test_accuracy)")
    args = ap.parse_args(argv)
    with sqlite3.connect(args.store) as con:
        df = pd.read_sql("select * from rounds", con)
    m = args.metric
    for key, g in df.groupby(["dataset", "model", "batch_size"]):
        print(f"## {' / '.join(map(str, key))}\n")
        if "random" not in set(g.strategy):
            print("(no random runs in this setting)\n")
            continue
        last = g[g.n_labeled == g.n_labeled.max()].set_index(["strategy", "seed"])[m]
        curve = g.groupby(["strategy", "seed"])[m].mean()
        print(f"| strategy | seeds | {m} at {g.n_labeled.max()} labels | vs random | mean over the curve | vs random |")
        print("|---|---|---|---|---|---|")
        for s in sorted(g.strategy.unique(), key=lambda s: -last[s].mean()):
            x = last[s]
            se = x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
            row = f"| {s} | {len(x)} | {x.mean():.3f} ± {se:.3f} | "
            if s == "random":
                row += f" | {curve[s].mean():.3f} | |"
            else:
                d, dse, *_ = paired(x, last["random"])
                c, cse, *_ = paired(curve[s], curve["random"])
                row += f"{d:+.3f} ± {dse:.3f} | {curve[s].mean():.3f} | {c:+.3f} ± {cse:.3f} |"
            print(row)
        print("\npaired difference from random at each label count (z, seeds ahead):\n")
        by_n = g.set_index(["strategy", "n_labeled", "seed"])[m]
        for s in sorted(set(g.strategy) - {"random"}):
            cells = []
            for n in sorted(g.n_labeled.unique())[1:]:
                d, _, z, ahead, k = paired(by_n[s][n], by_n["random"][n])
                cells.append(f"{n}: {d:+.3f} (z {z:.1f}, {ahead}/{k})")
            print(f"- {s}: " + ", ".join(cells))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
