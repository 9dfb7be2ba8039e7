"""One selection round: validate a request, apply the exclusion, call a strategy, map to ids."""
from .api import select

__all__ = ["select"]
