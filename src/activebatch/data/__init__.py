"""Pools, the data set registry, file-format readers and exact generators."""
from . import datasets
from .datasets import Dataset
from .pool import LabelConflictError, Pool
from . import images, openml, tabular  # noqa: E402,F401  (register their data sets)
from . import repeated_mnist  # noqa: E402,F401  (registers repeated-mnist)
from .download import MissingFilesError

__all__ = ["Dataset", "LabelConflictError", "MissingFilesError", "Pool", "datasets"]
