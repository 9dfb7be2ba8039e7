"""Public face of the data set registry: ``activebatch.datasets.load(name)``."""
from .data.datasets import Dataset, load, names, register

__all__ = ["Dataset", "load", "names", "register"]
