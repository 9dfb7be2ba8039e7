"""Data: the :class:`Pool` of candidates, the data-set registry, file-format readers and generators.

``activebatch.datasets.load(name)`` returns a :class:`Dataset`; ``names()`` and ``catalog()`` list
what is registered (the bundled sets, the BADGE paper's image and OpenML sets, any
``openml-<id>``).
"""
from . import images, repeated_mnist, tabular  # noqa: E402,F401  (register their data sets)
from .base import Dataset, DatasetInfo
from .download import MissingFilesError
from .pool import LabelConflictError, Pool
from .registry import catalog, info, load, names, register

__all__ = ["Dataset", "DatasetInfo", "LabelConflictError", "MissingFilesError", "Pool", "catalog", "info",
           "load", "names", "register"]
