"""Small workspaces for the workspace, select, and labelling-page tests."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

TAB_CLASSES = ["a", "b", "c"]
DIGITS = [str(d) for d in range(10)]


def make_table(folder: Path, n: int = 120, seed: int = 0) -> tuple[Path, dict[str, str]]:
    """A CSV of ``n`` rows (id, 5 numeric columns, a text column) and the true class of each id."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n, 5, n_informative=4, n_redundant=0, n_classes=3, n_clusters_per_class=1,
                               class_sep=2.0, random_state=seed)
    frame = pd.DataFrame(X.round(4), columns=[f"x{i}" for i in range(5)])
    ids = [f"row-{i:04d}" for i in range(n)]
    frame.insert(0, "id", ids)
    frame["colour"] = np.where(X[:, 0] > 0, "red", "blue")
    path = folder / "items.csv"
    frame.to_csv(path, index=False)
    return path, {i: TAB_CLASSES[k] for i, k in zip(ids, y)}


@functools.lru_cache(maxsize=1)
def _mnist():
    import activebatch as ab

    d = ab.datasets.load("mnist-5k")
    return d.X_train, d.y_train


def make_images(folder: Path, n: int = 60) -> tuple[Path, dict[str, str]]:
    """``n`` MNIST digits of mnist-5k written as 28x28 PNGs; the true digit of each file."""
    from PIL import Image

    X, y = _mnist()
    out = folder / "digits"
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(n):
        name = f"digit-{i:04d}.png"
        Image.fromarray((X[i].reshape(28, 28) * 255).round().astype(np.uint8)).save(out / name)
        truth[name] = str(int(y[i]))
    return out, truth


def write_labels(path: Path, ids, truth: dict[str, str], **extra) -> Path:
    """A labels CSV (id, label[, other columns]) with the true labels of ``ids``."""
    ids = list(ids)
    frame = pd.DataFrame({"id": ids, "label": [truth[i] for i in ids], **extra})
    frame.to_csv(path, index=False)
    return path


def label_studio_export(tasks: list[dict], truth: dict[str, str], *, who: str = "ann@example.org") -> list[dict]:
    """What Label Studio's JSON export looks like after someone labelled the exported tasks."""
    out = []
    for k, t in enumerate(tasks):
        to_name = "image" if "image" in t["data"] else "row"
        out.append({
            "id": 1000 + k, "data": t["data"], "predictions": t.get("predictions", []),
            "annotations": [{
                "id": 5000 + k, "completed_by": {"id": 7, "email": who}, "was_cancelled": False,
                "created_at": "2026-01-02T10:00:00.000000Z", "updated_at": "2026-01-02T10:00:00.000000Z",
                "result": [{"from_name": "label", "to_name": to_name, "type": "choices", "origin": "manual",
                            "value": {"choices": [truth[t["data"]["activebatch_id"]]]}}],
            }],
        })
    return out
