"""Public face of the data set registry: ``activebatch.datasets.load(name)``."""
from .data.datasets import Dataset, DatasetInfo, catalog, info, load, names, register
from .data.download import MissingFilesError

__all__ = ["Dataset", "DatasetInfo", "MissingFilesError", "catalog", "info", "load", "names", "register"]
