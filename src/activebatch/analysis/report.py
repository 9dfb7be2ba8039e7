"""``activebatch report DIR``: figures and a Markdown summary of a results store."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..plotting.protocol import plot_cdf, plot_class_entropy, plot_learning_curves_grid, plot_penalty_matrix, plot_times
from . import export_results, load_results
from .claims import paper_claims
from .html import markdown_to_html
from .protocol import (
    SETTING,
    PenaltyResult,
    labels_to_accuracy,
    learning_curves,
    mean_normalized_error,
    normalized_error_cdf,
    normalized_errors,
    penalty_matrices_by,
    penalty_matrix,
    selection_times,
    with_metric,
)

__all__ = ["write_report"]


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join([df.index.name or ""] + cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for idx, *row in df.itertuples(name=None):  # itertuples keeps each column's type
        cells = ["-" if isinstance(v, (float, np.floating)) and np.isnan(v)
                 else floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines)


def write_report(results_dir: str | Path, out: str | Path | None = None, *,
                 export: tuple[str, ...] = ("csv",), targets: tuple[float, ...] = (0.9, 0.95),
                 markdown: str | Path | None = None) -> Path:
    """Write figures, ``report.md`` and ``report.html`` (one self-contained page: figures embedded,
    sortable tables) for the results store in ``results_dir``.

    The output depends only on the store's contents, so a committed store regenerates its report
    byte for byte.

    Parameters
    ----------
    results_dir : folder holding ``results.sqlite``, or the ``.sqlite`` store itself
    out : folder for the report (default: ``results_dir/report``, or ``<store>_report`` beside a
        store file)
    export : formats of the full results table to write beside it ("csv", "parquet")
    targets : test accuracies for the table of labels needed to reach them
    markdown : also write the Markdown here, its figure links pointing into ``out``

    Returns
    -------
    Path of the Markdown file (``markdown`` when given).
    """
    frame = load_results(results_dir)
    if frame.empty:
        raise ValueError(f"the results store in {str(results_dir)!r} holds no runs yet")
    frame["dataset"] = _short_names(frame["dataset"])
    source = Path(results_dir)
    if out is None:
        out = source.parent / f"{source.stem}_report" if source.is_file() else source / "report"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for fmt in export:
        export_results(frame, out / f"results.{fmt}")

    strategies = sorted(frame["strategy"].unique())
    figs: dict[str, str] = {}
    figs["curves"] = plot_learning_curves_grid(learning_curves(frame), out / "learning_curves.png").name
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
    md = ["# Active-learning benchmark report", "",
          f"{n_runs} runs, {len(frame)} rounds; data sets: {', '.join(sorted(frame['dataset'].unique()))}; "
          f"models: {', '.join(sorted(frame['model'].unique()))}; batch sizes: "
          f"{', '.join(str(b) for b in sorted(frame['batch_size'].unique()))}; strategies: {', '.join(strategies)}; "
          f"seeds per strategy: {frame.groupby(SETTING + ['strategy'])['seed'].nunique().min()}"
          f"-{frame.groupby(SETTING + ['strategy'])['seed'].nunique().max()}.", ""]
    md += _claims_section(frame)
    md += ["## Learning curves", "", "Mean test accuracy over seeds; the band is one standard error.", "",
          f"![learning curves]({figs['curves']})", "",
          "## Pairwise penalty matrix", "",
          "P[i, j] is the number of settings (data set, batch size, model), each weighted by 1/(its number of "
          "budgets), in which row strategy i has a significantly lower error than column strategy j "
          f"(paired z > 1.96 over seeds). Maximum possible entry: {pen.n_settings}. Lower column means are better.", "",
          f"![penalty matrix]({figs['penalty']})", "",
          _md_table(pd.concat([pen.matrix, pen.column_means.to_frame().T])), ""]
    md += _coverage_note(frame, pen, strategies)
    if grouped:
        md += ["### By batch size and by model", ""]
        for (col, value), (name, res) in grouped.items():
            _, short = _short_strategies(frame, res, strategies)
            md += [f"**{col} = {value}** (max {res.n_settings}); column means: "
                   + ", ".join(f"{k} {v:.2f}" for k, v in res.column_means.items())
                   + (f" (not in every setting: {', '.join(short)})" if short else ""), "",
                   f"![{col} {value}]({name})", ""]
    md += _by_dataset_section(frame, strategies)
    authors = penalty_matrix(frame, strategies=strategies, rule="authors")
    md += ["### The authors' rule", "",
           "The same matrix with the rule of the authors' aggregation script: i beats j when a one-sample t-test of "
           "the paired differences has p < 0.05 (two-sided) in i's favour, that is t > the 97.5% quantile of "
           "Student's t with n - 1 degrees of freedom (2.776 for five seeds).", "",
           _md_table(pd.concat([authors.matrix, authors.column_means.to_frame().T])), ""]
    md += ["### Budgets", "", "n0: smallest label count at which RANDOM reaches 99% of its final accuracy.", "",
           _md_table(pen.budgets.set_index("dataset").assign(budgets=lambda d: d["budgets"].astype(str))), ""]
    md += ["## Normalised errors", ""]
    if "cdf" in figs:
        summary = mean_normalized_error(ne)
        md += ["Mean error divided by RANDOM's mean error at the same budget; the CDF weights each point by "
               "1/(its setting's number of budgets). Curves further up and left are better.", "",
               f"![normalised error CDF]({figs['cdf']})", "",
               "Weighted mean normalised error: "
               + ", ".join(f"{k} {v:.3f}" for k, v in summary.sort_values().items()), ""]
    else:
        md += ["No budget point: see the notes below.", ""]
    overall = times[times["dataset"] == "all"].set_index("strategy")[["mean_seconds", "total_seconds", "rounds"]]
    md += ["## Selection time", "", f"![selection times]({figs['times']})", "",
           _md_table(overall.sort_values("mean_seconds"), "{:.4f}"), "",
           "## Class diversity of acquired batches", "",
           "Entropy of the class histogram of each acquired batch, averaged over runs (higher = more diverse).", "",
           f"![class entropy]({figs['entropy']})", ""]
    md += _selection_notes_section(frame)
    md += _labels_to_accuracy_section(frame, targets)
    md += _class_balanced_section(frame, strategies, out)
    md += _provenance_section(results_dir)
    notes = pen.issues + [i for i in ne_issues if i not in pen.issues]
    md += ["## Notes on edge cases", ""]
    md += [f"- {n}" for n in notes] if notes else ["None: every comparison had paired seeds and non-zero variance."]
    md += [""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    # the same report as one page that opens anywhere: figures embedded, tables sortable
    (out / "report.html").write_text(markdown_to_html(md, out, "Active-learning benchmark report"), encoding="utf-8")
    if markdown is None:
        return path
    markdown = Path(markdown)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(out.resolve(), markdown.parent.resolve())).as_posix()
    if rel != ".":
        md = [_FIGURE.sub(lambda m: f"![{m[1]}]({rel}/{m[2]})", line) for line in md]
    markdown.write_text("\n".join(md))
    return markdown


def _short_names(datasets: pd.Series) -> pd.Series:
    """Data files by their file name (runs record them by path, which says more about where the
    files lie than about the data), unless two files share a name."""
    names = {d: Path(d.split("@", 1)[0]).name + (("@" + d.split("@", 1)[1]) if "@" in d else "")
             for d in datasets.unique()}
    names = {d: (n if "/" in d or "\\" in d else d) for d, n in names.items()}
    if len(set(names.values())) < len(names):
        return datasets
    return datasets.map(names)


#: A figure link to a file of the report folder.
_FIGURE = re.compile(r"!\[([^\]]*)\]\(([^)/]+\.png)\)")


def _claims_section(frame: pd.DataFrame) -> list[str]:
    """The BADGE paper's four claims, checked on the complete settings (only when BADGE ran)."""
    if "badge" not in set(frame["strategy"]):
        return []
    claims, settings = paper_claims(frame)
    md = ["## The BADGE paper's claims", "",
          "Each claim of Ash et al. (ICLR 2020) read off this report's own quantities, on the settings where every "
          "strategy has run every seed (a grid in progress is judged on what it has finished): "
          + (", ".join(settings) if settings else "none yet") + ".", "",
          "| source | claim | verdict | measured |", "|---|---|---|---|"]
    md += [f"| {c.source} | {c.statement} | **{c.verdict}** | {c.measured} |" for c in claims]
    return md + [""]


