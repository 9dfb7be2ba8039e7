"""The BADGE paper's headline claims, checked against a results frame.

Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds" (ICLR 2020)
draws four conclusions from its grid, each read here off the same protocol quantities the report
prints (:mod:`activebatch.analysis.protocol`):

1. *Figure 4*: BADGE has the lowest column mean of the overall pairwise penalty matrix (it is
   beaten least often).
2. *Figure 5*: BADGE and margin sampling keep a normalised error of at most 1.2 at every budget
   of every setting (they are never much worse than random).
3. *Figure 3 and section 5*: core-set does worse than random with an MLP on some data sets.
4. *Appendix E*: margin sampling degrades at the larger batch size (its normalised error, relative
   to random, rises from B = 100 to B = 1,000).

Only *complete* settings are used: a (data set, batch size, model) counts once every strategy in
it has run every seed that any strategy there has run. A grid in progress therefore gives verdicts
on what it has finished, never on a penalty matrix in which a missing strategy scores zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .protocol import SETTING, mean_normalized_error, normalized_errors, penalty_matrix

__all__ = ["Claim", "complete_settings", "paper_claims", "NE_LIMIT"]

#: Figure 5's bound on BADGE's and margin's normalised errors.
NE_LIMIT = 1.2


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and what the results say about it.

    ``verdict`` is ``"holds"``, ``"does not hold"`` or ``"not measured"`` (the results lack the
    strategies, settings or budgets it needs); ``measured`` says what was found, in numbers.
    """

    source: str
    statement: str
    verdict: str
    measured: str


def complete_settings(frame: pd.DataFrame, strategies: list[str] | None = None) -> pd.DataFrame:
    """The rows of ``frame`` in settings where every strategy (of ``strategies``, default all in the
    frame) has run the same, largest set of seeds; other settings are dropped."""
    strategies = sorted(frame["strategy"].unique()) if strategies is None else list(strategies)
    frame = frame[frame["strategy"].isin(strategies)]
    keep = []
    for key, g in frame.groupby(SETTING, sort=True):
        seeds = g.groupby("strategy")["seed"].agg(lambda s: frozenset(s.unique()))
        if len(seeds) == len(strategies) and len(set(seeds)) == 1:
            keep.append(key)
    if not keep:
        return frame.iloc[:0]
    index = pd.MultiIndex.from_tuples(keep, names=SETTING)
    return frame[pd.MultiIndex.from_frame(frame[SETTING]).isin(index)]


def _label(row: pd.Series | tuple) -> str:
    d, b, m = (row[c] for c in SETTING) if isinstance(row, pd.Series) else row
    return f"{d}/B={b}/{m}"


def paper_claims(frame: pd.DataFrame) -> tuple[list[Claim], list[str]]:
    """Check the paper's four claims (module docstring) on the complete settings of ``frame``.

    Returns
    -------
    (claims, settings): the four :class:`Claim` objects, and the labels of the complete settings
    they were measured on.
    """
    strategies = sorted(frame["strategy"].unique())
    full = complete_settings(frame, strategies)
    settings = [_label(k) for k, _ in full.groupby(SETTING, sort=True)] if len(full) else []
    ne = normalized_errors(full)[0] if len(full) and "random" in strategies else pd.DataFrame()
    return [_fig4(full, strategies), _fig5(ne), _coreset(full, ne), _margin_batch(ne)], settings


def _fig4(full: pd.DataFrame, strategies: list[str]) -> Claim:
    source, statement = "Figure 4", "BADGE has the lowest column mean of the overall penalty matrix."
    if "badge" not in strategies or "random" not in strategies or len(strategies) < 2 or full.empty:
        return Claim(source, statement, "not measured", "needs BADGE, random and complete settings")
    parts, verdicts = [], []
    for rule in ("paper", "authors"):
        result = penalty_matrix(full, strategies=strategies, rule=rule)
        if result.n_settings == 0:   # an all-zero matrix would make every strategy "lowest"
            return Claim(source, statement, "not measured", "no setting has a budget under the protocol's rule")
        means = result.column_means.sort_values(kind="stable")
        best = float(means.min())
        lowest = bool(np.isclose(means["badge"], best))
        tied = [s for s in means.index if s != "badge" and np.isclose(means[s], means["badge"])]
        verdicts.append(lowest)
        order = ", ".join(f"{s} {v:.2f}" for s, v in means.items())
        who = "the paper's" if rule == "paper" else "the authors'"
        tie = f" (tied with {', '.join(tied)})" if lowest and tied else ""
        parts.append(f"{who} rule: BADGE {'lowest' + tie if lowest else 'not lowest'}; {order}")
    verdict = "holds" if all(verdicts) else "does not hold"
    return Claim(source, statement, verdict, "; ".join(parts))


