"""Cheap ensembles against the naive one: training cost and label efficiency of variation-ratio selection.

Beluch, McCarthy, Lerch & Hentschel ("The power of ensembles for active learning in image
classification", CVPR 2018) select with the variation ratio of an ensemble of 5 networks and
compare the naive ensemble (5 independently initialised networks, ``Committee``) with cheaper
ensembles. This script runs, side by side in one process on one torch thread, the BADGE protocol
(retrain from scratch every round) with the paper's MLP on one data set and, per method, several
seeds:

* ``committee``: var_ratio on the naive ensemble, ``Committee(mlp, 5)``;
* ``snapshot``, ``diversity``, ``split_head``: var_ratio on the cheap ensembles of
  :mod:`activebatch.learning.ensembles` with 5 members and their default options;
* ``random / committee`` and ``random / MLP``: random selection, the accuracy of the naive ensemble
  and of a single MLP.

Per method it prints the training cost (seconds of training and of selection per round, and
network-epochs per round: epochs summed over every network trained, counted by a callback on the
learner) with its ratio to the naive ensemble's, and the label efficiency: mean test accuracy at
each labeled-set size of the learning curve and its mean over the curve (mean +- standard error
over seeds).

    python benchmarks/ensembles.py                                   # mnist-5k, 3 seeds, 100 + 8 x 100 labels
    python benchmarks/ensembles.py --seeds 5 --rounds 15 --json ensembles.json   # a bigger version
    python benchmarks/ensembles.py --dataset digits --initial 50 --batch 50
"""
from __future__ import annotations

import argparse
import math
import time

from _harness import set_threads, write_json

METHODS = ["committee", "snapshot", "diversity", "split_head", "random / committee", "random / MLP"]


def _learner(method: str, data, members: int, counter):
    from activebatch.learning import Learner, models
    from activebatch.learning.committee import Committee
    from activebatch.learning.ensembles import ENSEMBLES

    model = models.for_dataset(data, "mlp")
    lr = 1e-3 if data.kind == "image" else 1e-4      # the BADGE protocol's Adam rates
    opts = dict(lr=lr, device="cpu", callbacks=[counter])
    if method in ("committee", "random / committee"):
        return Committee(model, members, **opts)
    if method == "random / MLP":
        return Learner(model, **opts)
    return ENSEMBLES[method](model, members, **opts)


def _run(method: str, data, seed: int, args) -> dict:
    import numpy as np

    import activebatch as ab
    from activebatch.learning import Callback

    class EpochCount(Callback):
        """Epochs of every network trained (a committee's members, a diversity ensemble's base ...)."""

        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, fit):
            self.epochs += 1

    counter = EpochCount()
    learner = _learner(method, data, args.members, counter)
    pool = ab.Pool(data.X_train, data.y_train, n_classes=data.n_classes, name=data.name)
    strategy = "random" if method.startswith("random") else "var_ratio"
    start = time.perf_counter()
    hist = ab.run(pool, learner, strategy, initial=args.initial, batch_size=args.batch, rounds=args.rounds,
                  test=(data.X_test, data.y_test), seed=seed)
    frame = hist.to_frame()
    return {"method": method, "seed": seed, "seconds": time.perf_counter() - start,
            "n_labeled": frame["n_labeled"].tolist(), "accuracy": frame["test_accuracy"].tolist(),
            "train_seconds": float(np.mean(frame["train_seconds"])),
            "select_seconds": float(np.mean(frame["select_seconds"].iloc[1:])) if len(frame) > 1 else 0.0,
            "epochs_per_round": counter.epochs / len(frame)}


def _mean_se(values) -> tuple[float, float]:
    import numpy as np

    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    parser.add_argument("--json", default=None, help="also write every run's record here")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {METHODS}")
    set_threads(1)

    import numpy as np

    import activebatch as ab

    data = ab.datasets.load(args.dataset)
    print(f"{args.dataset}: {len(data.y_train)} pool items, {len(data.y_test)} test items; paper's MLP; "
          f"{args.initial} initial labels + {args.rounds} rounds of {args.batch}; {args.members} members; "
          f"seeds 0..{args.seeds - 1}; one torch thread\n")
    _run("split_head", data, 0, argparse.Namespace(**{**vars(args), "rounds": 0}))   # warm-up (imports, allocator)
    runs = []
    wall = time.perf_counter()
    for seed in range(args.seeds):
        for method in methods:
            runs.append(_run(method, data, seed, args))
            print(f"  {method:<20} seed {seed}: {runs[-1]['seconds']:6.1f} s", flush=True)
    wall = time.perf_counter() - wall

    sizes = runs[0]["n_labeled"]
    shown = sorted({sizes[0], sizes[len(sizes) // 4], sizes[len(sizes) // 2], sizes[3 * len(sizes) // 4], sizes[-1]})
    cols = [sizes.index(s) for s in shown]
    by = {m: [r for r in runs if r["method"] == m] for m in methods}
    ref = by.get("committee")
    ref_train = float(np.mean([r["train_seconds"] for r in ref])) if ref else None
    ref_epochs = float(np.mean([r["epochs_per_round"] for r in ref])) if ref else None
    head = ("| method | train s/round | x committee | select s/round | network-epochs/round | x committee | "
            + " | ".join(f"acc @{s}" for s in shown) + " | mean acc over the curve |")
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    for m in methods:
        rs = by[m]
        train = float(np.mean([r["train_seconds"] for r in rs]))
        select = float(np.mean([r["select_seconds"] for r in rs]))
        epochs = float(np.mean([r["epochs_per_round"] for r in rs]))
        acc = np.array([r["accuracy"] for r in rs])
        cells = [f"{_mean_se(acc[:, c])[0]:.3f} ± {_mean_se(acc[:, c])[1]:.3f}" for c in cols]
        curve = _mean_se(acc.mean(axis=1))
        ratio_t = f"{train / ref_train:.2f}" if ref_train else "-"
        ratio_e = f"{epochs / ref_epochs:.2f}" if ref_epochs else "-"
        print(f"| {m} | {train:.2f} | {ratio_t} | {select:.3f} | {epochs:.0f} | {ratio_e} | " + " | ".join(cells)
              + f" | {curve[0]:.3f} ± {curve[1]:.3f} |")
    print(f"\n{len(runs)} runs in {wall:.0f} s")
    write_json(args.json, {"args": vars(args), "runs": runs})


if __name__ == "__main__":
    main()
