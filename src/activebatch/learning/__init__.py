"""Learning: the models, the :class:`Learner` that trains them (extended through training
callbacks), committees, MC dropout, and the :class:`Evidence` they hand to strategies."""
from . import models
from .callbacks import BatchState, Callback, FitState, LRScheduler
from .committee import Committee
from .evidence import Evidence
from .forgetting import ForgettingEvents, ForgettingStats
from .learner import FitResult, Learner

__all__ = ["BatchState", "Callback", "Committee", "Evidence", "FitResult", "FitState", "ForgettingEvents",
           "ForgettingStats", "LRScheduler", "Learner", "models"]
