"""matplotlib without a display, loaded only when a figure is drawn."""
from __future__ import annotations

from typing import Any

from ..utils.extras import require

__all__ = ["pyplot", "save"]


def pyplot(feature: str = "plotting") -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files, no display); names the extra when missing."""
    require("matplotlib", "plot", feature)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Any) -> Any:
    """Lay ``fig`` out, write it to ``path`` and free it; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
