"""The BADGE paper's evaluation protocol (Ash et al., ICLR 2020, section 4 and appendices C-F).

Definitions, for each setting (D, B, A) = (dataset, batch size, model) with M initial labels:

* **Budgets.** RANDOM's learning curve is its mean test accuracy over seeds at each label count.
  n0 is the smallest label count at which it reaches 99% of its final accuracy (the accuracy at
  the largest label count RANDOM was run to). The budgets are
  L in {M + 2^(i-1) B : i = 1 .. floor(log2((n0 - M) / B))}, the label counts at which learning
  still progresses; n_{D,B,A} is how many there are.
* **Pairwise penalty matrix.** At each budget, for strategies i and j over the n seeds run by both
  (paired seeds), with test errors e = 1 - accuracy and d = e_j - e_i:
  z = sqrt(n) * mean(d) / std(d) (sample std, ddof = 1). i beats j when z > 1.96 (its error is
  significantly lower; the paper's text, ``rule="paper"``), or, as the authors' aggregation script
  does (``rule="authors"``), when a one-sample t-test of d has p < 0.05 two-sided with mean(d) > 0,
  that is z > the 97.5% quantile of Student's t with n - 1 degrees of freedom (2.776 for 5 seeds);
  each adds 1 / n_{D,B,A} to P[i, j]. Entries therefore count settings: the
  largest possible value is the number of settings compared. The summary is the mean of each
  column over all strategies (how often a strategy is beaten; lower is better).
* **Normalised error.** ne_i = mean error of i / mean error of RANDOM at the same (D, B, A, L),
  each point weighted 1 / n_{D,B,A}; its weighted CDF over all points compares strategies.

Edge cases follow fixed rules, and each occurrence is listed in ``issues`` of the result:

* zero variance (every paired difference equal): a non-zero mean is treated as significant in its
  direction (z = +inf or -inf); a zero mean is a tie (z = 0), and no one wins;
* fewer than two paired seeds at a budget: that comparison is skipped (no std);
* a setting without RANDOM runs, or whose rule yields no budget (floor(log2((n0 - M) / B)) < 1,
  that is n0 < M + 2B), contributes nothing;
* a budget that a strategy never reached (e.g. the pool ran out) is skipped for that strategy.

RANDOM's mean error at a budget is always positive (a budget lies before n0, where RANDOM is
below 99% of its final accuracy), so normalised errors are always defined.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["SETTING", "budgets_for_setting", "budget_table", "learning_curves", "penalty_matrix",
           "penalty_matrices_by", "normalized_errors", "normalized_error_cdf", "selection_times",
           "PenaltyResult", "Z_CRITICAL", "labels_to_accuracy", "with_metric", "mean_normalized_error"]

#: Columns identifying a setting (D, B, A).
SETTING = ["dataset", "batch_size", "model"]
#: Two-sided 95% critical value of the standard normal, the paper's significance level.
Z_CRITICAL = 1.96
# Accuracies are multiples of 1 / n_test, so paired differences are exact up to float rounding;
# spreads below this are zero variance.
_ZERO = 1e-12


def _check_frame(frame: pd.DataFrame) -> None:
    need = {"dataset", "model", "batch_size", "strategy", "seed", "round", "n_labeled", "test_accuracy"}
    missing = need - set(frame.columns)
    if missing:
        raise ValueError(f"results frame lacks column(s) {sorted(missing)}; it needs the results-store columns")


def learning_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy and its standard error over seeds, per setting, strategy and label count.

    Returns columns dataset, batch_size, model, strategy, n_labeled, mean, sem, n_seeds.
    """
    _check_frame(frame)
    g = frame.groupby(SETTING + ["strategy", "n_labeled"])["test_accuracy"]
    out = g.agg(mean="mean", std="std", n_seeds="count").reset_index()
    out["sem"] = (out.pop("std") / np.sqrt(out["n_seeds"])).fillna(0.0)
    return out[SETTING + ["strategy", "n_labeled", "mean", "sem", "n_seeds"]]


