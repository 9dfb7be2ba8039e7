"""A labelling workspace's learning curve."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .backend import pyplot

__all__ = ["plot_workspace_curve"]


def plot_workspace_curve(curve: pd.DataFrame, path: Path, *, title: str) -> Path:
    """A workspace's held-out accuracy against its number of training labels, rounds marked.

    ``curve`` holds the recorded model snapshots (``n_train``, ``eval_accuracy``, ``n_eval``,
    ``round``, ``snapshot_id``); the PNG is written atomically (a reader never sees half a file).
    """
    plt = pyplot("the workspace's learning-curve plot (activebatch status --no-plot skips it)")

    pts = curve.sort_values(["n_train", "snapshot_id"]).drop_duplicates("n_train", keep="last")
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    ax.plot(pts["n_train"], pts["eval_accuracy"], marker="o")
    for _, r in pts.iterrows():
        if not pd.isna(r["round"]):
            ax.annotate(f"r{int(r['round'])}", (r["n_train"], r["eval_accuracy"]), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlabel("training labels")
    ax.set_ylabel(f"held-out accuracy ({int(pts['n_eval'].iloc[-1])} items)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
