"""matplotlib without a display, loaded only when a figure is drawn."""
from __future__ import annotations

from typing import Any

from ..utils.extras import require

__all__ = ["pyplot"]


def pyplot(feature: str = "plotting") -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files, no display); names the extra when missing."""
    require("matplotlib", "plot", feature)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
