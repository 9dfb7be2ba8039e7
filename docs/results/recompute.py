"""Recompute the pairwise penalty matrices of a results store from its ``rounds`` table alone.

A reader's check on the published numbers: this script does not import activebatch (nor pandas);
it reads the SQLite store with the standard library and applies the protocol of Ash et al.
(ICLR 2020, section 4) as docs/results.md states it:

* RANDOM's curve is its mean test accuracy over seeds at each label count; n0 is the first label
  count where it reaches 99% of its accuracy at the largest label count; the budgets are
  M + 2^(i-1) B for i = 1 .. floor(log2((n0 - M) / B));
* at each budget, for strategies i and j over their paired seeds, d = error_j - error_i and
  z = sqrt(n) mean(d) / std(d); i beats j when z > 1.96 (the paper's text) or when z exceeds
  Student's t quantile 0.975 with n - 1 degrees of freedom (the authors' t-test; 2.776 for n = 5);
  a win adds 1 / (number of budgets of the setting) to P[i, j];
* every paired difference equal: a non-zero mean wins in its direction, a zero mean is a tie.

Usage::

    python docs/results/recompute.py docs/results/reproduction.sqlite [--rule paper|authors]
    python docs/results/recompute.py docs/results/reproduction.sqlite --at random-rbf 1000 1100
    python docs/results/recompute.py docs/results/reproduction_bayes/results.sqlite --strategies random bald badge

The first prints the matrix (rows beat columns) and its column means, the numbers of the report's
"Pairwise penalty matrix" section; the third, the same for the strategies named only. The second
prints, for one setting (data set, batch size) and label count, each strategy's mean test
accuracy, its mean error divided by RANDOM's (the normalised error of the report's Figure 5
check, at any label count rather than only at the budgets), and the mean training accuracy and
epochs of the fits at that label count.
"""
from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
from collections import defaultdict

from scipy.stats import t as student_t

ZERO = 1e-12


def read_rounds(path: str) -> list[dict]:
    """Every round of every run: dataset, model, batch_size, strategy, seed, round, n_labeled, accuracy."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT dataset, model, batch_size, strategy, seed, round, n_labeled, test_accuracy, "
                           "train_accuracy, train_epochs FROM rounds").fetchall()
    keys = ("dataset", "model", "batch_size", "strategy", "seed", "round", "n_labeled", "accuracy",
            "train_accuracy", "train_epochs")
    return [dict(zip(keys, r)) for r in rows]


def budgets(rows: list[dict], baseline: str = "random") -> list[int]:
    """The budgets of one setting's rows."""
    first = [r["n_labeled"] for r in rows if r["round"] == 0]
    M = min(first) if first else min(r["n_labeled"] for r in rows)
    B = rows[0]["batch_size"]
    by_n = defaultdict(list)
    for r in rows:
        if r["strategy"] == baseline:
            by_n[r["n_labeled"]].append(r["accuracy"])
    if not by_n:
        return []
    curve = {n: statistics.fmean(a) for n, a in by_n.items()}
    final = curve[max(curve)]
    n0 = min(n for n, a in curve.items() if a >= 0.99 * final)
    ratio = (n0 - M) / B
    imax = math.floor(math.log2(ratio)) if ratio > 0 else 0
    return [M + 2 ** (i - 1) * B for i in range(1, imax + 1)]


def beats(d: list[float], rule: str) -> bool:
    """Whether the strategy with the lower errors wins on the paired differences d = e_j - e_i."""
    mean = statistics.fmean(d)
    std = statistics.stdev(d)
    if std <= ZERO:
        z = 0.0 if abs(mean) <= ZERO else math.copysign(math.inf, mean)
    else:
        z = math.sqrt(len(d)) * mean / std
    critical = 1.96 if rule == "paper" else float(student_t.ppf(0.975, len(d) - 1))
    return z > critical


