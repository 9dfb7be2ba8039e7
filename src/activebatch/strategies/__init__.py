"""Selection strategies: one module per family, all registered by name.

>>> from activebatch import strategies
>>> strategies.names()  # doctest: +SKIP
['badge', 'coreset', 'entropy', 'least_confidence', 'margin', 'random']
"""
from .base import Strategy, get, names, register, strategy_class
from . import badge, coreset, kdpp, random, uncertainty  # noqa: F401  (registers the strategies)
from .badge import Badge
from .coreset import CoreSet
from .kdpp import KDPP
from .random import Random
from .uncertainty import Entropy, LeastConfidence, Margin

__all__ = ["Strategy", "get", "names", "register", "strategy_class", "Badge", "CoreSet", "KDPP", "Random",
           "Entropy", "LeastConfidence", "Margin"]
