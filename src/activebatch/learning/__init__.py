"""Learning: the models, the :class:`Learner` that trains them (extended through training
callbacks), committees, the cheap ensembles, MC dropout, the :class:`Evidence` they hand to strategies, and
SimCLR pretraining (:func:`pretrain_simclr`) for frozen self-supervised features."""
from . import models
from .callbacks import BatchState, Callback, FitState, LRScheduler, RestartIfStalled
from .committee import Committee
from .ensembles import DiversityEnsemble, SnapshotEnsemble, SplitHeadEnsemble
from .evidence import Evidence
from .forgetting import ForgettingEvents, ForgettingStats
from .learner import FitResult, Learner
from .simclr import SimCLREncoder, nt_xent, pretrain_simclr, simclr_augment

__all__ = ["BatchState", "Callback", "Committee", "DiversityEnsemble", "Evidence", "FitResult", "FitState",
           "ForgettingEvents", "ForgettingStats", "LRScheduler", "Learner", "RestartIfStalled", "SimCLREncoder",
           "SnapshotEnsemble", "SplitHeadEnsemble", "models", "nt_xent", "pretrain_simclr", "simclr_augment"]
