"""Pools, the data set registry and (later) file-format readers and generators."""
from . import datasets
from .datasets import Dataset
from .pool import LabelConflictError, Pool

__all__ = ["Dataset", "LabelConflictError", "Pool", "datasets"]