def budgets_for_setting(frame: pd.DataFrame, baseline: str = "random") -> dict:
    """n0 and the budgets of one setting's rows (see the module docstring).

    Returns a dict with keys M, B, final_accuracy, n0, budgets (list of label counts) and reason
    (None, or why there is no budget).
    """
    first = frame["round"] == 0
    M = int(frame.loc[first, "n_labeled"].min()) if first.any() else int(frame["n_labeled"].min())
    B = int(frame["batch_size"].iloc[0])
    info = {"M": M, "B": B, "final_accuracy": math.nan, "n0": None, "budgets": [], "reason": None}
    rand = frame[frame["strategy"] == baseline]
    if rand.empty:
        info["reason"] = f"no {baseline.upper()} runs"
        return info
    curve = rand.groupby("n_labeled")["test_accuracy"].mean().sort_index()
    final = float(curve.iloc[-1])
    n0 = int(curve.index[np.argmax(curve.to_numpy() >= 0.99 * final)])
    info["final_accuracy"], info["n0"] = final, n0
    ratio = (n0 - M) / B
    imax = int(math.floor(math.log2(ratio))) if ratio > 0 else 0
    if imax < 1:
        info["reason"] = f"budget rule yields nothing: n0 = {n0}, M = {M}, B = {B}, floor(log2((n0 - M)/B)) < 1"
        return info
    info["budgets"] = [M + 2 ** (i - 1) * B for i in range(1, imax + 1)]
    return info


def budget_table(frame: pd.DataFrame, baseline: str = "random") -> pd.DataFrame:
    """One row per setting: M, B, RANDOM's final accuracy, n0, the budgets and any reason for none."""
    _check_frame(frame)
    rows = []
    for key, g in frame.groupby(SETTING, sort=True):
        info = budgets_for_setting(g, baseline)
        rows.append(dict(zip(SETTING, key), **info, n_budgets=len(info["budgets"])))
    return pd.DataFrame(rows, columns=SETTING + ["M", "B", "final_accuracy", "n0", "budgets", "n_budgets", "reason"])


@dataclass
class PenaltyResult:
    """Output of :func:`penalty_matrix`.

    Attributes
    ----------
    matrix : DataFrame (strategies x strategies)
        P[i, j]: weighted number of settings in which row strategy i beats column strategy j.
    column_means : Series
        Mean of each column over all rows (lower is better).
    n_settings : int
        Settings that contributed at least one budget: the largest possible entry.
    budgets : DataFrame
        :func:`budget_table` of the frame.
    comparisons : DataFrame
        Every comparison made: setting, budget, i, j, n, mean, std, z, win.
    issues : list of str
        Every edge case met, with the rule applied.
    """

    matrix: pd.DataFrame
    column_means: pd.Series
    n_settings: int
    budgets: pd.DataFrame
    comparisons: pd.DataFrame
    issues: list[str] = field(default_factory=list)


#: The two aggregation rules of :func:`penalty_matrix`.
RULES = ("paper", "authors")


def t_critical(n: int, alpha: float = 0.05) -> float:
    """The two-sided critical value of a one-sample t-test on n paired differences (n - 1 degrees
    of freedom): 2.776 for n = 5 at alpha = 0.05."""
    from scipy.stats import t

    return float(t.ppf(1.0 - alpha / 2.0, n - 1))


def _paired_z(d: np.ndarray) -> tuple[float, float, float]:
    mean = float(d.mean())
    std = float(d.std(ddof=1))
    if std <= _ZERO:
        if abs(mean) <= _ZERO:
            return 0.0, 0.0, 0.0
        return mean, 0.0, math.copysign(math.inf, mean)
    return mean, std, math.sqrt(len(d)) * mean / std


