"""BALD vs BatchBALD vs random on repeated-mnist, acquisition size 10 (BatchBALD paper, Figure 4).

Every strategy starts from the same 20 random labels per seed; each round retrains a CNN with
dropout 0.5 before its head from scratch, draws 20 consistent MC-dropout samples on the pool and
labels 10 more digits. Writes ``results.csv`` (one row per round), ``learning_curves.png`` and a
Markdown summary (accuracy at given label counts, near-duplicates per batch: pairs of acquired
items that are copies of the same base digit, and the entropy of the acquired classes).

    python examples/batchbald_repeated_mnist.py --out batchbald-rmnist            # about 30 minutes on 2 cores
    python examples/batchbald_repeated_mnist.py --rounds 5 --seeds 1 --out /tmp/x # a quick look
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import activebatch as ab
from activebatch.learning.models import for_dataset

STRATEGIES = ("random", "bald", "batchbald")


def near_duplicates(base: np.ndarray) -> int:
    """Acquired items minus distinct base digits among them (0 when every copy is of a new digit)."""
    return int(base.size - np.unique(base).size)


def one_run(data, strategy: str, seed: int, rounds: int, mc_samples: int) -> pd.DataFrame:
    n_base = len(data.X_train) // 3
    pool = ab.Pool(data.X_train, data.y_train, name=data.name)
    model = for_dataset(data, "cnn", dropout=0.5)
    learner = ab.Learner(model, lr=1e-3, device="cpu", mc_samples=mc_samples)
    hist = ab.run(pool, learner, strategy, initial=20, batch_size=10, rounds=rounds,
                  test=(data.X_test, data.y_test), seed=seed)
    frame = hist.to_frame()
    frame["near_duplicates"] = [near_duplicates(np.asarray(sel) % n_base) if r > 0 else np.nan
                                for r, sel in enumerate(hist.selections)]
    return frame


def summary(frame: pd.DataFrame, at: list[int]) -> str:
    lines = ["| strategy | " + " | ".join(f"acc. @ {n} labels" for n in at)
             + " | near-duplicates per batch | acquired-class entropy (nats) |",
             "|---|" + "---|" * (len(at) + 2)]
    for strat in STRATEGIES:
        f = frame[frame["strategy"] == strat]
        if f.empty:
            continue
        cells = []
        for n in at:
            acc = f[f["n_labeled"] == n]["test_accuracy"]
            cells.append(f"{acc.mean():.3f} ± {acc.std(ddof=1):.3f}" if len(acc) > 1 else f"{acc.mean():.3f}")
        sel = f[f["round"] > 0]
        lines.append(f"| {strat} | " + " | ".join(cells)
                     + f" | {sel['near_duplicates'].mean():.2f} | {sel['class_entropy'].mean():.2f} |")
    return "\n".join(lines)


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for strat in STRATEGIES:
        f = frame[frame["strategy"] == strat].groupby("n_labeled")["test_accuracy"]
        if not len(f):
            continue
        mean, sd = f.mean(), f.std(ddof=1).fillna(0.0)
        ax.plot(mean.index, mean.values, label=strat)
        ax.fill_between(mean.index, mean - sd, mean + sd, alpha=0.2)
    ax.set_xlabel("labeled digits")
    ax.set_ylabel("test accuracy")
    ax.set_title("repeated-mnist, acquisition size 10")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--mc-samples", type=int, default=20)
    parser.add_argument("--root", default=None, help="folder with the full MNIST files (else mnist-5k is used)")
    parser.add_argument("--out", default="batchbald-rmnist")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ab.datasets.load("repeated-mnist", root=args.root)
    print(f"{data.name}: {len(data.X_train):,} training items from {data.source}; test {len(data.X_test):,}")
    frames = []
    for seed in range(args.seeds):
        for strat in STRATEGIES:
            t0 = time.perf_counter()
            frames.append(one_run(data, strat, seed, args.rounds, args.mc_samples))
            last = frames[-1].iloc[-1]
            print(f"seed {seed} {strat:9s} acc {last['test_accuracy']:.3f} at {last['n_labeled']} labels "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    frame = pd.concat(frames, ignore_index=True)
    frame.to_csv(out / "results.csv", index=False)
    plot(frame, out / "learning_curves.png")
    last = 20 + 10 * args.rounds
    at = sorted({n for n in (20 + 10 * max(1, args.rounds // 4), 20 + 10 * (args.rounds // 2), last) if n <= last})
    text = summary(frame, at)
    (out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
