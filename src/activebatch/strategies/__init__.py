"""Selection strategies: one module per family, all registered by name.

A strategy maps :class:`~activebatch.learning.evidence.Evidence` to a :class:`Selection`. A new
one subclasses :class:`Strategy` (or :class:`ScoreStrategy` for a per-item score), is decorated
with :func:`register` and is checked with :func:`activebatch.testing.check_strategy`.

>>> from activebatch import strategies
>>> strategies.names()  # doctest: +SKIP
['adversarial_bim', 'adversarial_deepfool', 'albl', 'bald', 'badge', ...]
"""
# Importing the families registers their strategies.
from .adversarial import AdversarialBIM, AdversarialDeepFool
from .albl import ALBL
from .badge import Badge
from .bait import Bait
from .base import Feedback, ScoreStrategy, Selection, Strategy, get, names, register, strategy_class
from .bayesian import BALD, BatchBALD, EntropyDropout, LeastConfidenceDropout, MarginDropout, MeanSTD, VarRatio
from .cal import CAL
from .clue import CLUE
from .cluster_margin import ClusterMargin
from .committee import ConsensusEntropy, KLDivergence, VoteEntropy
from .coreset import CoreSet
from .discriminative import Discriminative
from .diverse_minibatch import DiverseMiniBatch
from .dropquery import DropQuery
from .egl import EGL
from .epig import EPIG
from .information_density import InformationDensity
from .kdpp import KDPP
from .label_dispersion import LabelDispersion
from .loss_prediction import LossPrediction
from .mal import MAL
from .probcover import ProbCover
from .random import Random
from .ranked_batch import RankedBatch
from .suggestive_annotation import SuggestiveAnnotation
from .typiclust import TypiClust
from .uncertainty import Entropy, LeastConfidence, Margin
from .vaal import VAAL

__all__ = ["Feedback", "ScoreStrategy", "Selection", "Strategy", "get", "names", "register", "strategy_class",
           "ALBL", "AdversarialBIM", "AdversarialDeepFool", "BALD", "Badge", "Bait", "BatchBALD", "CAL", "CLUE",
           "ClusterMargin", "Discriminative", "DiverseMiniBatch", "DropQuery", "SuggestiveAnnotation",
           "ConsensusEntropy", "CoreSet", "EGL", "EPIG", "Entropy", "EntropyDropout",
           "InformationDensity", "KDPP", "KLDivergence", "LabelDispersion", "LossPrediction", "MAL",
           "LeastConfidence", "LeastConfidenceDropout", "Margin", "MarginDropout", "MeanSTD", "Random",
           "RankedBatch",
           "ProbCover", "TypiClust", "VAAL", "VarRatio", "VoteEntropy"]
