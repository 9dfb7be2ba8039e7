"""Evidence: what a strategy may look at, computed lazily and only when asked for.

The Learner builds an :class:`Evidence` whose fields are *providers* (callables evaluated on first
access); the one-shot API builds one from arrays the user already has. Strategies only ever read
the fields they declare in ``needs``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from ._validation import check_matrix, check_probs

__all__ = ["Evidence", "FIELDS"]

#: Evidence fields and what they hold. Rows index the *candidates* (the unlabeled items offered
#: for selection), in the order the caller gave them.
FIELDS: dict[str, str] = {
    "probs": "(N, K) softmax outputs on the candidates",
    "embeddings": "(N, d) penultimate-layer outputs on the candidates",
    "labeled_embeddings": "(L, d) penultimate-layer outputs on the labeled items",
    "mc_probs": "(S, N, K) softmax outputs of S stochastic forward passes with consistent dropout masks, "
                "or of the S members of a committee",
    "learner": "the Learner that produced the evidence (model-level strategies)",
    "pool": "the Pool the candidates come from (model-level strategies)",
}
_TENSOR_FIELDS = ("probs", "embeddings", "labeled_embeddings", "mc_probs")


class Evidence:
    """Lazily computed model outputs on ``n_candidates`` candidate items.

    Parameters
    ----------
    n_candidates : int
        Number of candidate rows N.
    candidate_ids : array of shape (N,), optional
        Pool indices of the candidates (set by the Learner; informational for strategies).
    **fields
        Each field of :data:`FIELDS` as a value, or as a zero-argument callable computing it on
        first access.
    """

    def __init__(self, n_candidates: int, *, candidate_ids: Any = None,
                 **fields: Any) -> None:
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown evidence field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")
        self.n_candidates = int(n_candidates)
        self.candidate_ids = candidate_ids
        self._values: dict[str, Any] = {}
        self._providers: dict[str, Callable[[], Any]] = {}
        for key, value in fields.items():
            if value is None:
                continue
            if callable(value) and key in _TENSOR_FIELDS:
                self._providers[key] = value
            else:
                self._values[key] = value

    @classmethod
    def from_arrays(cls, *, probs: Any = None, embeddings: Any = None, labeled_embeddings: Any = None,
                    mc_probs: Any = None) -> "Evidence":
        """Validate user-supplied arrays (numpy or torch) and wrap them as Evidence.

        Raises ``ValueError`` naming the problem for wrong shapes, mismatched lengths, NaN/inf
        and probability rows that are negative or do not sum to 1.
        """
        n = None
        out: dict[str, torch.Tensor] = {}
        if probs is not None:
            out["probs"] = check_probs(probs, "probs")
            n = out["probs"].shape[0]
        if embeddings is not None:
            out["embeddings"] = check_matrix(embeddings, "embeddings", rows=n, rows_from="probs")
            n = out["embeddings"].shape[0]
        if labeled_embeddings is not None:
            d = out["embeddings"].shape[1] if "embeddings" in out else None
            out["labeled_embeddings"] = check_matrix(labeled_embeddings, "labeled_embeddings", cols=d,
                                                     cols_from="embeddings")
        if mc_probs is not None:
            out["mc_probs"] = _check_mc_probs(mc_probs, n, out.get("probs"))
            n = out["mc_probs"].shape[1]
        if n is None:
            raise ValueError("no candidate evidence given: pass probs, embeddings or mc_probs")
        return cls(n, **out)

    def has(self, name: str) -> bool:
        """Whether field ``name`` is available (computed or computable)."""
        return name in self._values or name in self._providers

    def missing(self, needs: Iterable[str]) -> list[str]:
        """The fields of ``needs`` this evidence cannot supply."""
        return [k for k in needs if not self.has(k)]

    def get(self, name: str) -> Any:
        if name not in FIELDS:
            raise AttributeError(f"unknown evidence field {name!r}; known: {sorted(FIELDS)}")
        if name not in self._values:
            if name not in self._providers:
                raise KeyError(f"evidence field {name!r} ({FIELDS[name]}) was not provided")
            self._values[name] = self._providers.pop(name)()
        return self._values[name]

    def subset(self, rows: torch.Tensor | Any) -> "Evidence":
        """Evidence restricted to candidate rows ``rows`` (labeled_embeddings unchanged)."""
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        fields: dict[str, Any] = {}
        for key in FIELDS:
            if not self.has(key):
                continue
            if key in ("probs", "embeddings"):
                fields[key] = (lambda k=key: _take(self.get(k), rows_t, 0))
            elif key == "mc_probs":
                fields[key] = (lambda: _take(self.get("mc_probs"), rows_t, 1))
            elif key == "labeled_embeddings":
                fields[key] = (lambda: self.get("labeled_embeddings"))
            else:
                fields[key] = self._values[key]
        ids = None
        if self.candidate_ids is not None:
            ids = self.candidate_ids[rows_t.cpu().numpy()]
        return Evidence(len(rows_t), candidate_ids=ids, **fields)

    # Convenience attribute access -----------------------------------------------------------
    probs = property(lambda self: self.get("probs"), doc=FIELDS["probs"])
    embeddings = property(lambda self: self.get("embeddings"), doc=FIELDS["embeddings"])
    labeled_embeddings = property(lambda self: self.get("labeled_embeddings"), doc=FIELDS["labeled_embeddings"])
    mc_probs = property(lambda self: self.get("mc_probs"), doc=FIELDS["mc_probs"])
    learner = property(lambda self: self.get("learner"), doc=FIELDS["learner"])
    pool = property(lambda self: self.get("pool"), doc=FIELDS["pool"])

    def __repr__(self) -> str:
        have = [k for k in FIELDS if k in self._values]
        lazy = [k for k in FIELDS if k in self._providers]
        return f"Evidence(n_candidates={self.n_candidates}, computed={have}, lazy={lazy})"


def _take(t: torch.Tensor, rows: torch.Tensor, dim: int) -> torch.Tensor:
    return t.index_select(dim, rows.to(t.device))


def _check_mc_probs(value: Any, n: int | None, probs: torch.Tensor | None) -> torch.Tensor:
    from ._validation import as_tensor  # local: keeps the public import list short

    t = as_tensor(value, "mc_probs")
    if t.ndim != 3:
        raise ValueError(f"mc_probs must have shape (S, N, K) (samples, candidates, classes), got {tuple(t.shape)}")
    if n is not None and t.shape[1] != n:
        raise ValueError(f"mc_probs has {t.shape[1]} candidates (axis 1) but {n} are expected (rows of probs/embeddings)")
    if probs is not None and t.shape[2] != probs.shape[1]:
        raise ValueError(f"mc_probs has {t.shape[2]} classes but probs has {probs.shape[1]}")
    flat = t.reshape(-1, t.shape[-1])
    check_probs(flat, "mc_probs")
    return t