def _provenance_section(results_dir: str | Path) -> list[str]:
    """The grids recorded in the store (their specs as run), how many of their runs are in, and the
    compute they took."""
    from ..experiments.spec import GridSpec
    from ..experiments.store import ResultsStore

    store = ResultsStore(results_dir, create=False)
    runs = store.runs()
    md = ["## How these results were produced", ""]
    for spec in store.specs():
        try:
            keys = {k.run_id for k in GridSpec(**spec).runs()}
        except TypeError:   # a spec from another version of the format: its runs are not counted
            keys = None
        count = (f"{int(runs['run_id'].isin(keys).sum())} of its {len(keys)} runs are recorded" if keys is not None
                 else "its runs could not be counted")
        md += [f"Grid `{spec['name']}`: {count}. It runs, resumably, with "
               f"`activebatch bench <spec>.toml --out <folder> --workers 2` on this spec (as recorded):", "",
               "```toml", *(f"{k} = {json.dumps(v)}" for k, v in spec.items()), "```", ""]
    if not runs.empty:
        named = runs.assign(dataset=_short_names(runs["dataset"]))
        t = named.groupby(["dataset", "batch_size"])["seconds"].agg(["count", "median", "sum"])
        t = t.rename(columns={"count": "runs", "median": "median s per run", "sum": "total hours"})
        t["total hours"] = t["total hours"] / 3600.0
        t.index = [f"{d}, B = {b}" for d, b in t.index]
        t.index.name = "setting"
        md += [f"Compute: {runs['seconds'].sum() / 3600.0:.1f} hours over {len(runs)} runs (each run on one core; "
               "wall time is this divided by the workers).", "", _md_table(t, "{:.1f}"), ""]
    failures = store.failures()
    if not failures.empty:
        retried = int(failures["run_id"].isin(set(runs["run_id"])).sum())
        md += [f"{len(failures)} failed attempt(s) are recorded in the store's `failures` table; "
               f"{retried} of them completed when retried.", ""]
    return md


