"""Readers of data files in their published formats (no torchvision needed).

- :mod:`.idx` — IDX files (MNIST, Fashion-MNIST, EMNIST), gzipped or not;
- :mod:`.cifar` — the CIFAR-10 python pickle batches, from the tar.gz or an extracted folder;
- :mod:`.svhn` — the SVHN cropped-digit MATLAB files;
- :mod:`.tables` — ARFF and Parquet tables (OpenML) and KEEL ``.dat`` files.
"""
from .cifar import read_cifar10
from .idx import read_idx, write_idx
from .svhn import read_svhn
from .tables import Table, read_arff, read_keel_dat, read_parquet

__all__ = ["Table", "read_arff", "read_cifar10", "read_idx", "read_keel_dat", "read_parquet", "read_svhn",
           "write_idx"]
