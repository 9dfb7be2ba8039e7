"""Learning: the models, the :class:`Learner` that trains them (with callbacks), committees, MC
dropout, and the :class:`Evidence` they hand to strategies."""
from . import models
from .committee import Committee
from .evidence import Evidence
from .learner import FitResult, Learner

__all__ = ["Committee", "Evidence", "FitResult", "Learner", "models"]