def _selection_notes_section(frame: pd.DataFrame) -> list[str]:
    """What strategies said about their selections (``Selection.notes``: BatchBALD saturating,
    a k-DPP batch padded beyond its kernel's rank), counted per setting; nothing when none spoke."""
    if "selection_notes" not in frame:
        return []
    sel = frame[frame["round"] > 0]
    kept = sel[sel["selection_notes"].notna()]
    noted = kept[kept["selection_notes"].map(len) > 0]
    if noted.empty:
        return []
    keys = ["strategy", "dataset", "batch_size"]
    counts = kept.assign(noted=kept["selection_notes"].map(len) > 0).groupby(keys)["noted"].agg(["sum", "size"])
    first = noted.groupby(keys)["selection_notes"].first().map(lambda notes: notes[0])
    table = counts[counts["sum"] > 0].join(first.rename("first note"))
    table = table.reset_index()
    table["dataset"] = _short_names(table["dataset"])
    table["setting"] = table["strategy"] + ", " + table["dataset"] + ", B = " + table["batch_size"].astype(str)
    table["rounds noted"] = table["sum"].astype(int).astype(str) + " of " + table["size"].astype(int).astype(str)
    md = ["## Selection notes", "",
          "Rounds whose selection the strategy annotated (e.g. BatchBALD saturating: the rest of the batch "
          "were ties drawn at random; a k-DPP batch padded beyond its kernel's rank), with the first such note.",
          ""]
    md += [_md_table(table.set_index("setting")[["rounds noted", "first note"]]), ""]
    missing = len(sel) - len(kept)
    if missing:
        md += [f"{missing} of {len(sel)} selection rounds were recorded before notes were kept and are not "
               "counted.", ""]
    return md


