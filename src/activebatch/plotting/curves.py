"""Plots of results frames (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .backend import pyplot

__all__ = ["learning_curve_table", "plot_learning_curves"]


def learning_curve_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy per (n_labeled, strategy): rows are label counts, columns strategies."""
    return frame.pivot_table(index="n_labeled", columns="strategy", values="test_accuracy", aggfunc="mean")


def plot_learning_curves(frame: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Write a PNG of test accuracy vs number of labels, one line per strategy.

    Lines are means over seeds; the band is one standard error (when there are several seeds).

    Parameters
    ----------
    frame : DataFrame
        Results rows with columns ``strategy``, ``seed``, ``n_labeled``, ``test_accuracy``.
    path : str or Path
        Output PNG file.
    """
    plt = pyplot("plotting learning curves")

    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, g in frame.groupby("strategy", sort=True):
        stats = g.groupby("n_labeled")["test_accuracy"].agg(["mean", "std", "count"])
        x = stats.index.to_numpy()
        m = stats["mean"].to_numpy()
        se = (stats["std"] / np.sqrt(stats["count"])).fillna(0.0).to_numpy()
        (line,) = ax.plot(x, m, marker="o", markersize=3, label=str(name))
        if (stats["count"] > 1).any():
            ax.fill_between(x, m - se, m + se, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("number of labels")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(title="strategy")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
