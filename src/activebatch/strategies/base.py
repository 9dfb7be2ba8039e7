"""The Strategy contract and the name registry."""
from __future__ import annotations

import inspect
from typing import Any, ClassVar, Callable, TypeVar

import numpy as np

from ..evidence import FIELDS, Evidence

__all__ = ["Strategy", "register", "get", "names", "strategy_class"]

_REGISTRY: dict[str, type["Strategy"]] = {}

S = TypeVar("S", bound=type["Strategy"])


class Strategy:
    """Maps :class:`~activebatch.evidence.Evidence` on N candidates to n distinct positions.

    Subclasses set ``name`` (registry key), ``needs`` (the Evidence fields they read),
    optionally ``optional`` (fields used when present) and implement :meth:`_select`. Options are keyword arguments of ``__init__``. The public
    :meth:`select` checks the request once; ``_select`` may assume 1 <= n <= N and that every
    field in ``needs`` is available.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Evidence fields read when available but not required.
    optional: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        """Strategies without options take no arguments."""

    def select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        """Choose ``n`` distinct candidate positions, in selection order.

        Parameters
        ----------
        evidence : Evidence
            Model outputs on the N candidates.
        n : int
            Batch size, 1 <= n <= N.
        rng : numpy.random.Generator
            The only source of randomness.

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        missing = evidence.missing(self.needs)
        if missing:
            hints = ", ".join(f"{m} ({FIELDS[m]})" for m in missing)
            raise ValueError(f"strategy {self.name!r} needs evidence that was not given: {hints}")
        if not 1 <= n <= evidence.n_candidates:
            raise ValueError(f"n must be between 1 and the number of candidates "
                             f"({evidence.n_candidates}), got {n}")
        out = np.asarray(self._select(evidence, n, rng), dtype=np.int64)
        if out.shape != (n,) or np.unique(out).size != n or out.min() < 0 or out.max() >= evidence.n_candidates:
            raise RuntimeError(f"strategy {self.name!r} returned an invalid selection {out!r}")  # pragma: no cover
        return out

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The strategy's options (the keyword arguments of its constructor)."""
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self" and hasattr(self, k)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def register(cls: S) -> S:
    """Class decorator adding a Strategy subclass to the registry under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not cls.name:
        raise TypeError("register expects a Strategy subclass with a non-empty name")
    unknown = (set(cls.needs) | set(cls.optional)) - set(FIELDS)
    if unknown:
        raise TypeError(f"strategy {cls.name!r} needs unknown evidence fields {sorted(unknown)}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a strategy named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Names of all registered strategies, sorted."""
    return sorted(_REGISTRY)


def strategy_class(name: str) -> type[Strategy]:
    """The registered class for ``name``; unknown names raise a ``ValueError`` listing the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"strategy name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(names())}") from None


def get(strategy: "str | Strategy", **options: Any) -> Strategy:
    """A Strategy instance from a registered name and options (or an instance, returned as is)."""
    if isinstance(strategy, Strategy):
        if options:
            raise TypeError("options can only be given with a strategy name, not with a Strategy instance")
        return strategy
    cls = strategy_class(strategy)
    params = inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    allowed = [k for k in params if k != "self" and params[k].kind is not params[k].VAR_KEYWORD]
    bad = [k for k in options if k not in allowed]
    if bad and not accepts_any:
        opts = ", ".join(allowed) if allowed else "none"
        raise TypeError(f"strategy {strategy!r} got unknown option(s) {bad}; its options: {opts}")
    return cls(**options)


def _ranked(scores, n: int, *, largest: bool) -> np.ndarray:
    """Top-n positions by score (stable: ties go to the lowest index), best first."""
    import torch

    s = scores.detach().to(torch.float64)
    s = -s if largest else s
    order = torch.sort(s, stable=True).indices[:n]
    return order.cpu().numpy()


Ranker = Callable[..., np.ndarray]