def _labels_to_accuracy_section(frame: pd.DataFrame, targets: tuple[float, ...]) -> list[str]:
    table = labels_to_accuracy(frame, targets)
    md = ["## Labels to reach a target accuracy", "",
          "Per run, the first label count with test accuracy at or above the target; median and quartiles over "
          "seeds (empirical quantiles: with five seeds, the third, second and fourth smallest counts; 'never' where "
          "too few runs reached it within their budget).", ""]
    reached = table[table.groupby(SETTING + ["target"])["reached"].transform("max") > 0]
    if reached.empty:
        return md + [f"No run reached {', '.join(f'{t:.0%}' for t in targets)} test accuracy.", ""]

    def fmt(v: float) -> str:
        return "never" if not np.isfinite(v) else str(int(v))

    for (d, b, m, t), g in reached.groupby(SETTING + ["target"], sort=True):
        rows = g.set_index("strategy").sort_values(["median", "q75"])
        shown = pd.DataFrame({"median": rows["median"].map(fmt),
                              "quartiles": [f"{fmt(a)}-{fmt(c)}" for a, c in zip(rows["q25"], rows["q75"])],
                              "reached": [f"{r}/{n}" for r, n in zip(rows["reached"], rows["seeds"])]},
                             index=rows.index)
        md += [f"**{d}, {m}, batch size {b}: labels to reach {t:.0%}**", "", _md_table(shown), ""]
    return md


def _class_balanced_section(frame: pd.DataFrame, strategies: list[str], out: Path) -> list[str]:
    """Penalty matrix on balanced accuracy, for the long-tailed settings (data sets named
    ``<name>@imbalance=R``) whose runs recorded it."""
    lt = frame[frame["dataset"].str.contains("@imbalance=", regex=False)]
    if lt.empty or "balanced_accuracy" not in lt.columns or lt["balanced_accuracy"].isna().all():
        return []
    bal = with_metric(lt, "balanced_accuracy")
    pen = penalty_matrix(bal, strategies=[s for s in strategies if s in set(bal["strategy"])])
    plot_penalty_matrix(pen, out / "penalty_matrix_balanced_accuracy.png",
                        "Penalty matrix on balanced accuracy, long-tailed pools")
    plot_learning_curves_grid(learning_curves(bal), out / "learning_curves_balanced_accuracy.png",
                              "balanced test accuracy")
    by_ratio = _by_imbalance_ratio(frame, strategies)
    last = bal.loc[bal.groupby(SETTING + ["strategy", "seed"])["n_labeled"].idxmax()]
    final = last.groupby(["dataset", "strategy"])[["test_accuracy", "macro_f1", "class_entropy"]].mean()
    final = final.rename(columns={"test_accuracy": "balanced_accuracy"}).reset_index()
    final.index = final.pop("dataset") + " / " + final.pop("strategy")
    final.index.name = "data set / strategy"
    return ["## Long-tailed pools", "",
            "Pools with a long-tailed class distribution (`<data set>@imbalance=R`: Cui et al.'s exponential profile, "
            "class 0 the head, imbalance ratio R, balanced test set). The penalty matrix below is computed as above "
            "but on balanced accuracy (mean per-class recall) instead of accuracy.", "",
            "![penalty matrix, balanced accuracy](penalty_matrix_balanced_accuracy.png)", "",
            _md_table(pd.concat([pen.matrix, pen.column_means.to_frame().T])), "",
            "Balanced accuracy as labels are added (mean over seeds; the band is one standard error):", "",
            "![learning curves, balanced accuracy](learning_curves_balanced_accuracy.png)", ""] + by_ratio + [
            "At each run's last round, mean over seeds: balanced accuracy, macro-F1 and the entropy of the classes "
            "acquired in that round.", "",
            _md_table(final), ""]


