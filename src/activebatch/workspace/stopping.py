"""The stopping rules of :mod:`activebatch.loop.stopping` for a labelling workspace.

A workspace has no oracle and no run: its rounds are queries, each training a model on the labels
given so far and choosing a batch. Every query that trains a model (round r, model M_r) records,
in the store's metadata under :data:`META_KEY`, what the rules need:

- the stop set, drawn once (at the first trained model) from the unlabelled candidates of that
  query (items outside the evaluation split without a label), ``stop_set_size`` of them, seeded by
  the workspace's seed; it stays fixed when some of its items are labelled later;
- for round r: Cohen's kappa between M_r's and the previous trained model's classes on the stop
  set; the mean entropy of M_r over the unlabelled candidates (overall uncertainty); the largest
  entropy of the batch M_r chose (max uncertainty); the share of the unlabelled candidates whose
  class under M_r differs from the previous trained model's (classification change);
- M_r's classes on every item and on the stop set, for the next query's comparisons.

The selected accuracy is computed when asked: the share of the labelled items of the latest
batch chosen by a trained model whose label equals the class that model predicted for it (stored
with the batch). Thresholds are applied when the status is read, so they can change without
recomputing anything.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

__all__ = ["META_KEY", "observe_model", "stopping_status", "format_stopping"]

#: The metadata key holding the workspace's stopping-rule inputs.
META_KEY = "stopping"


def _encode(classes: np.ndarray) -> str:
    return base64.b64encode(np.asarray(classes, dtype="<i2").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<i2").astype(np.int64)


def observe_model(state: dict[str, Any] | None, probs: Any, round: int, *, candidates: np.ndarray,
                  batch: np.ndarray, seed: int, rules: Any = None) -> dict[str, Any]:
    """The new :data:`META_KEY` state after round ``round``'s trained model.

    Parameters
    ----------
    state : dict or None
        The state recorded so far (None before the first trained model).
    probs : array or tensor, shape (N, K)
        The model's class probabilities on every item of the workspace (position order).
    round : int
        The round the model chose a batch for.
    candidates : array of int, shape (U,)
        Positions of the unlabelled items the batch was chosen from (the first trained model's
        are where the stop set is drawn from).
    batch : array of int, shape (B,)
        Positions of the chosen batch.
    seed : int
        The workspace's seed (draws the stop set).
    rules : StoppingRules, optional
        For the stop-set size (default: the defaults).
    """
    from ..loop.stopping import StoppingRules, cohen_kappa, draw_stop_set, predictive_entropy

    rules = rules or StoppingRules()
    ent = predictive_entropy(probs)
    classes = np.asarray(probs.argmax(1).cpu() if hasattr(probs, "cpu") else np.asarray(probs).argmax(1),
                         dtype=np.int64)
    state = dict(state or {})
    if "stop_set" not in state:
        stop_set = draw_stop_set(candidates, rules.stop_set_size, np.random.SeedSequence([int(seed), 0x5709]))
        state["stop_set"] = [int(p) for p in stop_set]
    stop_set = np.asarray(state["stop_set"], dtype=np.int64)
    last = state.get("last")
    cand = np.asarray(candidates, dtype=np.int64)
    entry: dict[str, Any] = {
        "kappa": None,
        "overall_uncertainty": float(ent[cand].mean()) if cand.size else None,
        "max_uncertainty": float(ent[np.asarray(batch, dtype=np.int64)].max()) if len(batch) else None,
        "classification_change": None, "n_unlabelled": int(cand.size)}
    if last is not None:
        prev = _decode(last["classes"])
        if prev.size == classes.size and stop_set.size:
            entry["kappa"] = cohen_kappa(prev[stop_set], classes[stop_set])
        if prev.size == classes.size and cand.size:   # the previous model predicted every item
            entry["classification_change"] = float(np.count_nonzero(prev[cand] != classes[cand]) / cand.size)
        entry["previous_round"] = int(last["round"])
    rounds = dict(state.get("rounds", {}))
    rounds[str(int(round))] = entry
    state["rounds"] = rounds
    state["last"] = {"round": int(round), "classes": _encode(classes)}
    return state


def stopping_status(store: Any, rules: Any = None) -> dict[str, Any]:
    """Each rule's current value and verdict for the workspace in ``store``, JSON-friendly.

    Returns a dict with ``rules`` (per rule: ``value``, ``stop``, ``round`` it belongs to and a
    ``detail`` line), ``kappas`` (per trained round), ``stop_set_size``, ``says_stop`` (the rules
    that say stop), ``options`` (the thresholds) and ``summary`` (one short line).
    """
    from ..loop.stopping import RULES, RuleResult, StoppingRules, selected_accuracy, stabilizing_predictions

    rules = StoppingRules.coerce(rules) or StoppingRules()
    state = store.meta().get(META_KEY) or {}
    rounds = {int(r): e for r, e in (state.get("rounds") or {}).items()}
    order = sorted(rounds)
    kappas = [{"round": r, "kappa": rounds[r]["kappa"]} for r in order if rounds[r].get("kappa") is not None]
    out: dict[str, dict[str, Any]] = {}
    sp = stabilizing_predictions([k["kappa"] for k in kappas], window=rules.kappa_window,
                                 threshold=rules.kappa_threshold)
    out["stabilizing_predictions"] = _rule(sp, kappas[-1]["round"] if kappas else None)
    latest = rounds[order[-1]] if order else {}
    for name in ("overall_uncertainty", "max_uncertainty", "classification_change"):
        out[name] = _rule(rules.judge(name, latest.get(name)), order[-1] if order else None)
    # the latest batch chosen by a trained model that has labels
    sel = store.selections()
    sel = sel[sel["predicted"].notna() & sel["label"].notna()]
    acc, acc_round = RuleResult(None, False), None
    if len(sel):
        acc_round = int(sel["round"].max())
        b = sel[sel["round"] == acc_round]
        names = {c: k for k, c in enumerate(store.classes())}
        acc = selected_accuracy(b["predicted"].map(names).to_numpy(np.int64), b["label"].map(names).to_numpy(np.int64),
                                threshold=rules.selected_accuracy_threshold)
        out["selected_accuracy"] = _rule(acc, acc_round, labelled=int(len(b)))
    else:
        out["selected_accuracy"] = _rule(acc, None)
    for name in RULES:
        out[name]["detail"] = rules.describe(name, out[name]["value"])
        if name == "selected_accuracy" and acc_round is not None:
            out[name]["detail"] += f"; round {acc_round}, {out[name]['labelled']} labelled item(s)"
    says = [n for n in RULES if out[n]["stop"]]
    return {"rules": out, "kappas": kappas, "stop_set_size": len(state.get("stop_set", [])),
            "says_stop": says, "options": rules.get_params(), "summary": _summary(out, says, bool(order))}


def _rule(result: Any, round: int | None, **extra: Any) -> dict[str, Any]:
    return {"value": result.value, "stop": bool(result.stop), "round": round, **extra}


def _summary(out: dict[str, dict[str, Any]], says: list[str], trained: bool) -> str:
    if not trained:
        return "stopping rules: no trained model yet"
    parts = []
    v = out["stabilizing_predictions"]["value"]
    parts.append(f"kappa {v:.3f}" if v is not None else "kappa -")
    v = out["overall_uncertainty"]["value"]
    parts.append(f"pool entropy {v:.3g}" if v is not None else "pool entropy -")
    v = out["max_uncertainty"]["value"]
    parts.append(f"batch max entropy {v:.3g}" if v is not None else "batch max entropy -")
    v = out["classification_change"]["value"]
    parts.append(f"{v:.1%} changed" if v is not None else "changed -")
    v = out["selected_accuracy"]["value"]
    parts.append(f"batch {v:.0%} as predicted" if v is not None else "batch as predicted -")
    verdict = ("stop suggested by " + ", ".join(n.replace("_", " ") for n in says)) if says else "keep labelling"
    return f"stopping rules: {', '.join(parts)}: {verdict}"


def format_stopping(status: dict[str, Any] | None) -> list[str]:
    """Lines for ``activebatch status``: one per rule, with its verdict."""
    if not status:
        return []
    lines = ["stopping rules (activebatch.loop.stopping):"]
    for name, r in status["rules"].items():
        mark = "STOP" if r["stop"] else "-"
        lines.append(f"  {name:<24} {mark:<5} {r['detail']}")
    return lines