def penalty_matrix(frame: pd.DataFrame, *, baseline: str = "random", strategies: list[str] | None = None,
                   z_critical: float = Z_CRITICAL, rule: str = "paper") -> PenaltyResult:
    """The pairwise penalty matrix of Ash et al. (ICLR 2020, section 4, Figure 3).

    Parameters
    ----------
    frame : DataFrame
        Results-store rows (columns dataset, model, batch_size, strategy, seed, round, n_labeled,
        test_accuracy).
    baseline : str
        The strategy whose curve fixes the budgets (RANDOM).
    strategies : list of str, optional
        Order of rows/columns; default: sorted strategy names of the frame.
    z_critical : float
        Significance threshold on z under the paper's rule (1.96: two-sided 95%).
    rule : {"paper", "authors"}, default "paper"
        ``"paper"``: i beats j when z > ``z_critical`` (the paper's text). ``"authors"``: when a
        one-sample t-test of the paired differences rejects at p < 0.05 (two-sided) in i's favour,
        i.e. z > t_{0.975, n-1} (the authors' aggregation script).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}; got {rule!r}")
    _check_frame(frame)
    names = strategies or sorted(frame["strategy"].unique())
    P = pd.DataFrame(0.0, index=pd.Index(names, name="winner"), columns=pd.Index(names, name="loser"))
    issues: list[str] = []
    comps: list[dict] = []
    budgets = budget_table(frame, baseline)
    n_settings = 0
    for _, b in budgets.iterrows():
        setting = tuple(b[c] for c in SETTING)
        label = "/".join(str(s) for s in setting)
        if not b["budgets"]:
            issues.append(f"{label}: skipped, {b['reason']}")
            continue
        n_settings += 1
        weight = 1.0 / len(b["budgets"])
        g = frame[(frame["dataset"] == setting[0]) & (frame["batch_size"] == setting[1])
                  & (frame["model"] == setting[2])]
        ran = set(g["strategy"])
        absent = [s for s in names if s not in ran]
        if absent:   # a grid in progress or with exclusions: they can neither win nor lose here
            issues.append(f"{label}: {', '.join(absent)} did not run in this setting; "
                          "its entries count nothing here")
        for L in b["budgets"]:
            at = g[g["n_labeled"] == L]
            err = at.pivot_table(index="seed", columns="strategy", values="test_accuracy", aggfunc="mean")
            err = 1.0 - err
            for s in names:
                if s in g["strategy"].values and s not in err.columns:
                    issues.append(f"{label} L={L}: {s} has no result at this budget; its comparisons are skipped")
            for i in names:
                for j in names:
                    if i == j or i not in err.columns or j not in err.columns:
                        continue
                    pair = err[[i, j]].dropna()
                    n = len(pair)
                    if n < 2:
                        if i < j:
                            issues.append(f"{label} L={L}: {i} vs {j} has {n} paired seed(s); comparison skipped")
                        continue
                    if n < len(err) and i < j:
                        issues.append(f"{label} L={L}: {i} vs {j} uses {n} of {len(err)} seeds (missing seeds)")
                    mean, std, z = _paired_z((pair[j] - pair[i]).to_numpy())
                    if std == 0.0 and i < j:
                        issues.append(f"{label} L={L}: {i} vs {j} has zero variance over {n} seeds "
                                      f"(mean difference {mean:+.4g}; rule: "
                                      + ("tie" if mean == 0.0 else "significant in its direction") + ")")
                    win = z > (z_critical if rule == "paper" else t_critical(n))
                    if win:
                        P.loc[i, j] += weight
                    comps.append(dict(dataset=setting[0], batch_size=setting[1], model=setting[2], budget=L,
                                      i=i, j=j, n=n, mean=mean, std=std, z=z, win=win))
    comp_df = pd.DataFrame(comps, columns=SETTING + ["budget", "i", "j", "n", "mean", "std", "z", "win"])
    return PenaltyResult(P, P.mean(axis=0).rename("column mean"), n_settings, budgets, comp_df, issues)


def penalty_matrices_by(frame: pd.DataFrame, column: str, **kwargs) -> dict:
    """:func:`penalty_matrix` for each value of ``column`` (e.g. "batch_size" or "model"; the
    paper's Figures 13 and 14)."""
    names = kwargs.pop("strategies", None) or sorted(frame["strategy"].unique())
    return {value: penalty_matrix(g, strategies=names, **kwargs) for value, g in frame.groupby(column, sort=True)}


def normalized_errors(frame: pd.DataFrame, *, baseline: str = "random") -> tuple[pd.DataFrame, list[str]]:
    """Normalised errors at every budget point, with their weights 1 / n_{D,B,A}.

    Returns (table, issues); the table has columns dataset, batch_size, model, budget, strategy,
    mean_error, normalized_error, weight.
    """
    _check_frame(frame)
    rows, issues = [], []
    for _, b in budget_table(frame, baseline).iterrows():
        setting = tuple(b[c] for c in SETTING)
        label = "/".join(str(s) for s in setting)
        if not b["budgets"]:
            issues.append(f"{label}: skipped, {b['reason']}")
            continue
        w = 1.0 / len(b["budgets"])
        g = frame[(frame["dataset"] == setting[0]) & (frame["batch_size"] == setting[1])
                  & (frame["model"] == setting[2])]
        for L in b["budgets"]:
            errs = 1.0 - g[g["n_labeled"] == L].groupby("strategy")["test_accuracy"].mean()
            if baseline not in errs.index:
                issues.append(f"{label} L={L}: {baseline.upper()} has no result; point skipped")
                continue
            base = float(errs[baseline])  # > 0 by the budget rule (see the module docstring)
            for s, e in errs.items():
                rows.append(dict(dataset=setting[0], batch_size=setting[1], model=setting[2], budget=L,
                                 strategy=s, mean_error=float(e), normalized_error=float(e) / base, weight=w))
    cols = SETTING + ["budget", "strategy", "mean_error", "normalized_error", "weight"]
    return pd.DataFrame(rows, columns=cols), issues


def mean_normalized_error(ne: pd.DataFrame) -> pd.Series:
    """Each strategy's mean normalised error over the points of ``ne`` (a :func:`normalized_errors`
    table), weighted 1 / n_{D,B,A} as the CDF weights them."""
    return ne.groupby("strategy").apply(lambda g: float(np.average(g["normalized_error"], weights=g["weight"])),
                                        include_groups=False)


def normalized_error_cdf(frame: pd.DataFrame, *, baseline: str = "random") -> pd.DataFrame:
    """Weighted CDF of normalised errors per strategy (Ash et al., Figures 5, 15, 16).

    Returns columns strategy, normalized_error, weight, cdf: for each strategy its points sorted by
    normalised error, ``cdf`` being the cumulative share of weight up to and including each point.
    """
    ne, _ = normalized_errors(frame, baseline=baseline)
    parts = []
    for s, g in ne.groupby("strategy", sort=True):
        g = g.sort_values("normalized_error", kind="stable")
        cdf = g["weight"].cumsum() / g["weight"].sum()
        parts.append(pd.DataFrame({"strategy": s, "normalized_error": g["normalized_error"].to_numpy(),
                                   "weight": g["weight"].to_numpy(), "cdf": cdf.to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=["strategy", "normalized_error", "weight", "cdf"])
    return pd.concat(parts, ignore_index=True)


def selection_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Selection running time per strategy (Ash et al., Appendix F): mean and total seconds per
    selection round (round 0, the random initial set, excluded), per setting and overall."""
    _check_frame(frame)
    sel = frame[frame["round"] > 0]
    per = sel.groupby(SETTING + ["strategy"])["select_seconds"].agg(mean_seconds="mean", total_seconds="sum",
                                                                    rounds="count").reset_index()
    overall = sel.groupby("strategy")["select_seconds"].agg(mean_seconds="mean", total_seconds="sum",
                                                            rounds="count").reset_index()
    for c in SETTING:
        overall[c] = "all"
    return pd.concat([per, overall[per.columns]], ignore_index=True)


def with_metric(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``frame`` with ``test_accuracy`` replaced by another per-round test metric (e.g.
    ``"balanced_accuracy"`` or ``"macro_f1"``), so the protocol's functions (budgets, penalty
    matrix, normalised errors) run on it unchanged; rounds without that metric are dropped."""
    _check_frame(frame)
    if metric not in frame.columns:
        raise ValueError(f"results frame has no column {metric!r}")
    out = frame[frame[metric].notna()].copy()
    out["test_accuracy"] = out[metric].astype(float)
    return out


def labels_to_accuracy(frame: pd.DataFrame, targets: tuple[float, ...] = (0.9, 0.95)) -> pd.DataFrame:
    """Labels each strategy needs to reach each target test accuracy (Kirsch et al., BatchBALD,
    NeurIPS 2019, Table 1: labels to reach 90% and 95% on MNIST).

    For every run, the smallest ``n_labeled`` whose test accuracy is >= the target; over the seeds
    of a setting and strategy, the median and quartiles of those counts. A run that never reaches
    the target counts as needing more than it was run for (+inf), so the median is +inf when fewer
    than half the seeds reach it; ``reached`` says how many did. The quantiles are empirical (the
    smallest count with at least that share of the seeds at or below it: for five seeds the median
    is the third smallest count, the quartiles the second and fourth), so they are label counts
    that some run actually needed, and defined when some runs never reach the target.

    Returns
    -------
    DataFrame with the setting columns, ``strategy``, ``target``, ``median``, ``q25``, ``q75``,
    ``reached`` and ``seeds``.
    """
    _check_frame(frame)
    rows = []
    for target in targets:
        hit = frame[frame["test_accuracy"] >= target]
        first = hit.groupby(SETTING + ["strategy", "seed"])["n_labeled"].min()
        runs = frame.groupby(SETTING + ["strategy", "seed"]).size().index
        per_run = first.reindex(runs).astype(float).fillna(np.inf)
        for key, counts in per_run.groupby(level=list(range(len(SETTING) + 1))):
            v = counts.to_numpy()
            q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75], method="inverted_cdf")
            rows.append(dict(zip(SETTING + ["strategy"], key), target=float(target), median=float(med),
                             q25=float(q25), q75=float(q75), reached=int(np.isfinite(v).sum()), seeds=int(v.size)))
    cols = SETTING + ["strategy", "target", "median", "q25", "q75", "reached", "seeds"]
    return pd.DataFrame(rows, columns=cols)
