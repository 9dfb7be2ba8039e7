"""One active-learning run: initial random labels, then train -> evaluate -> select -> label.

Two loop options change what is trained, never what is labeled: CEAL's pseudo-labels
(:class:`CEAL`) and selection via a cheaper proxy model (``proxy=``). A third, ``stopping=``,
records stopping rules every round and may end the run early (:mod:`activebatch.loop.stopping`).
"""
from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.pool import Pool
from ..kernels.scores import entropy_scores
from ..learning.callbacks import TimedCallback
from ..learning.forgetting import FORGETTING_KEY
from ..learning.learner import Learner
from ..selection.round import check_evidence_available, select_round
from ..strategies import Feedback, Strategy, get
from ..utils.validation import check_features, check_labels, check_scalar
from .ceal import CEAL
from .checkpoint import RunCheckpoint, describe, labeled_state, same_labels
from .history import History, RoundRecord
from .stopping import StoppingRules

__all__ = ["run", "PoolExhaustedWarning"]


class PoolExhaustedWarning(UserWarning):
    """The pool holds fewer items than the run asked to label (``History.stop_reason`` says so)."""

def _histogram(labels: np.ndarray, k: int) -> list[int]:
    return np.bincount(labels, minlength=k)[:k].astype(int).tolist()


def run(pool: Pool, learner: Learner, strategy: str | Strategy, *, initial: int = 100, batch_size: int,
        rounds: int, test: tuple[Any, Any], seed: int | None = 0, strategy_options: dict | None = None,
        progress: bool | Any = False, ceal: CEAL | Mapping[str, Any] | bool | None = None,
        proxy: Learner | None = None, stopping: StoppingRules | Mapping[str, Any] | bool | None = None,
        checkpoint: str | Path | None = None) -> History:
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
        The model whose test accuracy is reported (a :class:`~activebatch.learning.committee.Committee`
        works too, and so do scikit-learn classifiers and skorch nets through
        :class:`~activebatch.learning.sklearn.SklearnLearner` and ``SkorchLearner``).
    strategy : str or Strategy
        Registered name (options in ``strategy_options``) or a Strategy instance. A stateful
        strategy (e.g. ALBL) is told the run's length through ``begin``, and after each round's
        retraining gets :meth:`~activebatch.strategies.Strategy.update` with the labels of the
        labeled set and the selection model's predictions on them; its ``state_dict`` is
        recorded per round and in ``History.strategy_state``. A strategy's training callbacks are
        attached to every fit of the selection model, and the time spent in them counts as
        selection time: a round's ``select_seconds`` includes their time in the fits that trained
        the model it selected with.
    initial : int, default 100
        Size of the initial random labeled set (M in the paper).
    batch_size : int
        Items labeled per round (B).
    rounds : int
        Number of selection rounds after round 0. When the pool holds fewer items than
        ``initial + batch_size * rounds``, the last batch takes what is left and the run stops
        when the pool is exhausted, with a :class:`PoolExhaustedWarning` and the reason in
        ``History.stop_reason``.
    test : (X_test, y_test)
        Held-out data for the accuracy of each round.
    seed : int, optional
        Seeds the initial set, the strategy and every training run.
    progress : bool or tqdm-like, default False
        Show a progress bar over rounds (or update a bar you pass in, one step per round).
    ceal : CEAL, mapping, bool or None, default None
        Add CEAL's high-confidence pseudo-labels to each selection round's training set
        (:class:`CEAL`; ``True`` for its defaults). They never enter the pool.
    proxy : Learner, optional
        Selection via proxy (Coleman et al., "Selection via Proxy: Efficient Data Selection for
        Deep Learning", ICLR 2020): a cheaper learner (e.g. a narrower MLP, fewer epochs),
        retrained on the labeled set every round, whose evidence drives the strategy, while
        ``learner`` is trained for the reported accuracy. Its accuracy and training time are in
        ``to_frame(details=True)``.

    stopping : StoppingRules, mapping, bool or None, default None
        Compute the stopping rules of :mod:`activebatch.loop.stopping` after every round
        (stabilizing predictions, overall and maximum uncertainty, classification change, selected
        accuracy) on ``learner``, the reported model; a mapping gives
        :class:`~activebatch.loop.stopping.StoppingRules` options, ``True`` its defaults. Each
        rule's value and verdict are in ``to_frame(details=True)``. With the option
        ``stop`` (True, a rule's name or a list of names) the run ends after the first round in
        which one of those rules says stop; ``History.stopped_by`` names it and
        ``History.stop_reason`` says why. The stop set is drawn from the items unlabeled after
        the initial labels, with its own stream of ``seed``. Costs one more forward pass over the
        unlabeled items per round; without the option the run is unchanged.

    checkpoint : str or Path, optional
        A file that makes the run resumable round by round (:mod:`activebatch.loop.checkpoint`):
        written after every round; when it exists at the start, the run continues after its last
        round instead of starting over, and ends with the same history an uninterrupted run has
        (the last round's model is refitted with its seed). The pool must be as it was when the
        run started, or as the checkpoint left it; a checkpoint of another run (other data,
        strategy, options, sizes or seed) is refused. A checkpoint of a finished run returns its
        history at once. ``History.resumed_after`` lists the rounds after which the run resumed.

    When the selection model's fits run :class:`~activebatch.learning.ForgettingEvents` (the
    ``label_dispersion`` strategy attaches it; any learner can), each round's record holds the
    forgetting counts of its last fit, in ``to_frame(details=True)``.

    Returns
    -------
    History
        ``to_frame()`` gives one row per round.
    """
    strat = get(strategy, **(strategy_options or {}))
    if not isinstance(pool, Pool):
        raise TypeError(f"pool must be an activebatch.Pool, got {type(pool).__name__}")
    initial = check_scalar(initial, "initial", int, min_val=0)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    rounds = check_scalar(rounds, "rounds", int, min_val=0)
    if pool.n_classes != learner.n_classes:
        raise ValueError(f"the pool has {pool.n_classes} classes but the model outputs {learner.n_classes}")
    if initial > len(pool):
        raise ValueError(f"initial={initial} is larger than the pool ({len(pool)} items)")
    ceal_opts = CEAL.coerce(ceal)
    rules = StoppingRules.coerce(stopping)
    if proxy is not None:
        if not isinstance(proxy, Learner):
            raise TypeError(f"proxy must be an activebatch.Learner, got {type(proxy).__name__}")
        if proxy is learner:
            raise ValueError("proxy must be a different Learner from learner (a cheaper selection model)")
        if proxy.n_classes != pool.n_classes:
            raise ValueError(f"the pool has {pool.n_classes} classes but the proxy model outputs {proxy.n_classes}")
    if not isinstance(test, (tuple, list)) or len(test) != 2:
        raise TypeError(f"test must be a pair (X_test, y_test) of held-out data, got {type(test).__name__}")
    X_test, y_test = test
    if not hasattr(X_test, "shape"):
        X_test = np.asarray(X_test)
    y_test = check_labels(y_test, "test labels", rows=int(X_test.shape[0]))
    if y_test.size == 0:
        raise ValueError("test must hold at least one example")
    if y_test.max() >= pool.n_classes:
        raise ValueError(f"test labels hold class {int(y_test.max())} but the pool has {pool.n_classes} classes "
                         f"(labels 0..{pool.n_classes - 1}); every such item would count as an error")
    check_features(X_test, "test X")
    # The model must take the pool's and the test data's rows: checked now, not after round 0 trains.
    for model, what in ((learner, "the model"), (proxy, "the proxy model")):
        if model is not None:
            model.check_inputs(pool.X, f"the pool's items ({what})")
            model.check_inputs(X_test, f"the test data ({what})")
    if initial == 0 and pool.n_labeled == 0:
        raise ValueError("initial=0 on a pool with no labeled items: round 0 would train on nothing; give "
                         "initial >= 1 (the BADGE paper uses 100) or label some items first")
    selector = learner if proxy is None else proxy
    # Model-dependent needs (e.g. MC dropout) are refused before any training.
    check_evidence_available(strat, selector.evidence_fields(),
                             source="the proxy model" if proxy is not None else "the model",
                             field_hints=getattr(selector, "missing_evidence_hints", None))
    # the strategy's training work is charged to its selections (select_seconds), not to training
    train_callbacks = [TimedCallback(cb) for cb in strat.training_callbacks(pool)]

    started = time.perf_counter()
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    saved = RunCheckpoint.load(ckpt_path) if ckpt_path is not None else None
    signature = {"dataset": pool.name, "pool_size": len(pool), "n_classes": pool.n_classes,
                 "model": _model_name(learner), "training": _training_signature(learner), "strategy": strat.name,
                 "strategy_options": describe(strat.get_params()), "initial": initial, "batch_size": batch_size,
                 "rounds": rounds, "seed": seed, "test_size": int(y_test.size),
                 "ceal": None if ceal_opts is None else asdict(ceal_opts),
                 "proxy": None if proxy is None else _model_name(proxy),
                 "stopping": None if rules is None else rules.get_params()}
    start_labels = labeled_state(pool.labels)
    if ckpt_path is not None:   # an unwritable place fails now, not after round 0's training
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    if saved is not None:
        saved.check_signature(signature, ckpt_path)
        if not same_labels(start_labels, saved.start_labels) and not same_labels(start_labels, saved.labels):
            raise ValueError(f"the pool's labels are neither those the run in {ckpt_path} started from "
                             f"({saved.start_labels[0].size} labeled items) nor those it reached after round "
                             f"{saved.history.rounds[-1].round} ({saved.labels[0].size}); this pool has "
                             f"{start_labels[0].size}: pass the pool as it was, or delete the checkpoint")
    # seed=None draws fresh entropy once; a resumed run reuses the entropy its checkpoint recorded
    ss = np.random.SeedSequence(seed if saved is None or seed is not None else saved.entropy)
    init_ss, select_ss, train_ss, proxy_ss = ss.spawn(4)
    select_rng = np.random.default_rng(select_ss)
    train_seeds = train_ss.generate_state(rounds + 1, dtype=np.uint32)
    proxy_seeds = proxy_ss.generate_state(rounds + 1, dtype=np.uint32)

    hist = History(pool.name, _model_name(learner), strat.name, batch_size, seed, pool.n_classes)
    if ceal_opts is not None:
        hist.options["ceal"] = asdict(ceal_opts)
    if proxy is not None:
        hist.options["proxy"] = _model_name(proxy)
    if rules is not None:
        hist.options["stopping"] = rules.get_params()
    bar, own_bar = _progress(progress, rounds + 1, f"{strat.name}")

    planned = max(0, initial - pool.n_labeled) + pool.n_labeled + batch_size * rounds
    if saved is None and planned > len(pool):   # a resumed run's history already says so
        full = (len(pool) - max(initial, pool.n_labeled)) // batch_size
        hist.stop_reason = (f"the pool has {len(pool)} items: {initial} initial labels and {rounds} rounds of "
                            f"{batch_size} need {planned}; after {full} full round(s) the last batch takes what is "
                            f"left and the run stops when the pool is exhausted")
        warnings.warn(hist.stop_reason, PoolExhaustedWarning, stacklevel=2)
    learner_cbs = train_callbacks if proxy is None else []

    def save(stopped: bool, pseudo: Any) -> None:
        if ckpt_path is not None:
            RunCheckpoint(signature, start_labels, labeled_state(pool.labels), hist, select_rng.bit_generator.state,
                          strat.state_dict() if strat.stateful else {}, rules, stopped, pseudo,
                          earlier + time.perf_counter() - started, int(ss.entropy)).save(ckpt_path)

    earlier = 0.0
    try:
        if saved is None:
            need = max(0, initial - pool.n_labeled)
            unl = pool.unlabeled_indices
            chosen = np.random.default_rng(init_ss).choice(unl, size=need, replace=False) if need else unl[:0]
            pool.label(chosen)
            if rules is not None:   # the stop set: a stream of its own, so the other draws are unchanged
                rules.start(pool.unlabeled_indices, seed=ss.spawn(1)[0])
            if strat.stateful:
                avail = len(pool) - pool.n_labeled
                strat.begin(rounds=int(min(rounds, -(-avail // batch_size))),
                            budget=int(min(batch_size * rounds, avail)))
            rec = _train_eval(pool, learner, 0, chosen, 0.0, int(train_seeds[0]), X_test, y_test,
                              callbacks=learner_cbs)
            _after_round(rec, pool, strat, proxy, selector, int(proxy_seeds[0]), X_test, y_test, train_callbacks)
            stopped = _observe_stopping(rules, rec, hist, pool, learner, None)
            hist.rounds.append(rec)
            save(stopped, None)
            _advance(bar, hist)
        else:
            hist, rules, stopped, earlier = saved.history, saved.rules, saved.stopped, saved.seconds
            _resume(saved, pool, strat, learner, proxy, batch_size, rounds, train_seeds, proxy_seeds,
                    learner_cbs, train_callbacks, select_rng)
            hist.resumed_after = [*hist.resumed_after, hist.rounds[-1].round]
            _advance(bar, hist, len(hist.rounds))
        for t in range(len(hist.rounds), rounds + 1):
            avail = len(pool) - pool.n_labeled
            if avail == 0 or stopped:
                break
            n = min(batch_size, avail)
            t0 = time.perf_counter()
            evidence = selector.evidence(pool)
            sel = select_round(strat, evidence, n, select_rng, what="unlabeled items")
            positions, picked = sel.indices, sel.ids
            sel_s = time.perf_counter() - t0 + _take_seconds(train_callbacks)
            pseudo = None
            if ceal_opts is not None:
                pseudo = _ceal_pseudo_labels(ceal_opts.threshold_at(t), evidence, positions, learner, proxy, pool)
            pool.label(picked)
            rec = _train_eval(pool, learner, t, picked, sel_s, int(train_seeds[t]), X_test, y_test, pseudo,
                              callbacks=learner_cbs)
            rec.selected_scores = sel.scores
            rec.selection_notes = tuple(sel.notes)
            _after_round(rec, pool, strat, proxy, selector, int(proxy_seeds[t]), X_test, y_test, train_callbacks)
            stopped = _observe_stopping(rules, rec, hist, pool, learner, picked)
            hist.rounds.append(rec)
            save(stopped, pseudo)
            _advance(bar, hist)
    finally:
        if own_bar:
            bar.close()
    hist.strategy_state = copy.deepcopy(strat.state_dict())
    hist.seconds = earlier + time.perf_counter() - started
    return hist


def _resume(saved: RunCheckpoint, pool: Pool, strat: Strategy, learner: Learner, proxy: Learner | None,
            batch_size: int, rounds: int, train_seeds: np.ndarray, proxy_seeds: np.ndarray, learner_cbs: list,
            train_callbacks: list[TimedCallback], select_rng: np.random.Generator) -> None:
    """Put the pool, the strategy, the selection stream and the models where ``saved`` left them."""
    if not same_labels(labeled_state(pool.labels), saved.labels):
        pool.label(*saved.labels)
    last = saved.history.rounds[-1]
    if strat.stateful:
        # begin() as the run first called it: after the initial labels of round 0
        avail = len(pool) - saved.history.rounds[0].n_labeled
        strat.begin(rounds=int(min(rounds, -(-avail // batch_size))), budget=int(min(batch_size * rounds, avail)))
        strat.load_state_dict(saved.strategy_state)
    select_rng.bit_generator.state = saved.select_rng
    # the models of the last round: each round trains from scratch with its own seed, so refitting
    # on the same training set gives the same weights (and the same MC-dropout seed)
    X, y = pool.labeled_data()
    if saved.last_pseudo is not None and saved.last_pseudo[0].size:
        X = np.concatenate([X, pool.features(saved.last_pseudo[0])])
        y = np.concatenate([y, saved.last_pseudo[1]])
    learner.fit(X, y, seed=int(train_seeds[last.round]), **({"callbacks": learner_cbs} if learner_cbs else {}))
    if proxy is not None:
        X, y = pool.labeled_data()
        cbs = {"callbacks": train_callbacks} if train_callbacks else {}
        proxy.fit(X, y, seed=int(proxy_seeds[last.round]), **cbs)
    _take_seconds(train_callbacks)   # the refit is not a selection's cost


def _observe_stopping(rules: StoppingRules | None, rec: RoundRecord, hist: History, pool: Pool, learner: Learner,
                      batch: np.ndarray | None) -> bool:
    """Feed the round's model to the stopping rules, record them in ``rec``; True when the run
    should stop."""
    if rules is None:
        return False
    unl = pool.unlabeled_indices
    probs = learner.evidence(pool).probs if unl.size else np.zeros((0, pool.n_classes))
    stop_pred = learner.predict(pool.features(rules.stop_set)) if rules.stop_set.size else np.zeros(0, np.int64)
    report = rules.observe(unlabeled_ids=unl, probs=probs, stop_predictions=stop_pred, batch_ids=batch,
                           batch_labels=None if batch is None else pool.labels[np.asarray(batch, dtype=np.int64)])
    rec.stopping = report.to_record()
    if report.stop:
        hist.stop_reason, hist.stopped_by = report.reason, report.rule
    return report.stop


def _take_seconds(callbacks: list[TimedCallback]) -> float:
    """Seconds the strategy's training callbacks spent since the last call (the fits that made this
    selection's model), and reset them."""
    total = sum(cb.seconds for cb in callbacks)
    for cb in callbacks:
        cb.seconds = 0.0
    return total


def _training_signature(learner: Learner) -> dict[str, Any]:
    """What of the learner decides its fits: the model's size and the training options (a
    checkpoint of a run trained otherwise is refused)."""
    out = {k: describe(getattr(learner, k)) for k in ("lr", "batch_size", "max_epochs", "target_accuracy",
                                                      "weight_decay", "mc_samples", "n_members", "bootstrap")
           if hasattr(learner, k)}
    params = getattr(getattr(learner, "model", None), "parameters", None)
    if callable(params):
        out["parameters"] = int(sum(p.numel() for p in params()))
    return out


def _model_name(learner: Learner) -> str:
    name = getattr(learner, "model_name", None)   # learners without a torch .model name themselves
    return str(name if name is not None else type(learner.model).__name__)


def _ceal_pseudo_labels(threshold: float, evidence: Any, positions: np.ndarray, learner: Learner,
                        proxy: Learner | None, pool: Pool) -> tuple[np.ndarray, np.ndarray, float]:
    """(pool indices, predicted labels, threshold) of the candidates CEAL pseudo-labels this round.

    The model is the one being trained (``learner``), as it stood before this round's labels;
    without a proxy its outputs are the evidence the strategy just read.
    """
    cand = np.asarray(evidence.candidate_ids)
    # With a proxy, the trained model's outputs on the same candidates (nothing is labeled yet).
    probs = evidence.probs if proxy is None else learner.evidence(pool).probs
    confident = (entropy_scores(probs) < threshold).cpu().numpy()
    confident[np.asarray(positions)] = False          # the batch gets its real labels
    pred = probs.argmax(dim=1).cpu().numpy()
    return cand[confident], pred[confident], threshold


def _after_round(rec: RoundRecord, pool: Pool, strat: Strategy, proxy: Learner | None, selector: Learner,
                 proxy_seed: int, X_test: Any, y_test: np.ndarray, callbacks: list) -> None:
    """Train the proxy on the labels, record the selection model's forgetting counts, then let a
    stateful strategy learn from the round."""
    if proxy is not None:
        X, y = pool.labeled_data()
        fit = proxy.fit(X, y, seed=proxy_seed, **({"callbacks": callbacks} if callbacks else {}))
        rec.proxy_train_seconds = fit.seconds
        rec.proxy_test_accuracy = proxy.score(X_test, y_test)
    forgetting = getattr(selector, "fit_artifacts", {}).get(FORGETTING_KEY)   # when ForgettingEvents ran
    if forgetting is not None:
        rec.forgetting_events = forgetting.n_events
        rec.unforgettable, rec.never_learned = forgetting.n_unforgettable, forgetting.n_never_learned
    if strat.stateful:
        lab = pool.labeled_indices
        X, y = pool.labeled_data()
        strat.update(Feedback(ids=lab, labels=y, predictions=selector.predict(X)))
        rec.strategy_state = copy.deepcopy(strat.state_dict())


def _train_eval(pool: Pool, learner: Learner, t: int, picked: np.ndarray, sel_s: float, seed: int,
                X_test: Any, y_test: np.ndarray,
                pseudo: tuple[np.ndarray, np.ndarray, float] | None = None, callbacks: list | None = None
                ) -> RoundRecord:
    X, y = pool.labeled_data()
    n_pseudo, thr = 0, None
    if pseudo is not None:
        ids, labels, thr = pseudo
        n_pseudo = int(ids.size)
        if n_pseudo:   # this round's training set only: the pool never sees them
            X = np.concatenate([X, pool.features(ids)])
            y = np.concatenate([y, labels])
    # Only strategies with training callbacks need a fit that takes them (user learners may not).
    fit = learner.fit(X, y, seed=seed, **({"callbacks": callbacks} if callbacks else {}))
    acc, bal, f1 = evaluate_predictions(y_test, learner.predict(X_test))
    return RoundRecord(t, pool.n_labeled, acc, fit.seconds, sel_s, fit.epochs, fit.train_accuracy,
                       np.asarray(picked, dtype=np.int64),
                       _histogram(pool.labels[np.asarray(picked, dtype=np.int64)], pool.n_classes),
                       n_pseudo_labeled=n_pseudo, ceal_threshold=thr, balanced_accuracy=bal, macro_f1=f1)


def evaluate_predictions(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, float]:
    """(accuracy, balanced accuracy, macro-F1) of predictions ``y_pred`` for labels ``y_true``.

    Balanced accuracy is the mean recall over the classes present in ``y_true``; macro-F1 the mean
    F1 over the classes present in ``y_true`` or ``y_pred`` (a class never predicted and never
    present does not count; F1 = 0 where a class has no true positive), scikit-learn's
    definitions. On a long-tailed pool they show what accuracy on a skewed test set hides; on a
    balanced test set balanced accuracy equals accuracy.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    true_n = np.bincount(y_true, minlength=k)
    pred_n = np.bincount(y_pred, minlength=k)
    hits = np.bincount(y_true[y_true == y_pred], minlength=k)
    present = true_n > 0
    balanced = float(np.mean(hits[present] / true_n[present]))
    seen = present | (pred_n > 0)
    f1 = 2 * hits[seen] / (true_n[seen] + pred_n[seen])   # 2PR/(P+R) = 2 TP / (true + predicted)
    return float(np.mean(y_pred == y_true)), balanced, float(np.mean(f1))


def _progress(progress: Any, total: int, desc: str):
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="round", leave=False), True
    if progress:
        return progress, False
    return None, False


def _advance(bar: Any, hist: History, steps: int = 1) -> None:
    if bar is not None:
        r = hist.rounds[-1]
        bar.update(steps)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(labels=r.n_labeled, acc=f"{r.test_accuracy:.3f}")
