"""Selection strategies: one module per family, all registered by name.

>>> from activebatch import strategies
>>> strategies.names()  # doctest: +SKIP
['badge', 'coreset', 'entropy', 'least_confidence', 'margin', 'random']
"""
from .base import Feedback, Strategy, get, names, register, strategy_class
from . import badge, coreset, kdpp, random, uncertainty  # noqa: F401  (registers the strategies)
from .badge import Badge
from .coreset import CoreSet
from .kdpp import KDPP
from .random import Random
from .uncertainty import Entropy, LeastConfidence, Margin
from . import adversarial, albl, cluster_margin, committee, egl  # noqa: F401  (registers the strategies)
from .adversarial import AdversarialBIM, AdversarialDeepFool
from .albl import ALBL
from .cluster_margin import ClusterMargin
from .committee import ConsensusEntropy, KLDivergence, VoteEntropy
from .egl import EGL

__all__ = ["Strategy", "get", "names", "register", "strategy_class", "Badge", "CoreSet", "KDPP", "Random",
           "Entropy", "LeastConfidence", "Margin"]
__all__ += ["Feedback", "AdversarialBIM", "AdversarialDeepFool", "ALBL", "ClusterMargin", "ConsensusEntropy",
            "KLDivergence", "VoteEntropy", "EGL"]
from . import bayesian  # noqa: F401  (registers the strategies)
from .bayesian import BALD, BatchBALD, EntropyDropout, LeastConfidenceDropout, MarginDropout, MeanSTD, VarRatio

__all__ += ["BALD", "BatchBALD", "EntropyDropout", "LeastConfidenceDropout", "MarginDropout", "MeanSTD",
            "VarRatio"]
