"""Fresh parameters for a model: every fit of the BADGE protocol, a restarted fit, a member."""
from __future__ import annotations

from torch import nn

__all__ = ["reinitialise"]


def reinitialise(module: nn.Module) -> None:
    """Draw fresh parameters for ``module`` from torch's current random stream: its own
    ``reset_parameters`` when it has one, otherwise that of every sub-module that has one."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
