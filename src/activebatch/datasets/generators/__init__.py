"""Exact generators for the BADGE paper's OpenML data sets whose definition is a rule.

- :mod:`.kropt` — King+Rook vs King endgame solved by retrograde analysis (OpenML #184);
- :mod:`.pokerhand` — uniformly dealt poker hands with their ranking (OpenML #155);
- :mod:`.rbf` — MOA's random RBF stream, draw for draw (OpenML #156).
"""
from . import kropt, pokerhand, rbf

__all__ = ["kropt", "pokerhand", "rbf"]
