"""When BatchBALD runs out of information in the reproduction's first round.

The joint mutual information of a batch with the parameters is at most ln S for S equally likely
MC-dropout samples. Once every sampled label configuration singles out the sample it was drawn
from, every candidate's gain estimate is exactly zero and the rest of the batch is ties
(:class:`activebatch.kernels.BatchBALDSaturationWarning`). This script measures where that happens
on the reproduction's setting: 100 random labels, the paper's MLP with dropout 0.5 before the head
trained as in the grids (Adam at 1e-4, batches of 64, until 99% training accuracy, at most 200
epochs), S consistent dropout samples on the rest of the training set, one greedy BatchBALD batch.

Usage::

    python docs/results/batchbald_saturation.py mnist-5k random-rbf letter kropt --batch 1000

prints, per data set and seed, the pick at which the batch saturated, the joint MI reached (nats,
against ln S), the selection's seconds on one torch thread, and how many distinct classes the
tie picks hold when drawn at random and when taken in pool order (the authors' ``argmax``: the
first candidates of the file; kropt's training file is sorted by class).
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

import activebatch as ab
from activebatch.experiments.runner import build_model
from activebatch.kernels import BatchBALDSaturationWarning, greedy_batchbald


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--mc-samples", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    S = args.mc_samples
    print(f"S = {S}: ln S = {math.log(S):.2f} nats; batch {args.batch}")
    print("data set     seed  saturated at  joint MI  seconds  classes in ties: random / pool order")
    for name in args.datasets:
        data = ab.datasets.load(name)
        y = data.y_train
        for seed in range(args.seeds):
            labeled = np.random.default_rng(seed).choice(len(y), 100, replace=False)
            pool = np.setdiff1d(np.arange(len(y)), labeled)
            learner = ab.Learner(build_model("mlp", data, 0.5, False), lr=1e-4, max_epochs=200,
                                 device="cpu", mc_samples=S)
            learner.fit(data.X_train[labeled], y[labeled], seed=seed)
            mc = learner.mc_probs(data.X_train[pool], seed=seed)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BatchBALDSaturationWarning)
                res = greedy_batchbald(mc, args.batch, np.random.default_rng(seed))
            seconds = time.perf_counter() - start
            t = res.saturated_at
            if t is None:
                ties = "        -"
                at = "never"
            else:
                in_order = np.setdiff1d(np.arange(len(pool)), res.indices[:t])[:args.batch - t]
                ties = f"{len(np.unique(y[pool[res.indices[t:]]])):4d} / {len(np.unique(y[pool[in_order]])):d}"
                at = str(t)
            print(f"{name:12s} {seed:4d}  {at:>12s}  {res.gains.sum():8.3f}  {seconds:7.1f}  {ties}", flush=True)


if __name__ == "__main__":
    main()
