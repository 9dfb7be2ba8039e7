"""One active-learning run: initial random labels, then train -> evaluate -> select -> label."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_labels
from .data.pool import Pool
from .learner import Learner
from .strategies import Strategy, get

__all__ = ["run", "History", "RoundRecord", "class_entropy", "RESULT_COLUMNS"]

#: Columns of :meth:`History.to_frame`, as in DESIGN.md ("Results").
RESULT_COLUMNS = ["dataset", "model", "batch_size", "strategy", "seed", "round", "n_labeled",
                  "test_accuracy", "train_seconds", "select_seconds", "class_histogram",
                  "class_entropy", "train_epochs", "train_accuracy"]


@dataclass
class RoundRecord:
    """One round of a run: the batch just labeled and the model trained afterwards."""

    round: int
    n_labeled: int
    test_accuracy: float
    train_seconds: float
    select_seconds: float
    train_epochs: int
    train_accuracy: float
    selected: np.ndarray           # pool indices labeled in this round, in selection order
    class_histogram: list[int]     # labels of ``selected`` counted per class


@dataclass
class History:
    """The rounds of one run, with the run's identifying fields."""

    dataset: str
    model: str
    strategy: str
    batch_size: int
    seed: int | None
    n_classes: int
    rounds: list[RoundRecord] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per round with the DESIGN.md results columns; ``class_histogram`` holds a
        list of K counts of the labels acquired in that round and ``class_entropy`` its entropy."""
        rows = [{
            "dataset": self.dataset, "model": self.model, "batch_size": self.batch_size,
            "strategy": self.strategy, "seed": self.seed, "round": r.round, "n_labeled": r.n_labeled,
            "test_accuracy": r.test_accuracy, "train_seconds": r.train_seconds,
            "select_seconds": r.select_seconds, "class_histogram": list(r.class_histogram),
            "class_entropy": class_entropy(r.class_histogram),
            "train_epochs": r.train_epochs, "train_accuracy": r.train_accuracy,
        } for r in self.rounds]
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)

    @property
    def selections(self) -> list[np.ndarray]:
        """Pool indices labeled in each round (round 0: the initial random set)."""
        return [r.selected for r in self.rounds]


def class_entropy(histogram: "list[int] | np.ndarray") -> float:
    """Entropy (nats) of the class distribution of an acquired batch, from its histogram.

    The diversity measure of Kirsch et al. (BatchBALD, NeurIPS 2019, blog Figures 13/14): log K for
    a batch spread evenly over K classes, 0 for a batch of one class (or an empty batch).
    """
    h = np.asarray(histogram, dtype=np.float64)
    total = h.sum()
    if total <= 0:
        return 0.0
    p = h[h > 0] / total
    return float(-(p * np.log(p)).sum())


def _histogram(labels: np.ndarray, k: int) -> list[int]:
    return np.bincount(labels, minlength=k)[:k].astype(int).tolist()


def run(pool: Pool, learner: Learner, strategy: "str | Strategy", *, initial: int = 100, batch_size: int,
        rounds: int, test: tuple[Any, Any], seed: int | None = 0, strategy_options: dict | None = None,
        progress: "bool | Any" = False) -> History:
    """Run pool-based batch active learning for ``rounds`` rounds (Ash et al., ICLR 2020, section 4).

    Round 0 labels ``initial`` items drawn uniformly at random (fewer if the pool already holds
    labeled items: only enough to reach ``initial``), trains the learner from scratch and
    evaluates it on ``test``. Each round t = 1..rounds then selects ``batch_size`` unlabeled items
    with ``strategy``, labels them from the pool's oracle, retrains from scratch and evaluates.
    The pool is labeled in place.

    Parameters
    ----------
    pool : Pool
        Candidates with oracle labels.
    learner : Learner
    strategy : str or Strategy
        Registered name (options in ``strategy_options``) or a Strategy instance.
    initial : int, default 100
        Size of the initial random labeled set (M in the paper).
    batch_size : int
        Items labeled per round (B).
    rounds : int
        Number of selection rounds after round 0; stops early if the pool runs out.
    test : (X_test, y_test)
        Held-out data for the accuracy of each round.
    seed : int, optional
        Seeds the initial set, the strategy and every training run.
    progress : bool or tqdm-like, default False
        Show a progress bar over rounds (or update a bar you pass in, one step per round).

    Returns
    -------
    History
        ``to_frame()`` gives one row per round.
    """
    strat = get(strategy, **(strategy_options or {}))
    if not isinstance(pool, Pool):
        raise TypeError(f"pool must be an activebatch.Pool, got {type(pool).__name__}")
    for name, value, low in (("initial", initial, 0), ("batch_size", batch_size, 1), ("rounds", rounds, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if pool.n_classes != learner.n_classes:
        raise ValueError(f"the pool has {pool.n_classes} classes but the model outputs {learner.n_classes}")
    if initial > len(pool):
        raise ValueError(f"initial={initial} is larger than the pool ({len(pool)} items)")
    X_test, y_test = test
    y_test = check_labels(y_test, "test labels", rows=int(X_test.shape[0]))

    ss = np.random.SeedSequence(seed)
    init_ss, select_ss, train_ss = ss.spawn(3)
    select_rng = np.random.default_rng(select_ss)
    train_seeds = train_ss.generate_state(rounds + 1, dtype=np.uint32)

    model_name = type(learner.model).__name__
    hist = History(pool.name, model_name, strat.name, batch_size, seed, pool.n_classes)
    bar, own_bar = _progress(progress, rounds + 1, f"{strat.name}")

    try:
        need = max(0, initial - pool.n_labeled)
        unl = pool.unlabeled_indices
        chosen = np.random.default_rng(init_ss).choice(unl, size=need, replace=False) if need else unl[:0]
        pool.label(chosen)
        hist.rounds.append(_train_eval(pool, learner, 0, chosen, 0.0, int(train_seeds[0]), X_test, y_test))
        _advance(bar, hist)
        for t in range(1, rounds + 1):
            avail = len(pool) - pool.n_labeled
            if avail == 0:
                break
            n = min(batch_size, avail)
            t0 = time.perf_counter()
            evidence = learner.evidence(pool)
            positions = strat.select(evidence, n, select_rng)
            picked = evidence.candidate_ids[positions]
            sel_s = time.perf_counter() - t0
            pool.label(picked)
            hist.rounds.append(_train_eval(pool, learner, t, picked, sel_s, int(train_seeds[t]), X_test, y_test))
            _advance(bar, hist)
    finally:
        if own_bar:
            bar.close()
    return hist


def _train_eval(pool: Pool, learner: Learner, t: int, picked: np.ndarray, sel_s: float, seed: int,
                X_test: Any, y_test: np.ndarray) -> RoundRecord:
    X, y = pool.labeled_data()
    fit = learner.fit(X, y, seed=seed)
    acc = learner.score(X_test, y_test)
    return RoundRecord(t, pool.n_labeled, acc, fit.seconds, sel_s, fit.epochs, fit.train_accuracy,
                       np.asarray(picked, dtype=np.int64),
                       _histogram(pool.labels[np.asarray(picked, dtype=np.int64)], pool.n_classes))


def _progress(progress: Any, total: int, desc: str):
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="round", leave=False), True
    if progress:
        return progress, False
    return None, False


def _advance(bar: Any, hist: History) -> None:
    if bar is not None:
        r = hist.rounds[-1]
        bar.update(1)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(labels=r.n_labeled, acc=f"{r.test_accuracy:.3f}")
