"""Stopping rules: when labelling more items stops paying.

Pure functions on predictions and uncertainty scores (numpy arrays or torch tensors), and
:class:`StoppingRules`, a small tracker fed once per round by ``ab.run(stopping=...)``; workspaces
compute the same rules from what they store (:mod:`activebatch.workspace.stopping`).

Every rule reads the model trained after a round (M_t) and, for some, the model before it
(M_{t-1}); U_t are the items still unlabeled after round t and B_t the batch labeled in round t
(chosen with M_{t-1}).

``stabilizing_predictions``
    Bloodgood & Vijay-Shanker, "A Method for Stopping Active Learning Based on Stabilizing
    Predictions and the Need for User-Adjustable Stopping", CoNLL 2009. Cohen's kappa between the
    predicted classes of M_{t-1} and M_t on a fixed *stop set* (a random sample of unlabeled
    items drawn once, at the start; it needs no labels); stop when the mean kappa of the last
    k = 3 successive pairs of models exceeds 0.99. The value is that mean (None until k pairs).
``overall_uncertainty``
    Zhu, Wang & Hovy, "Multi-criteria-based Strategy to Stop Active Learning for Data
    Annotation", COLING 2008. The mean predictive entropy (nats) of M_t over all of U_t; stop
    when it is below the threshold.
``max_uncertainty``
    Zhu et al. (COLING 2008), max-confidence (from Zhu & Hovy, EMNLP-CoNLL 2007): the entropy of
    every selected item under the model that selected it is below a threshold close to zero
    (0.001), i.e. the largest entropy of B_t under M_{t-1}. Laws & Schütze ("Stopping Criteria
    for Active Learning of Named Entity Recognition", COLING 2008) track the same quantity, the
    uncertainty of the selected items, for their stopping criteria.
``classification_change``
    Zhu et al. (COLING 2008): stop when no item of the unlabeled pool changes its predicted
    class between two successive models. The value is the share of U_t whose class under M_t
    differs from M_{t-1}'s (the paper's rule is a share of 0, the default threshold).
``selected_accuracy``
    Zhu et al.'s oracle-feedback criterion (min-error in COLING 2008; selected accuracy in their
    later journal version): the accuracy of M_{t-1}'s predictions on the labels the annotator
    gave B_t; stop when it reaches the threshold. With threshold 1 it says stop when no label of
    the new batch differs from the previous model's prediction.

Rules whose inputs do not exist yet (round 0 has no previous model) have the value None and
never say stop.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..kernels.scores import entropy_scores
from ..utils.validation import check_choice, check_labels, check_probs, check_scalar, check_seed, coerce_options

__all__ = ["RULES", "COLUMNS", "StoppingRules", "StoppingReport", "RuleResult", "cohen_kappa", "says_stop",
           "predictive_entropy", "stabilizing_predictions", "overall_uncertainty", "max_uncertainty",
           "classification_change", "selected_accuracy", "draw_stop_set"]

#: The rules, in the order they are reported.
RULES = ("stabilizing_predictions", "overall_uncertainty", "max_uncertainty", "classification_change",
         "selected_accuracy")

#: What a round's record holds (``History.to_frame(details=True)``): the latest kappa, then each
#: rule's value and whether it says stop.
COLUMNS = ["kappa"] + [c for rule in RULES for c in (rule, f"{rule}_stop")]


@dataclass(frozen=True)
class RuleResult:
    """One rule's value in one round and whether it says stop (False when the value is None)."""

    value: float | None
    stop: bool


# Pure functions ------------------------------------------------------------------------------------
def says_stop(rule: str, value: float | None, threshold: float) -> bool:
    """Whether ``rule``'s ``value`` says stop against ``threshold`` (never for None): kappa mean
    > threshold, uncertainties < threshold, changed share <= threshold, accuracy >= threshold."""
    if value is None:
        return False
    if rule == "stabilizing_predictions":
        return value > threshold
    if rule in ("overall_uncertainty", "max_uncertainty"):
        return value < threshold
    if rule == "classification_change":
        return value <= threshold
    if rule == "selected_accuracy":
        return value >= threshold
    raise ValueError(f"unknown stopping rule {rule!r}; the rules are {', '.join(RULES)}")


