"""Figures of the BADGE paper's protocol: learning curves per setting, penalty matrices, the
normalised-error CDF, selection times and the class entropy of acquired batches."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .backend import pyplot, save

__all__ = ["plot_cdf", "plot_class_entropy", "plot_learning_curves_grid", "plot_penalty_matrix", "plot_times"]


def plot_learning_curves_grid(curves: pd.DataFrame, path: Path, ylabel: str = "test accuracy") -> Path:
    """One panel per setting (D, B, A): mean accuracy vs labels, band = standard error.

    ``curves`` is :func:`activebatch.analysis.learning_curves`'s frame (columns ``dataset``,
    ``batch_size``, ``model``, ``strategy``, ``n_labeled``, ``mean``, ``sem``).
    """
    plt = pyplot("the report's figures")
    settings = list(curves.groupby(["dataset", "batch_size", "model"], sort=True).groups)
    cols = min(3, len(settings))
    rows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), dpi=110, squeeze=False)
    for ax, key in zip(axes.flat, settings):
        g = curves[(curves["dataset"] == key[0]) & (curves["batch_size"] == key[1]) & (curves["model"] == key[2])]
        for s, c in g.groupby("strategy", sort=True):
            (line,) = ax.plot(c["n_labeled"], c["mean"], marker="o", markersize=2.5, label=s)
            ax.fill_between(c["n_labeled"], c["mean"] - c["sem"], c["mean"] + c["sem"], color=line.get_color(),
                            alpha=0.2)
        ax.set_title(f"{key[0]}, {key[2]}, B = {key[1]}")
        ax.set_xlabel("number of labels")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    return save(fig, path)


def plot_penalty_matrix(result, path: Path, title: str) -> Path:
    """Heat map of P with the numbers written in, and the column means underneath."""
    plt = pyplot("the report's figures")
    P = result.matrix
    n = len(P)
    fig, ax = plt.subplots(figsize=(1.0 * n + 2.5, 0.9 * n + 2.0), dpi=110)
    vmax = max(result.n_settings, 1)
    im = ax.imshow(P.to_numpy(), cmap="viridis", vmin=0, vmax=vmax)
    for i in range(n):
        for j in range(n):
            v = P.iat[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 * vmax else "black",
                    fontsize=8)
    ax.set_xticks(range(n), P.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), P.index)
    ax.set_xlabel("loser (column)")
    ax.set_ylabel("winner (row)")
    means = " | ".join(f"{k} {v:.2f}" for k, v in result.column_means.items())
    ax.set_title(f"{title}\n(max {result.n_settings}); column means: {means}", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return save(fig, path)


def plot_cdf(cdf: pd.DataFrame, path: Path) -> Path:
    plt = pyplot("the report's figures")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for s, g in cdf.groupby("strategy", sort=True):
        x = np.concatenate([[g["normalized_error"].min()], g["normalized_error"].to_numpy()])
        y = np.concatenate([[0.0], g["cdf"].to_numpy()])
        ax.step(x, y, where="post", label=s)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("normalised error (error / RANDOM's error)")
    ax.set_ylabel("cumulative frequency (weighted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_times(times: pd.DataFrame, path: Path) -> Path:
    plt = pyplot("the report's figures")
    overall = times[times["dataset"] == "all"].sort_values("mean_seconds")
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(overall) + 1.5), dpi=110)
    ax.barh(overall["strategy"], overall["mean_seconds"])
    ax.set_xlabel("mean selection time per round (s)")
    ax.grid(axis="x", alpha=0.3)
    return save(fig, path)


def plot_class_entropy(frame: pd.DataFrame, path: Path) -> Path:
    """Entropy of the acquired batches' class distribution per round (BatchBALD blog, Figs. 13/14)."""
    plt = pyplot("the report's figures")
    sel = frame[frame["round"] > 0]
    k = max((len(h) for h in frame["class_histogram"]), default=2)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for s, g in sel.groupby("strategy", sort=True):
        m = g.groupby("round")["class_entropy"].mean()
        ax.plot(m.index, m.to_numpy(), marker="o", markersize=2.5, label=s)
    ax.axhline(math.log(k), color="grey", lw=0.8, ls="--", label=f"log K (K = {k})")
    ax.set_xlabel("round")
    ax.set_ylabel("entropy of acquired classes (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