def _fig5(ne: pd.DataFrame) -> Claim:
    source = "Figure 5"
    statement = f"BADGE and margin keep a normalised error of at most {NE_LIMIT} at every budget of every setting."
    have = [s for s in ("badge", "margin") if not ne.empty and s in set(ne["strategy"])]
    if len(have) < 2:
        return Claim(source, statement, "not measured", "needs BADGE, margin and random at some budget")
    parts, ok = [], True
    for s in have:
        g = ne[ne["strategy"] == s]
        worst = g.loc[g["normalized_error"].idxmax()]
        over = int((g["normalized_error"] > NE_LIMIT).sum())
        ok &= over == 0
        parts.append(f"{s}: largest {worst['normalized_error']:.3f} ({_label(worst)}, {int(worst['budget'])} labels), "
                     f"{over} of {len(g)} points above {NE_LIMIT}")
    return Claim(source, statement, "holds" if ok else "does not hold", "; ".join(parts))


def _coreset(full: pd.DataFrame, ne: pd.DataFrame) -> Claim:
    source, statement = "Figure 3, section 5", "Core-set does worse than random with an MLP on some data sets."
    mlp = ne[ne["model"] == "mlp"] if not ne.empty else ne
    if mlp.empty or "coreset" not in set(mlp["strategy"]):
        return Claim(source, statement, "not measured", "needs core-set and random with the MLP at some budget")
    worse, parts = [], []
    for key, g in mlp.groupby(SETTING, sort=True):
        c = g[g["strategy"] == "coreset"]
        if c.empty:
            continue
        setting = full[(full["dataset"] == key[0]) & (full["batch_size"] == key[1]) & (full["model"] == key[2])]
        pen = penalty_matrix(setting, strategies=["coreset", "random"])
        lost, won = float(pen.matrix.loc["random", "coreset"]), float(pen.matrix.loc["coreset", "random"])
        m = float(mean_normalized_error(c)["coreset"])
        parts.append(f"{_label(key)}: mean normalised error {m:.3f}, random better at {lost:.2f} and core-set "
                     f"better at {won:.2f} of the budgets")
        if m > 1.0 and lost > won:
            worse.append(_label(key))
    found = f"worse than random (mean normalised error > 1 and beaten more often than not) on {len(worse)} of " \
            f"{len(parts)} MLP settings" + (f": {', '.join(worse)}" if worse else "")
    return Claim(source, statement, "holds" if worse else "does not hold", found + ". " + "; ".join(parts))


def _margin_batch(ne: pd.DataFrame) -> Claim:
    source, statement = "Appendix E", "Margin sampling degrades at the larger batch size (relative to random)."
    if ne.empty or "margin" not in set(ne["strategy"]) or ne["batch_size"].nunique() < 2:
        return Claim(source, statement, "not measured", "needs margin and random at two batch sizes")
    sizes = sorted(ne["batch_size"].unique())
    small, large = sizes[0], sizes[-1]
    # like for like: the data sets and models complete at both batch sizes
    both = set(map(tuple, ne.loc[ne["batch_size"] == small, ["dataset", "model"]].drop_duplicates().values)) & \
        set(map(tuple, ne.loc[ne["batch_size"] == large, ["dataset", "model"]].drop_duplicates().values))
    if not both:
        return Claim(source, statement, "not measured",
                     f"no data set is complete at both B = {small} and B = {large} yet")
    pairs = pd.MultiIndex.from_tuples(sorted(both), names=["dataset", "model"])
    sub = ne[pd.MultiIndex.from_frame(ne[["dataset", "model"]]).isin(pairs)]
    means = {b: mean_normalized_error(sub[sub["batch_size"] == b]) for b in (small, large)}
    m_small, m_large = float(means[small]["margin"]), float(means[large]["margin"])
    extra = ""
    if "badge" in means[small].index:
        extra = (f"; BADGE {float(means[small]['badge']):.3f} at B = {small} and "
                 f"{float(means[large]['badge']):.3f} at B = {large}")
    measured = (f"margin's mean normalised error {m_small:.3f} at B = {small} and {m_large:.3f} at B = {large} "
                f"over {', '.join(f'{d}/{m}' for d, m in sorted(both))}{extra}")
    return Claim(source, statement, "holds" if m_large > m_small else "does not hold", measured)
