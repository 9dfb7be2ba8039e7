"""Text items: how the TF-IDF + SVD dimension and the input scaling change what the workspace model learns.

A text workspace trains its model (the BADGE protocol's MLP: Adam, from scratch, until 99%
training accuracy) on the latent semantic features of :mod:`activebatch.workspace.text`. This
script measures, side by side in one process on one torch thread, the held-out accuracy of that
model for random labelled sets of several sizes, with

* the SVD dimension ``d`` (``--text-dim``): 32, 100 (the default) and 256;
* the input scaling: ``per-feature`` (each feature standardised on its own, as for tables and
  precomputed embeddings) and ``common`` (centred, one scale for every feature, what text items
  get: the components keep their relative spread);
* and, for reference, a nearest-centroid classifier on the same features (cosine to the mean of
  each class's labelled rows), which shows how much the features themselves separate the classes.

The corpus is synthetic and generated here (no download): ``--topics`` classes, each a topic with
its own vocabulary; every text has 20 to 60 words, each drawn from a shared vocabulary of common
words with probability 0.6, else from its topic's vocabulary, both with Zipf (1/rank) frequencies.
Mean +- standard error over ``--seeds`` labelled sets per cell.

    python benchmarks/text_features.py                    # 2000 texts, 4 topics, 3 seeds
    python benchmarks/text_features.py --seeds 5 --json text_features.json
"""
from __future__ import annotations

import argparse
import math
import time

from _harness import set_threads, write_json

DIMS = (32, 100, 256)
SCALINGS = ("per-feature", "common")


def corpus(n: int, topics: int, seed: int):
    """``n`` synthetic texts and their topic (class) indices."""
    import numpy as np

    rng = np.random.default_rng(seed)
    common = [f"c{i}" for i in range(400)]
    own = [[f"t{k}w{i}" for i in range(150)] for k in range(topics)]
    zipf_c = 1.0 / np.arange(1, 401)
    zipf_t = 1.0 / np.arange(1, 151)
    zipf_c /= zipf_c.sum()
    zipf_t /= zipf_t.sum()
    y = rng.integers(topics, size=n)
    texts = []
    for k in y:
        length = int(rng.integers(20, 61))
        shared = rng.random(length) < 0.6
        words = np.where(shared, rng.choice(common, size=length, p=zipf_c), rng.choice(own[k], size=length, p=zipf_t))
        texts.append(" ".join(words))
    return texts, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=2000, help="corpus size (a quarter is the test split)")
    ap.add_argument("--topics", type=int, default=4)
    ap.add_argument("--labels", type=int, nargs="+", default=[20, 50, 100, 200])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    set_threads(1)
    import numpy as np

    from activebatch.workspace.model import ModelConfig, build_learner, feature_stats
    from activebatch.workspace.text import tfidf_svd_features

    texts, y = corpus(args.texts, args.topics, seed=0)
    n_test = args.texts // 4
    pool, test = np.arange(args.texts - n_test), np.arange(args.texts - n_test, args.texts)
    rows = []
    t0 = time.perf_counter()
    for d in DIMS:
        X, info = tfidf_svd_features(texts, n_components=d, seed=0)
        print(f"d={d}: {info['vocabulary']} terms, {100 * info['explained_variance']:.1f}% of the TF-IDF variance")
        for n_labels in args.labels:
            sets = [np.random.default_rng([s, n_labels]).choice(pool, n_labels, replace=False)
                    for s in range(args.seeds)]
            centroid = []
            for lab in sets:
                means = np.stack([X[lab][y[lab] == k].mean(0) if (y[lab] == k).any() else np.zeros(d)
                                  for k in range(args.topics)])
                centroid.append(float(((X[test] @ means.T).argmax(1) == y[test]).mean()))
            rows.append({"d": d, "scaling": "nearest centroid", "labels": n_labels, "accuracy": centroid})
            for scaling in SCALINGS:
                accs = []
                for s, lab in enumerate(sets):
                    mean, std = feature_stats(X[np.r_[pool, test]], common_scale=scaling == "common")
                    learner = build_learner(ModelConfig(max_epochs=args.max_epochs), kind="text", n_features=d,
                                            n_classes=args.topics, meta={"feature_mean": mean, "feature_std": std})
                    learner.fit(X[lab], y[lab], seed=s)
                    accs.append(float(learner.score(X[test], y[test])))
                rows.append({"d": d, "scaling": scaling, "labels": n_labels, "accuracy": accs})
    print(f"\nheld-out accuracy of the workspace MLP ({args.texts} texts, {args.topics} topics, {args.seeds} seeds; "
          f"{time.perf_counter() - t0:.0f} s)")
    head = f"{'d':>4s} {'scaling':17s}" + "".join(f" {n:>13d}" for n in args.labels)
    print(head.replace(f"{'scaling':17s}", f"{'scaling / labels':17s}"))
    for d in DIMS:
        for scaling in SCALINGS + ("nearest centroid",):
            cells = []
            for n_labels in args.labels:
                acc = next(r["accuracy"] for r in rows if (r["d"], r["scaling"], r["labels"]) == (d, scaling, n_labels))
                se = float(np.std(acc, ddof=1) / math.sqrt(len(acc))) if len(acc) > 1 else 0.0
                cells.append(f" {np.mean(acc):6.3f}+-{se:.3f}")
            print(f"{d:4d} {scaling:17s}" + "".join(cells))
    if args.json:
        write_json(args.json, {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
