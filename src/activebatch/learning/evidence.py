"""Evidence: what a strategy may look at, computed lazily and only when asked for.

The Learner builds an :class:`Evidence` whose fields are *providers* (callables evaluated on first
access); the one-shot API builds one from arrays the user already has. Strategies only ever read
the fields they declare in ``needs``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ..kernels.rowblocks import RowSelection, is_row_source, rows_per_block
from ..utils.validation import as_tensor, check_labels, check_matrix, check_probs

__all__ = ["Evidence", "FIELDS", "CANDIDATE_FIELDS", "ARRAY_FIELDS"]

#: Evidence fields and what they hold. Rows index the *candidates* (the unlabeled items offered
#: for selection), in the order the caller gave them.
FIELDS: dict[str, str] = {
    "probs": "(N, K) softmax outputs on the candidates",
    "embeddings": "(N, d) penultimate-layer outputs on the candidates",
    "labeled_embeddings": "(L, d) penultimate-layer outputs on the labeled items",
    "mc_probs": "(S, N, K) softmax outputs of S stochastic forward passes with consistent dropout masks, "
                "or of the S members of a committee",
    "labeled_probs": "(L, K) softmax outputs on the labeled items",
    "labels": "(L,) class labels of the labeled items",
    "target_mc_probs": "(S, T, K) the same S stochastic passes (or members) on T target inputs",
    "learner": "the Learner that produced the evidence (model-level strategies)",
    "pool": "the Pool the candidates come from (model-level strategies)",
}
#: Fields given as arrays (ab.select's keywords, the select command's files), in FIELDS order.
ARRAY_FIELDS = ("probs", "embeddings", "labeled_embeddings", "mc_probs", "labeled_probs", "labels", "target_mc_probs")
#: Fields whose rows (axis 1 for mc_probs) are the candidates; the others describe the labeled
#: items or the target inputs and are not restricted by an exclusion.
CANDIDATE_FIELDS = ("probs", "embeddings", "mc_probs")

#: Fields that may be kept as memory maps and read in row blocks.
_STREAM_FIELDS = ("probs", "embeddings", "labeled_embeddings")


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
        first access. A numpy memory map (or :class:`~activebatch.kernels.rowblocks.RowSelection` of
        one) given for ``probs``, ``embeddings`` or ``labeled_embeddings`` is kept as is for
        kernels that read row blocks (:meth:`stream`); reading the field with :meth:`get`
        converts it to a tensor on first access.
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
        # Row sources (memory maps) as given, for strategies that stream them in row blocks.
        self._streams: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None:
                continue
            if key in _STREAM_FIELDS and is_row_source(value):
                self._streams[key] = value
                self._providers[key] = (lambda v=value, k=key: _read_whole(v, k))
            elif callable(value) and key in ARRAY_FIELDS:
                self._providers[key] = value
            else:
                self._values[key] = value

    @classmethod
    def from_arrays(cls, *, probs: Any = None, embeddings: Any = None, labeled_embeddings: Any = None,
                    mc_probs: Any = None, labeled_probs: Any = None, labels: Any = None,
                    target_mc_probs: Any = None, read: Iterable[str] | None = None) -> Evidence:
        """Validate user-supplied arrays (numpy or torch) and wrap them as Evidence.

        Raises ``ValueError`` naming the problem for wrong shapes, mismatched lengths, NaN/inf
        and probability rows that are negative or do not sum to 1.

        Parameters
        ----------
        probs, embeddings, labeled_embeddings, mc_probs, labeled_probs, labels, target_mc_probs : optional
            The fields (arrays, memory maps or tensors), shaped as :data:`FIELDS` says.
        read : iterable of str, optional
            The fields a strategy will read. Every given field has its shape checked against
            the others (so mismatched evidence is refused whichever strategy runs); only the
            fields in ``read`` (default: all) have their values checked and are kept.

        Memory-mapped numpy arrays (``np.load(path, mmap_mode="r")``, float16, float32 or
        float64) given for ``probs``, ``embeddings`` or ``labeled_embeddings`` are checked in row
        blocks and kept unconverted, so a pool larger than memory is never read whole here;
        strategies that stream (BADGE, core-set) read them through :meth:`stream`, per-candidate
        scores through :meth:`rowwise`, and the others get a tensor when they read the field.
        ``mc_probs`` is always converted.
        """
        given = {"probs": probs, "embeddings": embeddings, "labeled_embeddings": labeled_embeddings,
                 "mc_probs": mc_probs, "labeled_probs": labeled_probs, "labels": labels,
                 "target_mc_probs": target_mc_probs}
        keep = set(given) if read is None else set(read)
        _check_shapes({k: v for k, v in given.items() if v is not None})
        out: dict[str, Any] = {}
        if probs is not None and "probs" in keep:
            out["probs"] = check_probs(probs, "probs", keep_row_source=True)
        if embeddings is not None and "embeddings" in keep:
            out["embeddings"] = check_matrix(embeddings, "embeddings", keep_row_source=True)
        if labeled_embeddings is not None and "labeled_embeddings" in keep:
            out["labeled_embeddings"] = check_matrix(labeled_embeddings, "labeled_embeddings", keep_row_source=True)
        if mc_probs is not None and "mc_probs" in keep:
            out["mc_probs"] = _check_mc_probs(mc_probs)
        if labeled_probs is not None and "labeled_probs" in keep:
            out["labeled_probs"] = check_probs(labeled_probs, "labeled_probs")
        if labels is not None and "labels" in keep:
            out["labels"] = torch.as_tensor(check_labels(labels, "labels"))
        if target_mc_probs is not None and "target_mc_probs" in keep:
            out["target_mc_probs"] = _check_mc_probs(target_mc_probs, "target_mc_probs")
        n = _n_candidates(given)
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

    def stream(self, name: str) -> Any:
        """Field ``name`` for a kernel that reads row blocks, without converting it.

        Returns the memory-mapped array (or row selection of one) the caller gave, as long as
        no strategy has converted it yet; otherwise the same as :meth:`get` (a tensor). Kernels
        reading the result must accept both, as :func:`activebatch.kernels.kmeanspp.badge_kmeanspp`
        does.
        """
        if name in self._streams and name not in self._values:
            return self._streams[name]
        return self.get(name)

    def rowwise(self, fn: Callable[..., torch.Tensor], *names: str) -> torch.Tensor:
        """``fn(field, ...)`` for a computation that works on each candidate row by itself.

        ``fn`` receives the fields ``names`` (rows aligned) and returns one value per row. When
        any of them is a memory map not yet converted, the fields are read a block of rows at a
        time (the row-block rule: 8M values of the widest field) and the results concatenated: the same values as
        on the whole tensors, with memory O(N) rather than the whole field (a score per
        candidate over a pool larger than memory). Otherwise ``fn`` gets the tensors of
        :meth:`get`.
        """
        srcs = [self.stream(k) for k in names]
        if not any(is_row_source(v) for v in srcs):
            return fn(*srcs)
        rows = rows_per_block(max(int(np.prod(v.shape[1:])) for v in srcs))
        parts = []
        for start in range(0, self.n_candidates, rows):
            stop = min(start + rows, self.n_candidates)
            parts.append(fn(*(_read_whole(v[start:stop], k) if is_row_source(v) else v[start:stop]
                              for k, v in zip(names, srcs))))
        return torch.cat(parts)

    def subset(self, rows: torch.Tensor | Any) -> Evidence:
        """Evidence restricted to candidate rows ``rows`` (the labeled items' and target fields unchanged).

        A memory-mapped field not yet converted stays one: the subset holds a
        :class:`~activebatch.kernels.rowblocks.RowSelection` that reads only the chosen rows, block by
        block, when a kernel asks for them (so excluding a few rows of a million-row map copies
        nothing up front).
        """
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        fields: dict[str, Any] = {}
        for key in FIELDS:
            if not self.has(key):
                continue
            if key in ("probs", "embeddings") and key in self._streams and key not in self._values:
                fields[key] = RowSelection(self._streams[key], rows_t.cpu().numpy())
            elif key in ("probs", "embeddings"):
                fields[key] = (lambda k=key: _take(self.get(k), rows_t, 0))
            elif key == "mc_probs":
                fields[key] = (lambda: _take(self.get("mc_probs"), rows_t, 1))
            elif key == "labeled_embeddings" and key in self._streams and key not in self._values:
                fields[key] = self._streams[key]
            elif key not in CANDIDATE_FIELDS and key in ARRAY_FIELDS:
                # the labeled items and the target inputs: not restricted by the exclusion
                fields[key] = (lambda k=key: self.get(k))
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
    labeled_probs = property(lambda self: self.get("labeled_probs"), doc=FIELDS["labeled_probs"])
    labels = property(lambda self: self.get("labels"), doc=FIELDS["labels"])
    target_mc_probs = property(lambda self: self.get("target_mc_probs"), doc=FIELDS["target_mc_probs"])
    learner = property(lambda self: self.get("learner"), doc=FIELDS["learner"])
    pool = property(lambda self: self.get("pool"), doc=FIELDS["pool"])

    def __repr__(self) -> str:
        have = [k for k in FIELDS if k in self._values]
        lazy = [k for k in FIELDS if k in self._providers]
        return f"Evidence(n_candidates={self.n_candidates}, computed={have}, lazy={lazy})"


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in (value.shape if hasattr(value, "shape") else np.shape(value)))


def _n_candidates(given: dict[str, Any]) -> int:
    """The number of candidate rows N of the given fields (already checked to agree)."""
    for key in ("probs", "embeddings"):
        if given.get(key) is not None:
            return _shape(given[key])[0]
    if given.get("mc_probs") is not None:
        return _shape(given["mc_probs"])[1]
    raise ValueError("no candidate evidence given: pass probs, embeddings or mc_probs so that the number of "
                     "candidates is known")


def _check_shapes(given: dict[str, Any]) -> None:
    """Check the dimensions of every given field and that they agree, before any value is read.

    The messages are those of the value checks (:func:`~activebatch.utils.validation.check_matrix`),
    so a field gets the same error whether or not the strategy reads it.
    """
    shapes = {k: _shape(v) for k, v in given.items()}
    for key, shape in shapes.items():
        if key == "mc_probs":
            if len(shape) != 3:
                raise ValueError(f"mc_probs must have shape (S, N, K) (samples, candidates, classes), got {shape}")
        elif key == "target_mc_probs":
            if len(shape) != 3:
                raise ValueError(f"target_mc_probs must have shape (S, T, K) (samples, targets, classes), got {shape}")
        elif key == "labels":
            if len(shape) != 1:
                raise ValueError(f"labels must be a 1-D array of class labels, got shape {shape}")
        elif len(shape) != 2:
            raise ValueError(f"{key} must be a 2-D array of shape (n_rows, n_columns), got shape {shape}")
    if "probs" in shapes and "embeddings" in shapes and shapes["embeddings"][0] != shapes["probs"][0]:
        raise ValueError(f"embeddings has {shapes['embeddings'][0]} rows but {shapes['probs'][0]} are expected "
                         "(the number of rows of probs)")
    if "embeddings" in shapes and "labeled_embeddings" in shapes \
            and shapes["labeled_embeddings"][1] != shapes["embeddings"][1]:
        raise ValueError(f"labeled_embeddings has {shapes['labeled_embeddings'][1]} columns but "
                         f"{shapes['embeddings'][1]} are expected (the number of columns of embeddings)")
    if "mc_probs" in shapes:
        n = shapes["probs"][0] if "probs" in shapes else shapes["embeddings"][0] if "embeddings" in shapes else None
        if n is not None and shapes["mc_probs"][1] != n:
            raise ValueError(f"mc_probs has {shapes['mc_probs'][1]} candidates (axis 1) but {n} are expected "
                             "(rows of probs/embeddings)")
        if "probs" in shapes and shapes["mc_probs"][2] != shapes["probs"][1]:
            raise ValueError(f"mc_probs has {shapes['mc_probs'][2]} classes but probs has {shapes['probs'][1]}")
    # The labeled items: one row each in labeled_embeddings, labeled_probs and labels.
    lab_rows = [(k, shapes[k][0]) for k in ("labeled_embeddings", "labeled_probs", "labels") if k in shapes]
    for key, rows in lab_rows[1:]:
        if rows != lab_rows[0][1]:
            raise ValueError(f"{key} has {rows} rows but {lab_rows[0][1]} are expected (the labeled items of "
                             f"{lab_rows[0][0]})")
    classes = [(k, shapes[k][-1]) for k in ("probs", "mc_probs", "labeled_probs", "target_mc_probs") if k in shapes]
    for key, k in classes[1:]:
        if k != classes[0][1]:
            raise ValueError(f"{key} has {k} classes (last axis) but {classes[0][0]} has {classes[0][1]}")
    if "target_mc_probs" in shapes and "mc_probs" in shapes and shapes["target_mc_probs"][0] != shapes["mc_probs"][0]:
        raise ValueError(f"target_mc_probs has {shapes['target_mc_probs'][0]} samples (axis 0) but mc_probs has "
                         f"{shapes['mc_probs'][0]}: both must come from the same stochastic passes")


def _read_whole(value: Any, name: str) -> torch.Tensor:
    """A row source read into memory, for strategies that need the whole field as a tensor.

    One private copy in the dtype :func:`~activebatch.utils.validation.as_tensor` would give
    (float16 becomes float32): a tensor must not alias a read-only map, which torch cannot
    protect from writes.
    """
    dtype = np.dtype(value.dtype)
    target = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
    return as_tensor(np.array(value, dtype=target), name)


def _take(t: torch.Tensor, rows: torch.Tensor, dim: int) -> torch.Tensor:
    return t.index_select(dim, rows.to(t.device))


def _check_mc_probs(value: Any, name: str = "mc_probs") -> torch.Tensor:
    """Samples of probabilities, (S, items, K): every row a distribution (shapes against the other
    fields are checked beforehand by :func:`_check_shapes`)."""
    t = as_tensor(value, name)
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (S, N, K) (samples, items, classes), got {tuple(t.shape)}")
    check_probs(t.reshape(-1, t.shape[-1]), name)
    return t
