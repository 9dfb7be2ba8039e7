"""The BADGE paper's image data sets, read from their published files.

Images are kept as uint8 arrays of shape (N, C, H, W); each Dataset carries the per-channel mean
and standard deviation of its training images, which models built with
:func:`activebatch.learning.models.for_dataset` use to standardise their inputs.

=================  ===========================================  ==============================
name               files (in ``<root>/<name>``)                 official source
=================  ===========================================  ==============================
``mnist``          ``{train,t10k}-{images-idx3,labels-idx1}``   LeCun, Cortes & Burges
                   ``-ubyte[.gz]``
``fashion-mnist``  the same four names                          Xiao, Rasul & Vollgraf (2017)
``emnist``         ``emnist-balanced-{train,test}-{images-      Cohen et al. (2017); the
                   idx3,labels-idx1}-ubyte[.gz]`` or the        balanced split, 47 classes
                   archive ``gzip.zip``
``cifar10``        ``cifar-10-python.tar.gz`` or the folder     Krizhevsky (2009)
                   ``cifar-10-batches-py``
``svhn``           ``train_32x32.mat``, ``test_32x32.mat``      Netzer et al. (2011)
=================  ===========================================  ==============================
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .download import MissingFilesError, RemoteFile, dataset_dirs, fetch, find_file, require_files
from .readers.cifar import CIFAR10_CLASSES, read_cifar10
from .readers.idx import read_idx
from .readers.svhn import read_svhn
from .registry import Dataset, register
from .splits import channel_stats

__all__ = ["SOURCES", "EMNIST_BALANCED_CLASSES"]

_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")

#: Official locations and MD5 checksums of every file (tests point these at local file:// URLs).
SOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "mnist": {  # the reference mirror of http://yann.lecun.com/exdb/mnist/
        "train-images-idx3-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                                       "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
                                       "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
                                      "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
                                      "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
                                       "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
                                       "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
                                      "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
                                      "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
    "emnist": {
        "gzip.zip": ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip", "58c8d27c78d21e728a6bc7b3cc06412e"),
    },
    "cifar10": {
        "cifar-10-python.tar.gz": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                                   "c58f30108f718f92721af3b95e74349a"),
    },
    "svhn": {
        "train_32x32.mat": ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                            "e26dedcc434d2e4c54c9b2d4a06d8373"),
        "test_32x32.mat": ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
    },
}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
#: The 47 classes of EMNIST Balanced: digits, upper-case letters, and the 11 lower-case letters
#: whose shape differs from their capital (Cohen et al. 2017, table II).
EMNIST_BALANCED_CLASSES = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt")


def _remotes(name: str) -> list[RemoteFile]:
    out = []
    for fname, (url, md5) in SOURCES[name].items():
        alt = (fname[:-3],) if fname.endswith(".gz") and name in ("mnist", "fashion-mnist") else ()
        out.append(RemoteFile(fname, url, md5=md5, alternatives=alt))
    return out


def _available(name: str):
    def check(root: Path | None) -> bool:
        try:
            _locate(name, root, False)
            return True
        except MissingFilesError:
            return False
    return check


def _image_dataset(name: str, X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, y_te: np.ndarray,
                   classes: tuple[str, ...], source: str, description: str) -> Dataset:
    mean, std = channel_stats(X_tr)
    return Dataset(name, X_tr, y_tr.astype(np.int64), X_te, y_te.astype(np.int64), n_classes=len(classes),
                   kind="image", description=description, image_shape=tuple(X_tr.shape[1:]), source=source,
                   class_names=classes, mean=mean, std=np.maximum(std, 1e-6))


def _check_images(name: str, X: np.ndarray, y: np.ndarray, n_classes: int, where: str) -> None:
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: {where} has {X.shape[0]} images but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name}: {where} holds labels outside 0..{n_classes - 1}")


def _locate(name: str, root: Path | None, download: bool) -> dict[str, Path]:
    if name == "emnist":
        return _locate_emnist(root, download)
    return require_files(name, _remotes(name), root, download)


def _load_idx_set(name: str, root: Path | None, download: bool, classes: tuple[str, ...],
                  source: str, description: str) -> Dataset:
    files = _locate(name, root, download)
    arrays = [read_idx(files[f + ".gz"]) for f in _MNIST_FILES]
    X_tr, y_tr, X_te, y_te = arrays
    for X, y, where in ((X_tr, y_tr, "the training set"), (X_te, y_te, "the test set")):
        if X.ndim != 3:
            raise ValueError(f"{name}: image files must hold (n, rows, cols) arrays, got {X.shape}")
        _check_images(name, X, y, len(classes), where)
    return _image_dataset(name, X_tr[:, None], y_tr, X_te[:, None], y_te, classes, source, description)


@register("mnist", source="IDX files (LeCun et al.)", kind="image", n_train=60000, n_test=10000, n_classes=10,
          available=_available("mnist"))
def _mnist(root: Path | None = None, download: bool = False) -> Dataset:
    """MNIST handwritten digits: 60,000 + 10,000 28x28 grey images (uint8), 10 classes."""
    return _load_idx_set("mnist", root, download, tuple(str(i) for i in range(10)),
                         "IDX files (LeCun, Cortes & Burges)", "MNIST digits, 28x28 uint8")


@register("fashion-mnist", source="IDX files (Xiao et al. 2017)", kind="image", n_train=60000, n_test=10000,
          n_classes=10, available=_available("fashion-mnist"))
def _fashion(root: Path | None = None, download: bool = False) -> Dataset:
    """Fashion-MNIST: 60,000 + 10,000 28x28 grey images of clothing (uint8), 10 classes."""
    return _load_idx_set("fashion-mnist", root, download, FASHION_CLASSES,
                         "IDX files (Xiao, Rasul & Vollgraf 2017)", "Fashion-MNIST, 28x28 uint8")


_EMNIST_FILES = ("emnist-balanced-train-images-idx3-ubyte", "emnist-balanced-train-labels-idx1-ubyte",
                 "emnist-balanced-test-images-idx3-ubyte", "emnist-balanced-test-labels-idx1-ubyte")


def _locate_emnist(root: Path | None, download: bool) -> dict[str, Path]:
    dirs = dataset_dirs("emnist", root)
    found = {f: find_file((f + ".gz", f, "gzip/" + f + ".gz"), dirs) for f in _EMNIST_FILES}
    if all(found.values()):
        return {f: p for f, p in found.items() if p is not None}
    url, md5 = SOURCES["emnist"]["gzip.zip"]
    archive = find_file(("gzip.zip", "emnist-gzip.zip"), dirs)
    if archive is None and download:
        archive = fetch(RemoteFile("gzip.zip", url, md5=md5), dirs[0])
    if archive is None:
        listing = "\n".join(f"  {f}.gz (or unzipped)" for f in _EMNIST_FILES)
        raise MissingFilesError(
            f"data set 'emnist' needs the EMNIST Balanced files in {dirs[0]}:\n{listing}\n"
            f"or the whole archive gzip.zip <- {url}\n"
            f"Put them there (or directly in {dirs[1]}), pass root= to point at the folder holding them, "
            f"or load with download=True to fetch the archive (562 MB, checksum verified).")
    return {"zip": archive}


def _read_emnist_member(archive: Path, fname: str) -> np.ndarray:
    import tempfile

    with zipfile.ZipFile(archive) as z:
        member = next((n for n in z.namelist() if n.endswith(fname + ".gz") or n.endswith(fname)), None)
        if member is None:
            raise ValueError(f"{archive}: the archive lacks {fname}")
        data = z.read(member)
    with tempfile.NamedTemporaryFile(suffix=".idx") as tmp:
        tmp.write(data)
        tmp.flush()
        return read_idx(tmp.name)


@register("emnist", source="IDX files (Cohen et al. 2017), balanced split", kind="image", n_train=112800,
          n_test=18800, n_classes=47, available=_available("emnist"))
def _emnist(root: Path | None = None, download: bool = False) -> Dataset:
    """EMNIST Balanced: 112,800 + 18,800 28x28 grey images of handwritten characters, 47 classes.

    The files store each image transposed (column-major); images are returned upright.
    """
    files = _locate_emnist(root, download)
    if "zip" in files:
        arrays = [_read_emnist_member(files["zip"], f) for f in _EMNIST_FILES]
    else:
        arrays = [read_idx(files[f]) for f in _EMNIST_FILES]
    X_tr, y_tr, X_te, y_te = arrays
    for X, y, where in ((X_tr, y_tr, "the training set"), (X_te, y_te, "the test set")):
        if X.ndim != 3:
            raise ValueError(f"emnist: image files must hold (n, rows, cols) arrays, got {X.shape}")
        _check_images("emnist", X, y, 47, where)
    X_tr = np.ascontiguousarray(X_tr.transpose(0, 2, 1))[:, None]
    X_te = np.ascontiguousarray(X_te.transpose(0, 2, 1))[:, None]
    return _image_dataset("emnist", X_tr, y_tr, X_te, y_te, EMNIST_BALANCED_CLASSES,
                          "IDX files (Cohen et al. 2017), balanced split", "EMNIST Balanced, 28x28 uint8")


def _locate_cifar(root: Path | None, download: bool) -> Path:
    dirs = dataset_dirs("cifar10", root)
    for d in dirs:
        if (d / "cifar-10-batches-py" / "test_batch").is_file():
            return d / "cifar-10-batches-py"
    return require_files("cifar10", _remotes("cifar10"), root, download,
                         note="An extracted cifar-10-batches-py folder in the same place works too.")[
        "cifar-10-python.tar.gz"]


@register("cifar10", source="python pickle batches (Krizhevsky 2009)", kind="image", n_train=50000, n_test=10000,
          n_classes=10, available=lambda root: _exists(lambda: _locate_cifar(root, False)))
def _cifar10(root: Path | None = None, download: bool = False) -> Dataset:
    """CIFAR-10: 50,000 + 10,000 32x32 colour images (uint8), 10 classes."""
    X_tr, y_tr, X_te, y_te = read_cifar10(_locate_cifar(root, download))
    for X, y, where in ((X_tr, y_tr, "the training set"), (X_te, y_te, "the test set")):
        _check_images("cifar10", X, y, 10, where)
    return _image_dataset("cifar10", X_tr, y_tr, X_te, y_te, CIFAR10_CLASSES,
                          "python pickle batches (Krizhevsky 2009)", "CIFAR-10, 3x32x32 uint8")


@register("svhn", source="MATLAB files (Netzer et al. 2011)", kind="image", n_train=73257, n_test=26032,
          n_classes=10, available=_available("svhn"))
def _svhn(root: Path | None = None, download: bool = False) -> Dataset:
    """SVHN cropped digits: 73,257 + 26,032 32x32 colour images (uint8), 10 classes (label 10 -> 0)."""
    files = _locate("svhn", root, download)
    X_tr, y_tr = read_svhn(files["train_32x32.mat"])
    X_te, y_te = read_svhn(files["test_32x32.mat"])
    return _image_dataset("svhn", X_tr, y_tr, X_te, y_te, tuple(str(i) for i in range(10)),
                          "MATLAB files (Netzer et al. 2011)", "SVHN cropped digits, 3x32x32 uint8")


def _exists(fn) -> bool:
    try:
        fn()
        return True
    except MissingFilesError:
        return False


