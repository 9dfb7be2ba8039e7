"""activebatch: deep batch active learning for PyTorch.

BADGE (Ash et al., ICLR 2020) and its baselines behind one Strategy contract, a Learner that
retrains a model from scratch each round, and the loop that ties them together.

>>> import activebatch as ab
>>> ab.strategies.names()  # doctest: +SKIP
"""
from . import datasets, kernels, strategies
from .learning import models
from .selection.api import select
from .datasets.pool import LabelConflictError, Pool
from .learning.evidence import Evidence
from .learning.learner import FitResult, Learner
from .loop import CEAL, History, RoundRecord, run
from .learning.committee import Committee

__version__ = "0.1.0"

__all__ = ["CEAL", "Committee", "Evidence", "FitResult", "History", "LabelConflictError", "Learner", "Pool",
           "RoundRecord", "datasets", "kernels", "models", "run", "select", "strategies", "__version__"]