def _short_strategies(frame: pd.DataFrame, pen: PenaltyResult, strategies: list[str]) -> tuple[int, list[str]]:
    """(number of settings of the matrix, "strategy in n" for each strategy that ran in fewer)."""
    scored = pen.budgets[pen.budgets["budgets"].map(len) > 0][SETTING]
    ran = frame[SETTING + ["strategy"]].drop_duplicates().merge(scored, on=SETTING)
    counts = ran.groupby("strategy").size()
    return len(scored), [f"{s} in {int(counts.get(s, 0))}" for s in strategies
                         if int(counts.get(s, 0)) < len(scored)]


def _coverage_note(frame: pd.DataFrame, pen: PenaltyResult, strategies: list[str]) -> list[str]:
    """Which strategies did not run in every setting of the matrix: there they can neither win nor
    lose, so their column means are not comparable with the others' (a grid in progress)."""
    n, short = _short_strategies(frame, pen, strategies)
    if not short:
        return []
    return [f"Not every strategy ran in every one of the {n} settings above: {', '.join(short)}. "
            "Where a strategy did not run it neither wins nor loses, so its column mean is not comparable with "
            "those of the strategies that ran everywhere; the claims above use only the settings every strategy "
            "completed.", ""]


def _by_dataset_section(frame: pd.DataFrame, strategies: list[str]) -> list[str]:
    """Column means of each data set's own penalty matrix: where a strategy's rank comes from (e.g.
    whether it holds up on the data set with many fine-grained classes)."""
    if frame["dataset"].nunique() < 2:
        return []
    by = penalty_matrices_by(frame, "dataset", strategies=strategies)
    # a strategy that did not run on a data set gets no entry there ("-"), not a column mean of 0
    table = pd.DataFrame({f"{d} (max {res.n_settings})":
                          res.column_means.where(res.column_means.index.isin(set(frame.loc[frame["dataset"] == d,
                                                                                            "strategy"])))
                          for d, res in by.items() if res.n_settings})
    if table.empty:
        return []
    table.index.name = "strategy"
    return ["### By data set", "",
            "Column means of each data set's own penalty matrix (its batch sizes and models; lower is better"
            + ("; a dash where the strategy did not run)." if table.isna().any().any() else ")."), "",
            _md_table(table, "{:.2f}"), ""]


def _by_imbalance_ratio(frame: pd.DataFrame, strategies: list[str]) -> list[str]:
    """Which strategies hold up as the pool grows more long-tailed: on balanced accuracy, the
    penalty matrix's column mean and the weighted mean normalised error over the settings of each
    imbalance ratio (ratio 1: the same data sets as they are, when the grid ran them)."""
    from ..datasets.imbalance import format_ratio, parse_name

    parsed = frame["dataset"].map(parse_name)
    bases = {b for b, r in parsed if r is not None}
    ratio = parsed.map(lambda br: br[1] if br[1] is not None else (1.0 if br[0] in bases else None))
    frame = frame[ratio.notna() & frame["balanced_accuracy"].notna()]
    ratio = ratio[frame.index]
    columns = {}
    for r in sorted(ratio.unique()):
        bal = with_metric(frame[ratio == r], "balanced_accuracy")
        names = [s for s in strategies if s in set(bal["strategy"])]
        pen = penalty_matrix(bal, strategies=names)
        if pen.n_settings == 0:
            continue
        columns[f"penalty, R = {format_ratio(r)}"] = pen.column_means
        columns[f"normalised error, R = {format_ratio(r)}"] = mean_normalized_error(normalized_errors(bal)[0])
    if not columns:
        return []
    table = pd.DataFrame(columns).reindex([s for s in strategies if s in set(frame["strategy"])])
    table.index.name = "strategy"
    return ["By imbalance ratio R, on balanced accuracy: each strategy's column mean of the penalty matrix over "
            "that ratio's settings (lower is better; at most the number of settings) and its weighted mean "
            "normalised error (its balanced error over RANDOM's; below 1 beats random).", "",
            _md_table(table), ""]
