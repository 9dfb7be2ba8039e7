"""CEAL's pseudo-labels: an option of the loop that changes what is trained, never what is labeled."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..utils.validation import check_scalar, coerce_options

__all__ = ["CEAL"]


@dataclass(frozen=True)
class CEAL:
    """Cost-effective active learning's pseudo-labels (Wang, Zhang, Li, Zhang & Lin, "Cost-Effective
    Active Learning for Deep Image Classification", IEEE TCSVT 2017, Algorithm 1).

    In selection round t (t = 1, 2, ...), after the strategy's batch is chosen, every other
    unlabeled candidate whose predictive entropy (nats) under the current model is below
    ``delta_t = threshold - decay * (t - 1)`` joins that round's training set with its predicted
    class as label. Pseudo-labels are never written to the pool, never counted in ``n_labeled``
    and are recomputed from scratch each round. (The paper fine-tunes; here the model is retrained
    from scratch every round, as in the rest of the loop.)

    Parameters
    ----------
    threshold : float, default 0.05
        delta_0, the initial entropy threshold (the paper's value for its CACD experiments).
    decay : float, default 0.0033
        dr, subtracted once per round; delta_t is floored at 0 (then no pseudo-labels).
    """

    threshold: float = 0.05
    decay: float = 0.0033

    def __post_init__(self) -> None:
        for key in ("threshold", "decay"):
            check_scalar(getattr(self, key), f"CEAL {key}", float, min_val=0)

    def threshold_at(self, t: int) -> float:
        """delta_t for selection round t >= 1."""
        return max(0.0, float(self.threshold) - float(self.decay) * (t - 1))

    @classmethod
    def coerce(cls, value: CEAL | Mapping[str, Any] | bool | None) -> CEAL | None:
        """``None``/``False`` -> off, ``True`` -> defaults, a mapping -> ``CEAL(**mapping)``."""
        return coerce_options(cls, value, known=("threshold", "decay"), what="CEAL",
                              expected="ceal must be a CEAL, a mapping of its options, True/False or None")
