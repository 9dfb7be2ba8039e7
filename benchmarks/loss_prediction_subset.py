"""Loss prediction with and without the paper's random candidate subset, against random, on digits.

    python benchmarks/loss_prediction_subset.py [--seeds 5]

Yoo & Kweon (CVPR 2019) score a random subset of 10,000 unlabeled items per cycle and take the
1,000 of largest predicted loss: ten candidates per pick. This runs ``loss_prediction`` on the
whole pool and on random subsets of 5 and 10 candidates per pick (``subset=100`` and ``200`` for
batches of 20), next to random, with the settings of ``benchmarks/specs/training_strategies.toml``
(digits, the paper's MLP, 20 initial labels, 10 rounds of 20, Adam 1e-3, at most 100 epochs), one
torch thread. It prints, per variant, the mean test accuracy over the learning curve and at its
end, and the mean entropy (nats) of the classes acquired in a batch (log 10 = 2.30 for an even
spread), averaged over seeds.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import activebatch as ab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = ab.datasets.load("digits")
    variants = [("random", {}), ("loss_prediction", {}), ("loss_prediction", {"subset": 200}),
                ("loss_prediction", {"subset": 100})]
    print(f"{'variant':34s} {'mean acc.':>9s} {'final acc.':>10s} {'class entropy':>13s}")
    for name, opts in variants:
        curves, entropies = [], []
        for seed in range(args.seeds):
            pool = ab.Pool(data.X_train, data.y_train, n_classes=data.n_classes)
            learner = ab.Learner(ab.models.for_dataset(data, "mlp"), lr=1e-3, max_epochs=100, device="cpu")
            frame = ab.run(pool, learner, name, initial=20, batch_size=20, rounds=10,
                           test=(data.X_test, data.y_test), seed=seed, strategy_options=opts).to_frame()
            curves.append(frame["test_accuracy"].to_numpy())
            entropies.append(frame.loc[frame["round"] > 0, "class_entropy"].mean())
        acc = np.array(curves)
        label = name + (f" subset={opts['subset']}" if opts else "")
        print(f"{label:34s} {acc.mean():9.3f} {acc[:, -1].mean():10.3f} {np.mean(entropies):13.2f}", flush=True)


if __name__ == "__main__":
    main()
