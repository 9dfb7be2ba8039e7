"""Active Learning by Learning: an EXP4.P bandit over member strategies.

Hsu & Lin, "Active Learning by Learning", AAAI 2015, with the EXP4.P algorithm of Beygelzimer,
Langford, Li, Reyzin & Schapire, "Contextual Bandit Algorithms with Supervised Learning
Guarantees", AISTATS 2011 (Algorithm 1). Ash et al. (ICLR 2020) use ALBL over least confidence and
core-set as one of BADGE's baselines.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..kernels.bandit import Exp4P
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Feedback, Strategy, get, register

__all__ = ["ALBL"]


_ITEM_KEYS = ("id", "round", "importance_weight", "n_candidates")


@register
class ALBL(Strategy):
    """Active Learning by Learning (Hsu & Lin, AAAI 2015): EXP4.P over member strategies.

    **What is implemented.** The arms are the member strategies plus, with ``uniform=True``,
    uniform random sampling. EXP4.P (:class:`Exp4P`) runs over them with identity advice
    (expert i always advises arm i), as in ALBL's reference implementation (libact, by Hsu &
    Lin's group), and each selection is one EXP4.P trial: it draws an arm i ~ p and the batch is
    that arm's selection of n items (for the uniform arm, n candidates drawn uniformly without
    replacement). Every candidate j had probability q_j = sum_{members i} p_i [j in batch_i] +
    p_uniform n / K of being queried (K candidates), so each queried item gets the importance
    weight W_j = 1 / q_j, recorded per item (:attr:`items`). Once the batch is labeled and the
    model f retrained, :meth:`update` computes Hsu & Lin's importance-weighted accuracy over all
    items ALBL has queried,

        IW-ACC(f) = 1/T sum_{selections t} 1/K_t sum_{j in batch_t} W_j [f(x_j) = y_j],

    each inner term an unbiased estimate of f's accuracy on the K_t candidates of selection t,
    and feeds it to EXP4.P as the trial's reward; the weight update then moves every arm (the
    pulled one by r / p_i, all by the exploration bonus).

    **Relation to the papers and to the BADGE code.** Hsu & Lin query one item per trial and
    retrain after each, with the unlabeled items as EXP4.P's actions; here a trial is a batch
    (its reward is only known after the batch is labeled), the arms are the strategies as in
    libact (with K in the thousands, EXP4.P's step p_min/2 <= 1/(2K) over item actions would
    leave the weights all but fixed), and IW-ACC is normalised per selection by its number of
    candidates K_t instead of the pool size, T being the number of selections. The BADGE
    authors' code (built on DeepAL) also pulls one strategy per batch, but simplifies the bandit:
    p_min = 1/(10N) whatever the horizon, an exploration bonus sqrt(ln(N/delta)/N) without T,
    a weight update of the pulled arm only, and a reward that averages correct/p over all labeled
    items, the initial set included with weight 1. None of these simplifications is reproduced.

    **What to expect.** IW-ACC is measured on items the retrained model was trained on, and the
    items of a uniform pull carry weights near K / (p_uniform n): a uniform pull raises the reward
    of its own selection (and of all later ones) far more than a member pull does, an effect of
    order 1/T per query in the sequential algorithm but of a whole batch here. The realised reward
    may exceed 1 (it is 1 only in expectation, at t = T); it is used as is.

    **Use in the one-shot API.** Keep the instance and report each labeled batch back::

        albl = ab.strategies.get("albl", horizon=10)
        idx = ab.select(albl, 100, probs=P, embeddings=Z, labeled_embeddings=L, ids=pool_ids)
        ...  # label pool_ids[idx], retrain
        albl.update(ab.strategies.Feedback(ids=labeled_ids, labels=y, predictions=model_predictions))

    A selection that is not followed by :meth:`update` is discarded (with a warning) when
    :meth:`select` is called again. :func:`activebatch.run` does all of this itself and records
    :meth:`state_dict` in the History.

    Parameters
    ----------
    members : sequence of str or Strategy, default ("least_confidence", "coreset")
        The member strategies (the BADGE paper's ALBL uses these two). Every member selects
        a batch at every selection (needed for the query probabilities q_j).
    uniform : bool, default True
        Add uniform random sampling as an arm (as libact and the BADGE code do);
        it gives every candidate a positive query probability, so importance weights stay finite.
    horizon : int, optional
        T, the number of selections ALBL will make. :func:`activebatch.run` supplies it;
        otherwise the first selection takes the most the pool allows, floor(K / n).
    delta : float, default 0.1
        EXP4.P's confidence parameter.
    p_min : float, optional
        EXP4.P's minimum arm probability, in [0, 1/N] for N arms; default sqrt(ln N / (N T)).
    """

    name = "albl"
    randomized = True
    needs = frozenset({"probs", "embeddings"})          # of the default members
    optional = frozenset({"labeled_embeddings"})
    stateful = True

    def __init__(self, members: Sequence[str | Strategy] = ("least_confidence", "coreset"), uniform: bool = True,
                 horizon: int | None = None, delta: float = 0.1, p_min: float | None = None) -> None:
        if isinstance(members, (str, Strategy)) or not isinstance(members, Sequence) or len(members) == 0:
            raise ValueError("members must be a non-empty list of strategy names or Strategy instances, "
                             f"got {members!r}")
        self._members = [get(m) for m in members]
        names = [m.name for m in self._members]
        if len(set(names)) != len(names):
            raise ValueError(f"members has duplicates: {names}")
        if "albl" in names:
            raise ValueError("albl cannot be a member of itself")
        uniform = check_scalar(uniform, "uniform", bool)
        if uniform and "random" in names:
            raise ValueError("'random' is already the uniform arm (uniform=True); drop it from members")
        horizon = check_scalar(horizon, "horizon", int, min_val=1, allow_none=True)
        delta = check_scalar(delta, "delta", float, min_val=0, include_min=False)
        n_arms = len(names) + int(uniform)
        if p_min is not None and not (isinstance(p_min, (int, float)) and 0 <= p_min <= 1.0 / n_arms):
            raise ValueError(f"p_min must lie in [0, 1/{n_arms}] for {n_arms} arms, got {p_min!r}")
        self.members = tuple(members)
        self.uniform, self.horizon, self.delta, self.p_min = uniform, horizon, float(delta), p_min
        self.arms = names + (["uniform"] if uniform else [])
        self.needs = frozenset().union(*(m.needs for m in self._members))
        self.optional = frozenset().union(*(m.optional for m in self._members)) - self.needs
        self._horizon: int | None = None if horizon is None else int(horizon)
        self._bandit: Exp4P | None = None
        self._items: dict[str, list] = {k: [] for k in _ITEM_KEYS}
        self._rounds: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None

    # Bandit bookkeeping ----------------------------------------------------------------------
    def _ensure_bandit(self, default_horizon: int) -> Exp4P:
        if self._bandit is None:
            self._horizon = int(self._horizon if self._horizon is not None else default_horizon)
            self._bandit = Exp4P(len(self.arms), self._horizon, delta=self.delta, p_min=self.p_min)
        return self._bandit

    @property
    def arm_probabilities(self) -> dict[str, float]:
        """The probability of each arm at the next selection."""
        if self._bandit is None:
            return {a: 1.0 / len(self.arms) for a in self.arms}
        return dict(zip(self.arms, self._bandit.probabilities().tolist()))

    @property
    def items(self) -> Any:
        """Every queried item of a rewarded selection: a pandas DataFrame with columns id, round,
        arm (the arm pulled in that round), importance_weight (1/q_j) and n_candidates (K_t)."""
        import pandas as pd

        frame = pd.DataFrame({k: list(v) for k, v in self._items.items()}, columns=list(_ITEM_KEYS))
        frame.insert(2, "arm", [self.arms[self._rounds[r]["arm"]] for r in frame["round"]])
        return frame

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per rewarded selection: arm probabilities, the arm pulled and the IW-ACC reward."""
        return [dict(r, arm=self.arms[r["arm"]]) for r in self._rounds]

    @property
    def rewards(self) -> list[float]:
        """The IW-ACC reward of each rewarded selection."""
        return [r["reward"] for r in self._rounds]

    # Strategy hooks ---------------------------------------------------------------------------
    def begin(self, *, rounds: int | None = None, budget: int | None = None) -> None:
        """Take the run's number of selections as T unless ``horizon`` was given or ALBL has
        selected before."""
        if rounds is not None and self.horizon is None and self._bandit is None:
            self._horizon = int(rounds)
        for m in self._members:
            m.begin(rounds=rounds, budget=budget)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._pending is not None:
            warnings.warn("ALBL: the previous selection was not followed by update(); it is discarded",
                          RuntimeWarning, stacklevel=3)
            self._pending = None
        K = evidence.n_candidates
        ids = np.arange(K) if evidence.candidate_ids is None else np.asarray(evidence.candidate_ids)
        bandit = self._ensure_bandit(max(1, K // n))
        p = bandit.probabilities()
        arm = int(rng.choice(len(self.arms), p=p))
        batches = [np.asarray(m.select(evidence, n, rng), dtype=np.int64) for m in self._members]
        n_mem = len(self._members)
        chosen = batches[arm] if arm < n_mem else rng.choice(K, size=n, replace=False).astype(np.int64)
        # q_j: the probability that item j was queried by this selection
        q = np.zeros(K)
        for i, b in enumerate(batches):
            q[b] += p[i]
        if self.uniform:
            q += p[-1] * n / K
        self._pending = {"arm": arm, "probabilities": p.tolist(), "id": ids[chosen].tolist(),
                         "importance_weight": (1.0 / q[chosen]).tolist(), "n_candidates": K}
        return chosen

    def update(self, feedback: Feedback) -> None:
        """Reward the last selection with IW-ACC of the retrained model and update the bandit.

        ``feedback`` must hold the labels and the retrained model's predictions of every item
        ALBL has selected so far (``activebatch.run`` passes the whole labeled set).
        """
        if not isinstance(feedback, Feedback):
            raise TypeError(f"update expects an activebatch.strategies.Feedback, got {type(feedback).__name__}")
        for m in self._members:
            m.update(feedback)
        if self._pending is None:
            return
        if feedback.predictions is None:
            raise ValueError("ALBL's reward needs Feedback.predictions: the retrained model's predicted classes")
        pend = self._pending
        m = len(pend["id"])
        ids = np.asarray(list(self._items["id"]) + pend["id"])
        labels, preds = feedback.lookup(ids)
        w = np.asarray(list(self._items["importance_weight"]) + pend["importance_weight"])
        k = np.asarray(list(self._items["n_candidates"]) + [pend["n_candidates"]] * m, dtype=np.float64)
        assert self._bandit is not None and self._horizon is not None
        reward = float(((w / k) * (preds == labels)).sum() / self._horizon)
        self._bandit.update([pend["arm"]], reward, pend["probabilities"])
        rnd = len(self._rounds)
        self._items["id"].extend(pend["id"])
        self._items["round"].extend([rnd] * m)
        self._items["importance_weight"].extend(pend["importance_weight"])
        self._items["n_candidates"].extend([pend["n_candidates"]] * m)
        self._rounds.append({"probabilities": pend["probabilities"], "arm": pend["arm"], "reward": reward})
        self._pending = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "arms": list(self.arms),
            "horizon": self._horizon,
            "bandit": None if self._bandit is None else self._bandit.state_dict(),
            "items": {k: list(v) for k, v in self._items.items()},
            "rounds": [dict(r) for r in self._rounds],
            "pending": None if self._pending is None else dict(self._pending),
            "members": [m.state_dict() for m in self._members],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state.get("arms", [])) != list(self.arms):
            raise ValueError(f"the state is for arms {state.get('arms')!r}, this ALBL has {self.arms!r}")
        self._horizon = None if state.get("horizon") is None else int(state["horizon"])
        self._bandit = None if state.get("bandit") is None else Exp4P.from_state(state["bandit"])
        items = state.get("items", {})
        self._items = {k: list(items.get(k, [])) for k in _ITEM_KEYS}
        self._rounds = [dict(r) for r in state.get("rounds", [])]
        pend = state.get("pending")
        self._pending = None if pend is None else dict(pend)
        for m, s in zip(self._members, state.get("members", [{}] * len(self._members))):
            m.load_state_dict(s)