def penalty(rows: list[dict], rule: str = "paper", baseline: str = "random") -> dict:
    """P[i][j] summed over settings and budgets, for every pair of strategies in ``rows``."""
    names = sorted({r["strategy"] for r in rows})
    P = {i: {j: 0.0 for j in names} for i in names}
    settings = defaultdict(list)
    for r in rows:
        settings[(r["dataset"], r["batch_size"], r["model"])].append(r)
    for setting_rows in settings.values():
        Ls = budgets(setting_rows, baseline)
        for L in Ls:
            acc = defaultdict(list)  # (strategy, seed) -> accuracies at L
            for r in setting_rows:
                if r["n_labeled"] == L:
                    acc[(r["strategy"], r["seed"])].append(r["accuracy"])
            err = {k: 1.0 - statistics.fmean(v) for k, v in acc.items()}
            for i in names:
                for j in names:
                    seeds = sorted({s for (st, s) in err if st == i} & {s for (st, s) in err if st == j})
                    if i == j or len(seeds) < 2:
                        continue
                    if beats([err[(j, s)] - err[(i, s)] for s in seeds], rule):
                        P[i][j] += 1.0 / len(Ls)
    return P


def column_means(P: dict) -> dict:
    return {j: statistics.fmean(P[i][j] for i in P) for j in P}


def at_labels(rows: list[dict], dataset: str, batch_size: int, n_labeled: int,
              baseline: str = "random") -> dict[str, dict[str, float]]:
    """Per strategy at one label count of one setting: mean accuracy, normalised error, training."""
    here = [r for r in rows if r["dataset"] == dataset and r["batch_size"] == batch_size
            and r["n_labeled"] == n_labeled]
    out = {}
    for s in sorted({r["strategy"] for r in here}):
        g = [r for r in here if r["strategy"] == s]
        out[s] = {"accuracy": statistics.fmean(r["accuracy"] for r in g),
                  "train_accuracy": statistics.fmean(r["train_accuracy"] for r in g),
                  "train_epochs": statistics.fmean(r["train_epochs"] for r in g), "seeds": len(g)}
    if baseline in out:
        base_error = 1.0 - out[baseline]["accuracy"]
        for v in out.values():
            v["normalised_error"] = (1.0 - v["accuracy"]) / base_error if base_error > 0 else math.nan
    return out


def _rows(args: argparse.Namespace) -> list[dict]:
    rows = read_rounds(args.store)
    if args.strategies:
        missing = sorted(set(args.strategies) - {r["strategy"] for r in rows})
        if missing:
            raise SystemExit(f"no runs of {', '.join(missing)} in {args.store}")
        rows = [r for r in rows if r["strategy"] in args.strategies]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="a results store (results.sqlite)")
    parser.add_argument("--rule", choices=["paper", "authors"], default="paper")
    parser.add_argument("--at", nargs=3, metavar=("DATASET", "BATCH_SIZE", "LABELS"),
                        help="print one label count of one setting instead of the matrix")
    parser.add_argument("--strategies", nargs="+", metavar="NAME",
                        help="only these strategies (e.g. those a grid in progress has completed)")
    args = parser.parse_args()
    if args.at:
        table = at_labels(_rows(args), args.at[0], int(args.at[1]), int(args.at[2]))
        print("strategy".ljust(18) + "seeds  accuracy  normalised error  train accuracy  epochs")
        for s, v in table.items():
            print(f"{s:<18}{v['seeds']:>5}  {v['accuracy']:8.4f}  {v.get('normalised_error', math.nan):16.3f}  "
                  f"{v['train_accuracy']:14.3f}  {v['train_epochs']:6.0f}")
        return
    P = penalty(_rows(args), args.rule)
    names = list(P)
    width = max(len(n) for n in names) + 2
    print("".ljust(width) + "".join(n.rjust(width) for n in names))
    for i in names:
        print(i.ljust(width) + "".join(f"{P[i][j]:.2f}".rjust(width) for j in names))
    means = column_means(P)
    print("column mean".ljust(width) + "".join(f"{means[j]:.2f}".rjust(width) for j in names))


if __name__ == "__main__":
    main()
