"""Learning: the models, the :class:`Learner` that trains them (extended through training
callbacks), committees, the cheap ensembles, MC dropout, and the :class:`Evidence` they hand to strategies."""
from . import models
from .callbacks import BatchState, Callback, FitState, LRScheduler
from .committee import Committee
from .ensembles import DiversityEnsemble, SnapshotEnsemble, SplitHeadEnsemble
from .evidence import Evidence
from .forgetting import ForgettingEvents, ForgettingStats
from .learner import FitResult, Learner

__all__ = ["BatchState", "Callback", "Committee", "DiversityEnsemble", "Evidence", "FitResult", "FitState",
           "ForgettingEvents", "ForgettingStats", "LRScheduler", "Learner", "SnapshotEnsemble", "SplitHeadEnsemble",
           "models"]
