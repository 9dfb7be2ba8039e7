"""Where the stopping rules would stop a run, and what stopping there costs in accuracy.

Runs the BADGE protocol (retrain from scratch every round) with the paper's MLP, side by side in
one process on one torch thread, for several strategies and seeds, with every stopping rule of
:mod:`activebatch.loop.stopping` recorded each round (``ab.run(stopping=True)``: recorded, never
stopping, so every run has the full curve). For each rule it prints, over the runs: in how many
the rule said stop at all, the median number of labels at its first stop, the test accuracy there,
that accuracy as a share of the run's final accuracy, and the share of the run's labels it would
have saved.

    python benchmarks/stopping.py                                  # digits, entropy/badge/random, 3 seeds
    python benchmarks/stopping.py --dataset mnist-5k --initial 100 --batch 100 --rounds 20
    python benchmarks/stopping.py --json stopping.json              # also every run's per-round columns
"""
from __future__ import annotations

import argparse
import time

from _harness import set_threads, write_json

RULES = ["stabilizing_predictions", "overall_uncertainty", "max_uncertainty", "classification_change",
         "selected_accuracy"]


def _run(strategy: str, data, seed: int, args) -> dict:
    import activebatch as ab
    from activebatch.learning import Learner, models

    model = models.for_dataset(data, "mlp")
    lr = 1e-3 if data.kind == "image" else 1e-4      # the BADGE protocol's Adam rates
    learner = Learner(model, lr=lr, device="cpu")
    pool = ab.Pool(data.X_train, data.y_train, n_classes=data.n_classes, name=data.name)
    start = time.perf_counter()
    hist = ab.run(pool, learner, strategy, initial=args.initial, batch_size=args.batch, rounds=args.rounds,
                  test=(data.X_test, data.y_test), seed=seed, stopping=True)
    frame = hist.to_frame(details=True)
    cols = ["round", "n_labeled", "test_accuracy", "kappa"] + [c for r in RULES for c in (r, f"{r}_stop")]
    rows = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict("records")
    rows = [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()} for row in rows]
    return {"strategy": strategy, "seed": seed, "seconds": time.perf_counter() - start, "rounds": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--strategies", default="entropy,badge,random")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=int, default=50)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", default=None, help="also write every run's per-round record here")
    args = parser.parse_args()
    set_threads(1)

    import numpy as np

    import activebatch as ab

    data = ab.datasets.load(args.dataset)
    strategies = [s.strip() for s in args.strategies.split(",")]
    print(f"{args.dataset}: {len(data.y_train)} pool items, {len(data.y_test)} test items; paper's MLP; "
          f"{args.initial} initial labels + {args.rounds} rounds of {args.batch}; strategies {strategies}; "
          f"seeds 0..{args.seeds - 1}; one torch thread; rules with their default thresholds\n")
    runs = []
    wall = time.perf_counter()
    for seed in range(args.seeds):
        for strategy in strategies:
            runs.append(_run(strategy, data, seed, args))
            print(f"  {strategy:<10} seed {seed}: {runs[-1]['seconds']:6.1f} s", flush=True)
    wall = time.perf_counter() - wall

    head = ("| strategy | rule | runs that stop | labels at first stop (median) | accuracy there | "
            "x final accuracy | labels saved |")
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    for strategy in strategies:
        rs = [r for r in runs if r["strategy"] == strategy]
        final = np.mean([r["rounds"][-1]["test_accuracy"] for r in rs])
        end = rs[0]["rounds"][-1]["n_labeled"]
        print(f"| {strategy} | (no stop: {end} labels) | - | - | {final:.3f} | 1.00 | 0% |")
        for rule in RULES:
            firsts = [next((row for row in r["rounds"] if row[f"{rule}_stop"]), None) for r in rs]
            hit = [(f, r) for f, r in zip(firsts, rs) if f is not None]
            if not hit:
                print(f"| {strategy} | {rule} | 0/{len(rs)} | - | - | - | - |")
                continue
            labels = np.median([f["n_labeled"] for f, _ in hit])
            acc = np.mean([f["test_accuracy"] for f, _ in hit])
            ratio = np.mean([f["test_accuracy"] / r["rounds"][-1]["test_accuracy"] for f, r in hit])
            saved = np.mean([1 - f["n_labeled"] / r["rounds"][-1]["n_labeled"] for f, r in hit])
            print(f"| {strategy} | {rule} | {len(hit)}/{len(rs)} | {labels:.0f} | {acc:.3f} | {ratio:.2f} | "
                  f"{saved:.0%} |")
    print(f"\n{len(runs)} runs in {wall:.0f} s")
    # per run, each recorded column as one list over the rounds
    write_json(args.json, {"args": vars(args), "runs": [
        {**r, "rounds": {k: [row[k] for row in r["rounds"]] for k in r["rounds"][0]}} for r in runs]})


if __name__ == "__main__":
    main()
