"""``activebatch report DIR``: figures and a Markdown summary of a results store."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.extras import require
from . import export_results, load_results
from .protocol import (SETTING, learning_curves, normalized_error_cdf, normalized_errors, penalty_matrices_by,
    penalty_matrix, selection_times)

__all__ = ["write_report"]


def _plt():
    require("matplotlib", "plot", "the report's figures")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves_grid(frame: pd.DataFrame, path: Path) -> Path:
    """One panel per setting (D, B, A): mean accuracy vs labels, band = standard error."""
    plt = _plt()
    curves = learning_curves(frame)
    settings = list(curves.groupby(SETTING, sort=True).groups)
    cols = min(3, len(settings))
    rows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), dpi=110, squeeze=False)
    for ax, key in zip(axes.flat, settings):
        g = curves[(curves["dataset"] == key[0]) & (curves["batch_size"] == key[1]) & (curves["model"] == key[2])]
        for s, c in g.groupby("strategy", sort=True):
            (line,) = ax.plot(c["n_labeled"], c["mean"], marker="o", markersize=2.5, label=s)
            ax.fill_between(c["n_labeled"], c["mean"] - c["sem"], c["mean"] + c["sem"], color=line.get_color(), alpha=0.2)
        ax.set_title(f"{key[0]}, {key[2]}, B = {key[1]}")
        ax.set_xlabel("number of labels")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_penalty_matrix(result, path: Path, title: str) -> Path:
    """Heat map of P with the numbers written in, and the column means underneath."""
    plt = _plt()
    P = result.matrix
    n = len(P)
    fig, ax = plt.subplots(figsize=(1.0 * n + 2.5, 0.9 * n + 2.0), dpi=110)
    vmax = max(result.n_settings, 1)
    im = ax.imshow(P.to_numpy(), cmap="viridis", vmin=0, vmax=vmax)
    for i in range(n):
        for j in range(n):
            v = P.iat[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 * vmax else "black", fontsize=8)
    ax.set_xticks(range(n), P.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), P.index)
    ax.set_xlabel("loser (column)")
    ax.set_ylabel("winner (row)")
    means = " | ".join(f"{k} {v:.2f}" for k, v in result.column_means.items())
    ax.set_title(f"{title}\n(max {result.n_settings}); column means: {means}", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_cdf(cdf: pd.DataFrame, path: Path) -> Path:
    plt = _plt()
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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_times(times: pd.DataFrame, path: Path) -> Path:
    plt = _plt()
    overall = times[times["dataset"] == "all"].sort_values("mean_seconds")
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(overall) + 1.5), dpi=110)
    ax.barh(overall["strategy"], overall["mean_seconds"])
    ax.set_xlabel("mean selection time per round (s)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_class_entropy(frame: pd.DataFrame, path: Path) -> Path:
    """Entropy of the acquired batches' class distribution per round (BatchBALD blog, Figs. 13/14)."""
    plt = _plt()
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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join([df.index.name or ""] + cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for idx, *row in df.itertuples(name=None):  # itertuples keeps each column's type
        cells = [floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines)


def write_report(results_dir: "str | Path", out: "str | Path | None" = None, *,
                 export: tuple[str, ...] = ("csv",)) -> Path:
    """Write figures and ``report.md`` for the results store in ``results_dir``.

    Parameters
    ----------
    results_dir : folder holding ``results.sqlite``
    out : folder for the report (default: ``results_dir/report``)
    export : formats of the full results table to write beside it ("csv", "parquet")

    Returns
    -------
    Path of the Markdown file.
    """
    frame = load_results(results_dir)
    if frame.empty:
        raise ValueError(f"the results store in {str(results_dir)!r} holds no runs yet")
    out = Path(out) if out is not None else Path(results_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    for fmt in export:
        export_results(frame, out / f"results.{fmt}")

    strategies = sorted(frame["strategy"].unique())
    figs: dict[str, str] = {}
    figs["curves"] = plot_learning_curves_grid(frame, out / "learning_curves.png").name
    pen = penalty_matrix(frame, strategies=strategies)
    figs["penalty"] = plot_penalty_matrix(pen, out / "penalty_matrix.png", "Pairwise penalty matrix, all settings").name
    grouped = {}
    for col in ("batch_size", "model"):
        if frame[col].nunique() > 1:
            for value, res in penalty_matrices_by(frame, col, strategies=strategies).items():
                name = f"penalty_matrix_{col}_{value}.png"
                plot_penalty_matrix(res, out / name, f"Penalty matrix, {col} = {value}")
                grouped[(col, value)] = (name, res)
    cdf = normalized_error_cdf(frame)
    ne, ne_issues = normalized_errors(frame)
    if not cdf.empty:
        figs["cdf"] = plot_cdf(cdf, out / "normalized_error_cdf.png").name
    times = selection_times(frame)
    figs["times"] = plot_times(times, out / "selection_times.png").name
    figs["entropy"] = plot_class_entropy(frame, out / "class_entropy.png").name

    n_runs = frame.groupby(SETTING + ["strategy", "seed"]).ngroups
    md = [f"# Active-learning benchmark report", "",
          f"{n_runs} runs, {len(frame)} rounds; data sets: {', '.join(sorted(frame['dataset'].unique()))}; "
          f"models: {', '.join(sorted(frame['model'].unique()))}; batch sizes: "
          f"{', '.join(str(b) for b in sorted(frame['batch_size'].unique()))}; strategies: {', '.join(strategies)}; "
          f"seeds per strategy: {frame.groupby(SETTING + ['strategy'])['seed'].nunique().min()}"
          f"-{frame.groupby(SETTING + ['strategy'])['seed'].nunique().max()}.", "",
          "## Learning curves", "", "Mean test accuracy over seeds; the band is one standard error.", "",
          f"![learning curves]({figs['curves']})", "",
          "## Pairwise penalty matrix", "",
          "P[i, j] is the number of settings (data set, batch size, model), each weighted by 1/(its number of "
          "budgets), in which row strategy i has a significantly lower error than column strategy j "
          f"(paired z > 1.96 over seeds). Maximum possible entry: {pen.n_settings}. Lower column means are better.", "",
          f"![penalty matrix]({figs['penalty']})", "",
          _md_table(pd.concat([pen.matrix, pen.column_means.to_frame().T])), ""]
    if grouped:
        md += ["### By batch size and by model", ""]
        for (col, value), (name, res) in grouped.items():
            md += [f"**{col} = {value}** (max {res.n_settings}); column means: "
                   + ", ".join(f"{k} {v:.2f}" for k, v in res.column_means.items()), "", f"![{col} {value}]({name})", ""]
    md += ["### Budgets", "", "n0: smallest label count at which RANDOM reaches 99% of its final accuracy.", "",
           _md_table(pen.budgets.set_index("dataset").assign(budgets=lambda d: d["budgets"].astype(str))), ""]
    md += ["## Normalised errors", ""]
    if "cdf" in figs:
        summary = ne.groupby("strategy").apply(lambda g: np.average(g["normalized_error"], weights=g["weight"]),
                                               include_groups=False)
        md += ["Mean error divided by RANDOM's mean error at the same budget; the CDF weights each point by "
               "1/(its setting's number of budgets). Curves further up and left are better.", "",
               f"![normalised error CDF]({figs['cdf']})", "",
               "Weighted mean normalised error: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.sort_values().items()), ""]
    else:
        md += ["No budget point: see the notes below.", ""]
    overall = times[times["dataset"] == "all"].set_index("strategy")[["mean_seconds", "total_seconds", "rounds"]]
    md += ["## Selection time", "", f"![selection times]({figs['times']})", "",
           _md_table(overall.sort_values("mean_seconds"), "{:.4f}"), "",
           "## Class diversity of acquired batches", "",
           "Entropy of the class histogram of each acquired batch, averaged over runs (higher = more diverse).", "",
           f"![class entropy]({figs['entropy']})", ""]
    notes = pen.issues + [i for i in ne_issues if i not in pen.issues]
    md += ["## Notes on edge cases", ""]
    md += [f"- {n}" for n in notes] if notes else ["None: every comparison had paired seeds and non-zero variance."]
    md += [""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
