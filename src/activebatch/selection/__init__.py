"""One selection round: validate a request, apply the exclusion, call a strategy, map to ids.

:func:`select_round` is the one implementation; :func:`select` (model outputs as arrays), the
loop, workspaces and the ``select`` command all call it.
"""
from .api import select
from .round import MissingEvidenceError, check_evidence_available, excluded_mask, select_round

__all__ = ["MissingEvidenceError", "check_evidence_available", "excluded_mask", "select", "select_round"]
