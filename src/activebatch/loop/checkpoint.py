"""Round-level checkpoints of a run: a run stopped part-way (a crash, a killed job, a machine given
back) continues from its last completed round and ends with the result it would have had.

What a checkpoint holds is everything :func:`activebatch.run` carries from one round to the next
that cannot be recomputed from the labels: the labels given so far, the rounds' records, the state
of the selection random stream, a stateful strategy's state, the stopping rules' memory and the
last round's pseudo-labels. The models are not stored: every round trains from scratch with a seed
of its own, so refitting the last round's model on its training set, with its seed, gives the same
weights (exactly on the CPU; on a GPU as exactly as training is deterministic there).

A checkpoint is a pickle: load only files this library wrote for you.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .history import History

__all__ = ["RunCheckpoint", "CheckpointMismatchError"]

_MAGIC = "activebatch-run-checkpoint"
_VERSION = 1


class CheckpointMismatchError(ValueError):
    """A checkpoint file belongs to another run (other data, strategy, batch size, seed...)."""


@dataclass
class RunCheckpoint:
    """The state of a run after a completed round (see the module's docstring).

    ``signature`` identifies the run (data, model, strategy and its options, sizes, seed, loop
    options); ``start_labels`` and ``labels`` are the pool's labeled ``(indices, labels)`` before
    the run and now; ``select_rng`` is the bit generator state of the selection stream;
    ``seconds`` the wall time spent so far; ``entropy`` the run's root seed (drawn when
    ``seed=None``).
    """

    signature: dict[str, Any]
    start_labels: tuple[np.ndarray, np.ndarray]
    labels: tuple[np.ndarray, np.ndarray]
    history: History
    select_rng: dict[str, Any]
    strategy_state: dict[str, Any]
    rules: Any
    stopped: bool
    last_pseudo: tuple[np.ndarray, np.ndarray, float] | None
    seconds: float
    entropy: int

    def save(self, path: str | Path) -> None:
        """Write atomically: a kill while writing leaves the previous checkpoint intact."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"magic": _MAGIC, "version": _VERSION, "state": self}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> RunCheckpoint | None:
        """The checkpoint at ``path``, or None when there is none."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            with open(path, "rb") as fh:
                payload = pickle.load(fh)
        except Exception as exc:   # a truncated or foreign file: say which, do not guess
            raise ValueError(f"{path} is not a readable run checkpoint ({type(exc).__name__}: {exc}); delete it "
                             "to start the run from round 0") from exc
        if not isinstance(payload, dict) or payload.get("magic") != _MAGIC:
            raise ValueError(f"{path} is not a run checkpoint written by activebatch")
        if payload.get("version") != _VERSION:
            raise ValueError(f"{path} is a run checkpoint of format {payload.get('version')}, this version reads "
                             f"format {_VERSION}; delete it to start the run from round 0")
        return payload["state"]

    def check_signature(self, signature: dict[str, Any], path: str | Path) -> None:
        """Refuse to continue another run's checkpoint, naming what differs."""
        keys = sorted(set(signature) | set(self.signature))
        differ = [k for k in keys if self.signature.get(k) != signature.get(k)]
        if differ:
            what = "; ".join(f"{k}: checkpoint {self.signature.get(k)!r}, this run {signature.get(k)!r}"
                             for k in differ)
            raise CheckpointMismatchError(f"{path} holds another run ({what}); give another checkpoint path or "
                                          "delete the file to start this run from round 0")


def labeled_state(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, labels)`` of the labeled items of a pool's label array (-1 = unlabeled)."""
    idx = np.flatnonzero(labels >= 0)
    return idx, labels[idx].copy()


def same_labels(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))


def describe(value: Any) -> Any:
    """A strategy option as comparable plain data: scalars and strings as they are, containers
    item by item, anything else by its type (an object's identity differs between processes)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    return f"<{type(value).__name__}>"
