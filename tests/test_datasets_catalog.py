"""The data set registry: catalog, options, the `activebatch datasets` listing."""
import pytest

import activebatch as ab
from activebatch.cli import main

PAPER = {"mnist", "fashion-mnist", "emnist", "cifar10", "svhn", "letter", "pokerhand", "kropt", "random-rbf"}


def test_every_paper_data_set_is_registered():
    assert PAPER | {"mnist-5k", "digits"} <= set(ab.datasets.names())


def test_catalog_describes_without_loading(tmp_path):
    rows = {i.name: i for i in ab.datasets.catalog(tmp_path)}
    assert rows["kropt"].n_classes == 18 and rows["kropt"].n_train + rows["kropt"].n_test == 28056
    assert rows["emnist"].n_classes == 47 and rows["cifar10"].n_train == 50000
    assert rows["pokerhand"].offline and rows["random-rbf"].offline and rows["kropt"].offline
    assert not rows["mnist"].offline and not rows["svhn"].offline       # no files in tmp_path
    assert "OpenML #184" in rows["kropt"].source
    with pytest.raises(ValueError, match="known data sets"):
        ab.datasets.info("imagenet")


def test_openml_names_and_bad_ids(tmp_path):
    with pytest.raises(ValueError, match="unknown data set"):
        ab.datasets.load("openml-x")
    with pytest.raises(ValueError, match="positive"):
        ab.datasets.load("openml-0", root=tmp_path)


def test_cli_lists_sources_sizes_classes_and_offline(tmp_path, capsys):
    assert main(["datasets", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert PAPER <= set(lines)
    assert "28,056" not in lines["kropt"] and "22,445" in lines["kropt"] and " yes " in lines["kropt"]
    assert " no " in lines["mnist"] and "60,000" in lines["mnist"]
    assert "openml-<id>" in out