def _labels(x: Any, name: str) -> np.ndarray:
    return check_labels(x, name)


def cohen_kappa(a: Any, b: Any) -> float:
    """Cohen's kappa between two labelings of the same items.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the share of items given the same class and
    p_e = sum_k (n_a(k) / n)(n_b(k) / n) the agreement expected from the two marginal class
    frequencies. Computed on integer counts, so hand-computable cases are exact.

    Parameters
    ----------
    a, b : array of int, shape (n,)
        Class indices (e.g. two models' predictions on a stop set).

    Returns
    -------
    float
        In [-1, 1]. When p_e = 1 both labelings put every item in one and the same class, so they
        agree on every item (p_o = 1) and kappa is defined as 1 (the formula would be 0/0).
    """
    a = _labels(a, "a")
    b = _labels(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must label the same items, got {a.size} and {b.size} labels")
    n = a.size
    if n == 0:
        raise ValueError("Cohen's kappa needs at least one item")
    k = int(max(a.max(), b.max())) + 1
    # n^2 p_o and n^2 p_e as exact integers (Python ints: no overflow)
    agree = int(np.count_nonzero(a == b)) * n
    chance = int(np.dot(np.bincount(a, minlength=k).astype(object), np.bincount(b, minlength=k).astype(object)))
    if chance == n * n:
        return 1.0
    return float((agree - chance) / (n * n - chance))


def predictive_entropy(probs: Any) -> np.ndarray:
    """Entropy -sum_k p_k log p_k (nats) of each row of ``probs`` (N, K), as a float64 array (N,).

    Tensors are reduced on their device and only the N entropies are moved to the CPU.
    """
    t = check_probs(probs, "probs")
    return entropy_scores(t).cpu().numpy() + 0.0   # + 0.0: -0.0 (from 0 log 0) reads as 0


def stabilizing_predictions(kappas: Sequence[float], *, window: int = 3, threshold: float = 0.99) -> RuleResult:
    """Bloodgood & Vijay-Shanker's rule on the kappas of successive models so far (oldest first).

    The value is the mean of the last ``window`` kappas (None while there are fewer); stop when
    it is greater than ``threshold``.
    """
    window = check_scalar(window, "window", int, min_val=1)
    threshold = check_scalar(threshold, "threshold", float, min_val=-1, max_val=1)
    ks = np.asarray(kappas, dtype=np.float64).reshape(-1)
    if ks.size < window:
        return RuleResult(None, False)
    value = float(ks[-window:].mean())
    return RuleResult(value, says_stop("stabilizing_predictions", value, threshold))


def overall_uncertainty(entropies: Any, *, threshold: float = 0.01) -> RuleResult:
    """Zhu et al.'s overall uncertainty: the mean of the unlabeled items' entropies (N,); stop
    when it is below ``threshold`` (None for an empty pool)."""
    threshold = check_scalar(threshold, "threshold", float, min_val=0)
    e = _scores(entropies, "entropies")
    if e.size == 0:
        return RuleResult(None, False)
    value = float(e.mean())
    return RuleResult(value, says_stop("overall_uncertainty", value, threshold))


def max_uncertainty(entropies: Any, *, threshold: float = 0.001) -> RuleResult:
    """Zhu et al.'s max-confidence rule on the selected batch: the largest of the batch items'
    entropies (B,) under the model that selected them; stop when it is below ``threshold``."""
    threshold = check_scalar(threshold, "threshold", float, min_val=0)
    e = _scores(entropies, "entropies")
    if e.size == 0:
        return RuleResult(None, False)
    value = float(e.max())
    return RuleResult(value, says_stop("max_uncertainty", value, threshold))


def classification_change(previous: Any, current: Any, *, threshold: float = 0.0) -> RuleResult:
    """Zhu et al.'s classification change: the share of items whose predicted class differs
    between the previous model (``previous``, (N,)) and the current one (``current``, (N,)), on
    the same unlabeled items; stop when it is at most ``threshold`` (0: no change at all)."""
    threshold = check_scalar(threshold, "threshold", float, min_val=0, max_val=1)
    p, c = _labels(previous, "previous"), _labels(current, "current")
    if p.shape != c.shape:
        raise ValueError(f"previous and current must predict the same items, got {p.size} and {c.size}")
    if p.size == 0:
        return RuleResult(None, False)
    value = float(np.count_nonzero(p != c) / p.size)
    return RuleResult(value, says_stop("classification_change", value, threshold))


def selected_accuracy(predicted: Any, labels: Any, *, threshold: float = 0.9) -> RuleResult:
    """Zhu et al.'s oracle-feedback rule: the share of the new batch whose label equals the
    previous model's prediction (``predicted`` and ``labels``, (B,)); stop when it is at least
    ``threshold``."""
    threshold = check_scalar(threshold, "threshold", float, min_val=0, max_val=1)
    p, y = _labels(predicted, "predicted"), _labels(labels, "labels")
    if p.shape != y.shape:
        raise ValueError(f"predicted and labels must cover the same items, got {p.size} and {y.size}")
    if p.size == 0:
        return RuleResult(None, False)
    value = float(np.count_nonzero(p == y) / p.size)
    return RuleResult(value, says_stop("selected_accuracy", value, threshold))


def draw_stop_set(candidates: Any, size: int, seed: Any) -> np.ndarray:
    """The stop set: ``size`` ids drawn uniformly without replacement from ``candidates`` (all of
    them when fewer), sorted. ``seed`` is an int, a SeedSequence or a Generator."""
    size = check_scalar(size, "stop_set_size", int, min_val=1)
    ids = np.asarray(candidates, dtype=np.int64).reshape(-1)
    rng = check_seed(seed)
    if ids.size <= size:
        return np.sort(ids)
    return np.sort(rng.choice(ids, size=size, replace=False))


def _scores(x: Any, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = arr.astype(np.float64, copy=False).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


# The tracker ----------------------------------------------------------------------------------------
@dataclass
class StoppingReport:
    """The rules after one round: each rule's value and verdict, and whether the run should stop."""

    round: int
    kappa: float | None
    results: dict[str, RuleResult]
    #: The first rule among those that may stop the run (``StoppingRules.stop``) that says stop.
    rule: str | None = None
    reason: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def stop(self) -> bool:
        """Whether a rule allowed to stop the run says stop."""
        return self.rule is not None

    def to_record(self) -> dict[str, Any]:
        """The :data:`COLUMNS` of a round's record."""
        out: dict[str, Any] = {"kappa": self.kappa}
        for name in RULES:
            r = self.results[name]
            out[name], out[f"{name}_stop"] = r.value, r.stop
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: round, kappa, per rule value/stop/detail, and the stopping rule."""
        return {"round": self.round, "kappa": self.kappa,
                "rules": {n: {"value": r.value, "stop": r.stop, "detail": self.details.get(n, "")}
                          for n, r in self.results.items()},
                "stop": self.stop, "stopped_by": self.rule, "reason": self.reason}


class StoppingRules:
    """The stopping rules of :mod:`activebatch.loop.stopping`, computed round after round.

    Parameters
    ----------
    stop : bool, str or sequence of str, default False
        Which rules may stop a run: False (none: the rules are only recorded), True (any of
        :data:`RULES`), a rule's name or a list of names. The run stops after the first round in
        which one of them says stop.
    stop_set_size : int, default 2000
        Items in the stop set of ``stabilizing_predictions`` (Bloodgood & Vijay-Shanker's size;
        every unlabeled item when the pool has fewer). Drawn once, uniformly, from the items
        unlabeled at the start, and kept fixed even when some of its items are labeled later: the
        rule compares successive models on the same items, which need no labels.
    kappa_threshold : float, default 0.99
        Stop when the mean kappa exceeds this (the paper's value).
    kappa_window : int, default 3
        k, the number of successive-model kappas averaged (the paper's value).
    overall_uncertainty_threshold : float, default 0.01
        Nats. Zhu et al. treat the thresholds of their confidence-based rules as task-dependent
        (the reason for their multi-criteria strategy); 0.01 is the value used for this rule in
        Pullar-Strecker et al.'s comparison of stopping criteria ("Hitting the target: stopping
        active learning at the cost-based optimum", Machine Learning, 2024).
    max_uncertainty_threshold : float, default 0.001
        Nats; the "very small threshold close to zero" Zhu & Hovy give for max-confidence.
    classification_change_threshold : float, default 0.0
        Largest share of unlabeled items allowed to change class; 0 is Zhu et al.'s rule (no
        change at all).
    selected_accuracy_threshold : float, default 0.9
        Stop when the previous model predicted at least this share of the new batch's labels
        (0.9 as in Pullar-Strecker et al.'s comparison; 1.0: not one label differs).

    Use
    ---
    ``start(candidates, seed)`` draws the stop set and forgets earlier rounds; then, once per
    round, ``observe(...)`` with the round's model outputs returns a :class:`StoppingReport`
    (also kept in ``reports``). ``ab.run(stopping=...)`` does this for you.
    """

    def __init__(self, *, stop: bool | str | Sequence[str] = False, stop_set_size: int = 2000,
                 kappa_threshold: float = 0.99, kappa_window: int = 3,
                 overall_uncertainty_threshold: float = 0.01, max_uncertainty_threshold: float = 0.001,
                 classification_change_threshold: float = 0.0, selected_accuracy_threshold: float = 0.9) -> None:
        self.stop = stop
        self.stop_rules = _stop_rules(stop)
        self.stop_set_size = check_scalar(stop_set_size, "stop_set_size", int, min_val=1)
        self.kappa_threshold = check_scalar(kappa_threshold, "kappa_threshold", float, min_val=-1, max_val=1)
        self.kappa_window = check_scalar(kappa_window, "kappa_window", int, min_val=1)
        self.overall_uncertainty_threshold = check_scalar(overall_uncertainty_threshold,
                                                          "overall_uncertainty_threshold", float, min_val=0)
        self.max_uncertainty_threshold = check_scalar(max_uncertainty_threshold, "max_uncertainty_threshold",
                                                      float, min_val=0)
        self.classification_change_threshold = check_scalar(
            classification_change_threshold, "classification_change_threshold", float, min_val=0, max_val=1)
        self.selected_accuracy_threshold = check_scalar(selected_accuracy_threshold, "selected_accuracy_threshold",
                                                        float, min_val=0, max_val=1)
        self.start(np.zeros(0, dtype=np.int64), seed=0)

    _PARAMS = ("stop", "stop_set_size", "kappa_threshold", "kappa_window", "overall_uncertainty_threshold",
               "max_uncertainty_threshold", "classification_change_threshold", "selected_accuracy_threshold")

    def get_params(self) -> dict[str, Any]:
        """The constructor's options (``StoppingRules(**rules.get_params())`` makes a fresh copy)."""
        out = {k: getattr(self, k) for k in self._PARAMS}
        if not isinstance(out["stop"], (bool, str)):
            out["stop"] = list(out["stop"])
        return out

    def __repr__(self) -> str:
        return f"StoppingRules({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    @classmethod
    def coerce(cls, value: StoppingRules | Mapping[str, Any] | bool | None) -> StoppingRules | None:
        """``None``/``False`` -> off, ``True`` -> the defaults (recorded, never stopping), a mapping
        -> ``StoppingRules(**mapping)``, an instance -> itself."""
        return coerce_options(cls, value, known=cls._PARAMS, what="stopping",
                              expected="stopping must be a StoppingRules, a mapping of its options, True/False or None")

    # Rules on values -------------------------------------------------------------------------------
    def evaluate(self, *, kappas: Sequence[float] = (), unlabeled_entropy: Any = None,
                 batch_entropy: Any = None, previous_predictions: Any = None, current_predictions: Any = None,
                 batch_predictions: Any = None, batch_labels: Any = None) -> dict[str, RuleResult]:
        """Every rule on what one round offers, with this object's thresholds; a missing input
        (None) gives that rule the value None."""
        none = RuleResult(None, False)
        return {
            "stabilizing_predictions": stabilizing_predictions(kappas, window=self.kappa_window,
                                                               threshold=self.kappa_threshold),
            "overall_uncertainty": none if unlabeled_entropy is None else overall_uncertainty(
                unlabeled_entropy, threshold=self.overall_uncertainty_threshold),
            "max_uncertainty": none if batch_entropy is None else max_uncertainty(
                batch_entropy, threshold=self.max_uncertainty_threshold),
            "classification_change": none if previous_predictions is None or current_predictions is None
            else classification_change(previous_predictions, current_predictions,
                                       threshold=self.classification_change_threshold),
            "selected_accuracy": none if batch_predictions is None or batch_labels is None else selected_accuracy(
                batch_predictions, batch_labels, threshold=self.selected_accuracy_threshold),
        }

    def threshold(self, rule: str) -> float:
        """The threshold this object applies to ``rule``."""
        check_choice(rule, "rule", RULES)
        return {"stabilizing_predictions": self.kappa_threshold,
                "overall_uncertainty": self.overall_uncertainty_threshold,
                "max_uncertainty": self.max_uncertainty_threshold,
                "classification_change": self.classification_change_threshold,
                "selected_accuracy": self.selected_accuracy_threshold}[rule]

    def judge(self, rule: str, value: float | None) -> RuleResult:
        """``rule``'s verdict on a value computed elsewhere (e.g. stored by a workspace)."""
        return RuleResult(None if value is None else float(value), says_stop(rule, value, self.threshold(rule)))

    def verdict(self, results: Mapping[str, RuleResult]) -> str | None:
        """The first rule of ``stop`` (in :data:`RULES` order) that says stop, or None."""
        return next((r for r in RULES if r in self.stop_rules and results[r].stop), None)

    def describe(self, rule: str, value: float | None) -> str:
        """One line on a rule's value against its threshold."""
        check_choice(rule, "rule", RULES)
        if value is None:
            return {"stabilizing_predictions": f"needs {self.kappa_window} pairs of successive models",
                    "overall_uncertainty": "no unlabeled items",
                    "max_uncertainty": "needs a batch chosen by a trained model",
                    "classification_change": "needs two successive models",
                    "selected_accuracy": "needs labels for a batch chosen by a trained model"}[rule]
        if rule == "stabilizing_predictions":
            return (f"mean kappa of the last {self.kappa_window} successive models on the stop set {value:.4f} "
                    f"(stop when > {self.kappa_threshold:g})")
        if rule == "overall_uncertainty":
            return (f"mean entropy of the unlabeled items {value:.4g} nats "
                    f"(stop when < {self.overall_uncertainty_threshold:g})")
        if rule == "max_uncertainty":
            return (f"largest entropy in the batch, under the model that chose it, {value:.4g} nats "
                    f"(stop when < {self.max_uncertainty_threshold:g})")
        if rule == "classification_change":
            return (f"{value:.2%} of the unlabeled items changed predicted class since the previous model "
                    f"(stop when <= {self.classification_change_threshold:.2%})")
        return (f"the previous model predicted {value:.2%} of the batch's labels "
                f"(stop when >= {self.selected_accuracy_threshold:.2%})")

    # The tracker ---------------------------------------------------------------------------------------
    def start(self, candidates: Any, seed: Any = None) -> np.ndarray:
        """Forget earlier rounds and draw the stop set from ``candidates`` (ids of unlabeled items)
        with ``seed``; returns it (sorted ids)."""
        ids = np.asarray(candidates, dtype=np.int64).reshape(-1)
        self.stop_set = draw_stop_set(ids, self.stop_set_size, seed) if ids.size else ids
        self.kappas: list[float] = []
        self.reports: list[StoppingReport] = []
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None   # sorted ids, entropy, class
        self._prev_stop: np.ndarray | None = None
        return self.stop_set

    def observe(self, *, unlabeled_ids: Any, probs: Any, stop_predictions: Any, batch_ids: Any = None,
                batch_labels: Any = None) -> StoppingReport:
        """Record round t's model M_t and evaluate every rule.

        Parameters
        ----------
        unlabeled_ids : array of int, shape (U,)
            Ids of the items unlabeled after round t (U_t).
        probs : array or tensor, shape (U, K)
            M_t's class probabilities on them.
        stop_predictions : array of int, shape (S,)
            M_t's predicted classes on :attr:`stop_set`.
        batch_ids, batch_labels : array of int, shape (B,), optional
            The batch labeled in round t and its labels (None for round 0). The batch must have
            been unlabeled in the previous round (M_{t-1}'s outputs on it are looked up there).

        Returns
        -------
        StoppingReport
        """
        ids = np.asarray(unlabeled_ids, dtype=np.int64).reshape(-1)
        P = check_probs(probs, "probs", rows=ids.size, rows_from="unlabeled_ids")
        ent = entropy_scores(P).cpu().numpy() + 0.0
        pred = P.argmax(dim=1).cpu().numpy() if P.shape[0] else np.zeros(0, dtype=np.int64)
        stop_pred = _labels(stop_predictions, "stop_predictions")
        if stop_pred.size != self.stop_set.size:
            raise ValueError(f"stop_predictions has {stop_pred.size} entries but the stop set has {self.stop_set.size}")
        order = np.argsort(ids, kind="stable")
        ids, ent, pred = ids[order], ent[order], pred[order]

        kappa = None
        if self._prev_stop is not None and stop_pred.size:
            kappa = cohen_kappa(self._prev_stop, stop_pred)
            self.kappas.append(kappa)
        inputs: dict[str, Any] = {"kappas": self.kappas, "unlabeled_entropy": ent}
        if self._prev is not None:
            p_ids, p_ent, p_pred = self._prev
            here, at = _lookup(p_ids, ids)            # U_t is a subset of U_{t-1}
            inputs["previous_predictions"], inputs["current_predictions"] = p_pred[at], pred[here]
            if batch_ids is not None:
                b = np.asarray(batch_ids, dtype=np.int64).reshape(-1)
                y = _labels(batch_labels, "batch_labels")
                if y.size != b.size:
                    raise ValueError(f"batch_labels has {y.size} entries but batch_ids has {b.size}")
                found, bat = _lookup(p_ids, b)
                if found.size:
                    inputs["batch_entropy"] = p_ent[bat]
                    inputs["batch_predictions"], inputs["batch_labels"] = p_pred[bat], y[found]
        results = self.evaluate(**inputs)
        self._prev, self._prev_stop = (ids, ent, pred), stop_pred
        report = StoppingReport(len(self.reports), kappa, results,
                                details={r: self.describe(r, res.value) for r, res in results.items()})
        report.rule = self.verdict(results)
        if report.rule is not None:
            report.reason = f"{report.rule} said stop after round {report.round}: {report.details[report.rule]}"
        self.reports.append(report)
        return report


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``ids``, positions in ``sorted_ids``) of the ids present in ``sorted_ids``."""
    at = np.searchsorted(sorted_ids, ids)
    ok = at < sorted_ids.size
    ok[ok] = sorted_ids[at[ok]] == ids[ok]
    return np.flatnonzero(ok), at[ok]


def _stop_rules(stop: Any) -> tuple[str, ...]:
    if stop is True:
        return RULES
    if stop is False or stop is None:
        return ()
    if isinstance(stop, str):
        return (check_choice(stop, "stop", RULES),)
    if isinstance(stop, Sequence) and not isinstance(stop, (bytes, bytearray)):
        names = tuple(check_choice(s, "stop", RULES) for s in stop)
        if not names:
            raise ValueError("stop must name at least one rule (or be True/False)")
        return names
    raise TypeError(f"stop must be True/False, a rule name or a list of names ({', '.join(RULES)}), "
                    f"got {type(stop).__name__}")
