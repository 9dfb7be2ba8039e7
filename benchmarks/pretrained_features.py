"""Self-supervised features for the "MLP head on frozen features vs end to end" grid.

Pretrains SimCLR (:func:`activebatch.learning.pretrain_simclr`; Chen et al., ICML 2020) on the
training images of a data set, without their labels, embeds the training and test images with the
frozen encoder (:func:`activebatch.learning.models.extract_features`), standardises each feature
with the mean and standard deviation of the (unlabelled) training pool, and writes an ``.npz``
with ``X_train``, ``y_train``, ``X_test``, ``y_test`` that a grid spec reads as a data file
(``benchmarks/specs/pretrained.toml``). Everything flows from ``--seed`` on one torch thread, so
the file is regenerated bit for bit rather than stored.

As a check that the features are useful it prints a linear probe: multinomial logistic regression
(scikit-learn, C = 1) trained on 100 and 1,000 random labelled training images, test accuracy on
the features and, for reference, on the raw pixels (both standardised with the pool's statistics),
mean +- standard error over ``--probe-seeds`` labelled sets.

    python benchmarks/pretrained_features.py                      # mnist-5k -> data/mnist-5k-simclr.npz
    python benchmarks/pretrained_features.py --epochs 5 --out /tmp/quick.npz --json probe.json
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from _harness import set_threads, write_json

ROOT = Path(__file__).resolve().parents[1]


def standardise(train, test):
    """Both matrices standardised with ``train``'s per-column mean and std (constant columns: std 1)."""
    import numpy as np

    mean = train.mean(0, dtype=np.float64)
    std = train.std(0, dtype=np.float64)
    std = np.where(std > 1e-8, std, 1.0)
    return (((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32))


def probe(X_tr, y_tr, X_te, y_te, n_labels: int, seeds: int) -> tuple[float, float]:
    """Mean and standard error of a logistic-regression probe's test accuracy over ``seeds`` labelled sets."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    accs = []
    for s in range(seeds):
        rows = np.random.default_rng([s, n_labels]).choice(len(y_tr), n_labels, replace=False)
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(X_tr[rows], y_tr[rows])
        accs.append(float((clf.predict(X_te) == y_te).mean()))
    se = float(np.std(accs, ddof=1) / math.sqrt(len(accs))) if len(accs) > 1 else float("nan")
    return float(np.mean(accs)), se


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist-5k", help="an image data set activebatch.datasets.load knows")
    ap.add_argument("--out", default=None, help="the .npz to write (default: data/<dataset>-simclr.npz)")
    ap.add_argument("--epochs", type=int, default=None, help="SimCLR epochs (default: pretrain_simclr's, 30)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--labels", type=int, nargs="+", default=[100, 1000], help="labelled-set sizes of the probe")
    ap.add_argument("--probe-seeds", type=int, default=3)
    ap.add_argument("--no-probe", action="store_true", help="only write the features")
    ap.add_argument("--json", default=None, help="also write the timings and probe results here")
    args = ap.parse_args()
    set_threads(args.threads)
    import numpy as np

    import activebatch as ab
    from activebatch.learning import pretrain_simclr
    from activebatch.learning.models import extract_features

    data = ab.datasets.load(args.dataset)
    if data.kind != "image" or data.image_shape is None:
        raise SystemExit(f"{args.dataset!r} is not an image data set (kind {data.kind!r})")
    out = Path(args.out) if args.out else ROOT / "data" / f"{args.dataset}-simclr.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {} if args.epochs is None else {"epochs": args.epochs}
    t0 = time.perf_counter()
    encoder = pretrain_simclr(data.X_train, image_shape=tuple(data.image_shape), batch_size=args.batch_size,
                              temperature=args.temperature, seed=args.seed, progress=True, **options)
    t_pre = time.perf_counter() - t0
    t0 = time.perf_counter()
    F_tr = extract_features(encoder, data.X_train)
    F_te = extract_features(encoder, data.X_test)
    t_ext = time.perf_counter() - t0
    F_tr, F_te = standardise(F_tr, F_te)
    np.savez(out, X_train=F_tr, y_train=data.y_train.astype(np.int64), X_test=F_te,
             y_test=data.y_test.astype(np.int64))
    epochs = len(encoder.losses)
    print(f"SimCLR on {args.dataset}: {data.X_train.shape[0]} images, {epochs} epochs, batch {args.batch_size}, "
          f"tau {args.temperature}: {t_pre:.1f} s ({t_pre / epochs:.1f} s/epoch, {args.threads} thread(s)); "
          f"NT-Xent {encoder.losses[0]:.3f} -> {encoder.losses[-1]:.3f}")
    print(f"features: {F_tr.shape[1]} per image, extracted in {t_ext:.1f} s; wrote {out}")
    result = {"dataset": args.dataset, "epochs": epochs, "batch_size": args.batch_size,
              "temperature": args.temperature, "seed": args.seed, "threads": args.threads,
              "pretrain_seconds": t_pre, "extract_seconds": t_ext, "losses": list(encoder.losses), "probe": []}
    if not args.no_probe:
        P_tr, P_te = standardise(np.asarray(data.X_train, dtype=np.float32).reshape(len(data.y_train), -1),
                                 np.asarray(data.X_test, dtype=np.float32).reshape(len(data.y_test), -1))
        print(f"linear probe (logistic regression, test accuracy, mean +- s.e. over {args.probe_seeds} "
              "labelled sets):")
        for n in args.labels:
            row = {"labels": n}
            for name, (A, B) in (("simclr", (F_tr, F_te)), ("pixels", (P_tr, P_te))):
                row[name], row[f"{name}_se"] = probe(A, data.y_train, B, data.y_test, n, args.probe_seeds)
            result["probe"].append(row)
            print(f"  {n:5d} labels: SimCLR features {row['simclr']:.3f} +- {row['simclr_se']:.3f}   "
                  f"raw pixels {row['pixels']:.3f} +- {row['pixels_se']:.3f}")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
