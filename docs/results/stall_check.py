"""Training accuracy at epoch 50 of the reproduction's fits on random labels.

The BADGE authors' training loop starts again from fresh weights whenever an epoch divisible by
50 ends below 20% training accuracy (``activebatch.learning.RestartIfStalled``); the reproduction
grids run without that rule. This script shows how far from that threshold the paper's MLP is
at epoch 50 on a data set, for random labeled sets of several sizes, with the grids' training
(Adam at 1e-4, batches of 64, at most 200 epochs, until 99% training accuracy), with and without
dropout 0.5 before the head (the Bayesian grid's model).

Usage::

    python docs/results/stall_check.py kropt --labels 100 1100 10100 --seeds 2

prints, per (dropout, labels, seed), the training accuracy at epoch 50, the lowest of epochs
1-50, the final one and the epochs trained. One torch thread.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import activebatch as ab
from activebatch.experiments.runner import build_model
from activebatch.learning import Callback


class _History(Callback):
    def on_fit_end(self, fit) -> None:
        self.accuracy = [e["train_accuracy"] for e in fit.history]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--labels", type=int, nargs="+", default=[100, 1100, 10100])
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = ab.datasets.load(args.dataset)
    print("dropout  labels  seed  acc@50  min(1-50)  final  epochs")
    for dropout in (0.0, 0.5):
        for n in args.labels:
            for seed in range(args.seeds):
                rows = np.random.default_rng(seed).choice(len(data.y_train), n, replace=False)
                history = _History()
                learner = ab.Learner(build_model("mlp", data, dropout, False), lr=1e-4, max_epochs=200,
                                     callbacks=[history], device="cpu")
                learner.fit(data.X_train[rows], data.y_train[rows], seed=seed)
                acc = history.accuracy
                at50 = f"{acc[49]:.3f}" if len(acc) >= 50 else "  -  "
                print(f"{dropout:7.1f}  {n:6d}  {seed:4d}  {at50:>6}  {min(acc[:50]):9.3f}  {acc[-1]:5.3f}  {len(acc):6d}",
                      flush=True)


if __name__ == "__main__":
    main()
