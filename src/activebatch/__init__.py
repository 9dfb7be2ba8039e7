"""activebatch: deep batch active learning for PyTorch.

BADGE (Ash et al., ICLR 2020) and its baselines behind one Strategy contract, a Learner that
retrains a model from scratch each round, and the loop that ties them together.

>>> import activebatch as ab
>>> ab.strategies.names()  # doctest: +SKIP

The names below are imported on first use (PEP 562), so ``import activebatch`` (and with it the
``activebatch`` command line's ``--help``) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> (module, attribute); attribute None: the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "datasets": (".datasets", None),
    "kernels": (".kernels", None),
    "strategies": (".strategies", None),
    "models": (".learning.models", None),
    "select": (".selection.api", "select"),
    "Shards": (".selection.sharded", "Shards"),
    "LabelConflictError": (".datasets.pool", "LabelConflictError"),
    "Pool": (".datasets.pool", "Pool"),
    "Evidence": (".learning.evidence", "Evidence"),
    "FitResult": (".learning.learner", "FitResult"),
    "Learner": (".learning.learner", "Learner"),
    "CEAL": (".loop", "CEAL"),
    "History": (".loop", "History"),
    "RoundRecord": (".loop", "RoundRecord"),
    "run": (".loop", "run"),
    "Committee": (".learning.committee", "Committee"),
    "SklearnLearner": (".learning.sklearn", "SklearnLearner"),
    "SkorchLearner": (".learning.sklearn", "SkorchLearner"),
}

__all__ = ["CEAL", "Committee", "Evidence", "FitResult", "History", "LabelConflictError", "Learner", "Pool",
           "RoundRecord", "Shards", "SklearnLearner", "SkorchLearner", "datasets", "kernels", "models", "run", "select",
           "strategies", "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    mod = importlib.import_module(module, __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value   # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:   # what the lazy names are, for type checkers and editors
    from . import datasets, kernels, strategies
    from .datasets.pool import LabelConflictError, Pool
    from .learning import models
    from .learning.committee import Committee
    from .learning.evidence import Evidence
    from .learning.learner import FitResult, Learner
    from .learning.sklearn import SklearnLearner, SkorchLearner
    from .loop import CEAL, History, RoundRecord, run
    from .selection.api import select
    from .selection.sharded import Shards
