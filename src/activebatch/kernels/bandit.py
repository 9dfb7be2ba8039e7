"""EXP4.P, the contextual bandit with supervised-learning guarantees (ALBL's learner).

Beygelzimer, Langford, Li, Reyzin & Schapire, "Contextual Bandit Algorithms with Supervised
Learning Guarantees", AISTATS 2011, Algorithm 1.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["Exp4P"]


class Exp4P:
    """EXP4.P (Beygelzimer et al., AISTATS 2011, Algorithm 1).

    N experts each advise a probability vector xi_i over K actions. With weights w_i (1 at the
    start) and W = sum_i w_i, the action distribution is

        p_j = (1 - K p_min) sum_i w_i xi_i(j) / W + p_min.

    After playing action j_t and observing reward r in [0, 1]:
    r_hat_j = r / p_j for j = j_t and 0 otherwise, y_hat_i = xi_i . r_hat,
    v_hat_i = sum_j xi_i(j) / p_j, and

        w_i <- w_i exp(p_min / 2 * (y_hat_i + v_hat_i sqrt(ln(N / delta) / (K T)))).

    Weights are kept as logarithms, so long runs never overflow.

    Parameters
    ----------
    n_experts : int
        N.
    horizon : int
        T, the number of trials.
    n_actions : int, optional
        K; defaults to N with identity advice (expert i always advises action i).
    delta : float, default 0.1
        Confidence parameter (the regret bound holds with probability 1 - delta).
    p_min : float, optional
        Minimum action probability, in [0, 1/K]. Default: the theorem's
        sqrt(ln N / (K T)), capped at 1/K.
    """

    def __init__(self, n_experts: int, horizon: int, *, n_actions: int | None = None, delta: float = 0.1,
                 p_min: float | None = None) -> None:
        if n_experts < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        if horizon < 1:
            raise ValueError(f"horizon (T) must be >= 1, got {horizon}")
        if not delta > 0:
            raise ValueError(f"delta must be > 0, got {delta}")
        self.n_experts = int(n_experts)
        self.n_actions = int(n_experts if n_actions is None else n_actions)
        self.horizon = int(horizon)
        self.delta = float(delta)
        if p_min is None:
            p_min = min(math.sqrt(math.log(self.n_experts) / (self.n_actions * self.horizon)), 1.0 / self.n_actions)
        if not 0.0 <= p_min <= 1.0 / self.n_actions:
            raise ValueError(f"p_min must lie in [0, 1/K] = [0, {1.0 / self.n_actions:.6g}], got {p_min}")
        self.p_min = float(p_min)
        self.log_weights = np.zeros(self.n_experts)

    def _advice(self, advice: Any) -> np.ndarray:
        if advice is None:
            if self.n_actions != self.n_experts:
                raise ValueError("advice is required when the number of actions differs from the number of experts")
            return np.eye(self.n_experts)
        xi = np.asarray(advice, dtype=np.float64)
        if xi.shape != (self.n_experts, self.n_actions):
            raise ValueError(f"advice must have shape (N, K) = ({self.n_experts}, {self.n_actions}), got {xi.shape}")
        return xi

    @property
    def weights(self) -> np.ndarray:
        """w / max(w), shape (N,)."""
        return np.exp(self.log_weights - self.log_weights.max())

    def probabilities(self, advice: Any = None) -> np.ndarray:
        """The action distribution p, shape (K,), for advice of shape (N, K) (identity if omitted)."""
        xi = self._advice(advice)
        w = self.weights
        p = (1.0 - self.n_actions * self.p_min) * (w @ xi) / w.sum() + self.p_min
        return p / p.sum()

    def update(self, actions: Any, rewards: Any, probabilities: Any, advice: Any = None) -> None:
        """Apply the weight update of trials that shared one advice matrix and distribution.

        Parameters
        ----------
        actions : array of int, shape (m,)
            The action played in each trial.
        rewards : float or array of shape (m,)
            The reward observed in each trial.
        probabilities : array of shape (K,)
            The distribution ``p`` the actions were drawn from.
        advice : array of shape (N, K), optional
            The advice behind ``p`` (identity if omitted).

        With m = 1 this is exactly one step of the algorithm; m > 1 applies m steps whose
        feedback arrived together (the weights did not change in between).
        """
        xi = self._advice(advice)
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        r = np.broadcast_to(np.asarray(rewards, dtype=np.float64), a.shape)
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != (self.n_actions,):
            raise ValueError(f"probabilities must have shape ({self.n_actions},), got {p.shape}")
        if a.size and (a.min() < 0 or a.max() >= self.n_actions):
            raise ValueError("actions out of range")
        y_hat = (xi[:, a] * (r / p[a])[None, :]).sum(axis=1)                 # sum over trials of xi_i . r_hat
        v_hat = a.size * (xi / p[None, :]).sum(axis=1)                        # sum over trials of v_hat_i
        bonus = math.sqrt(math.log(self.n_experts / self.delta) / (self.n_actions * self.horizon))
        self.log_weights = self.log_weights + self.p_min / 2.0 * (y_hat + v_hat * bonus)

    def state_dict(self) -> dict[str, Any]:
        return {"n_experts": self.n_experts, "n_actions": self.n_actions, "horizon": self.horizon,
                "delta": self.delta, "p_min": self.p_min, "log_weights": self.log_weights.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Exp4P:
        bandit = cls(int(state["n_experts"]), int(state["horizon"]), n_actions=int(state["n_actions"]),
                     delta=float(state["delta"]), p_min=float(state["p_min"]))
        lw = np.asarray(state["log_weights"], dtype=np.float64)
        if lw.shape != (bandit.n_experts,):
            raise ValueError("log_weights do not match n_experts")
        bandit.log_weights = lw
        return bandit
