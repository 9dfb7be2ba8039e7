"""The results store: one SQLite file, one row per round, safe to resume and to share.

Every run is written in a single transaction (all its rounds plus its entry in ``runs``), so a
run is either recorded completely or not at all: a bench killed at any moment loses only the runs
in flight, and a restart skips exactly the recorded ones. ``INSERT`` of a run already present is a
no-op, so two processes finishing the same run never duplicate it. WAL journaling lets readers
(``activebatch report``) work while a bench is writing.
"""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..loop import RESULT_COLUMNS
from ..utils.sqlite import Closing, open_connection

__all__ = ["ResultsStore", "STORE_NAME", "CLUSTER_MARGIN_KEY"]

STORE_NAME = "results.sqlite"
#: Meta key saying what the store's runs named ``cluster_margin`` ran: ``"cluster_margin"`` (Citovsky
#: et al.'s Cluster-Margin) in a store created since that name was given to it, ``"diverse_minibatch"``
#: (Zhdanov's method, which had the name before) in a store that held such runs when first opened by
#: this version. Set once, when a store without it is opened.
CLUSTER_MARGIN_KEY = "cluster_margin_runs_are"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, dataset TEXT NOT NULL, model TEXT NOT NULL, batch_size INTEGER NOT NULL,
    strategy TEXT NOT NULL, seed INTEGER NOT NULL, n_rounds INTEGER NOT NULL, seconds REAL NOT NULL,
    finished_at TEXT NOT NULL, host TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    run_id TEXT NOT NULL REFERENCES runs(run_id), dataset TEXT NOT NULL, model TEXT NOT NULL,
    batch_size INTEGER NOT NULL, strategy TEXT NOT NULL, seed INTEGER NOT NULL, round INTEGER NOT NULL,
    n_labeled INTEGER NOT NULL, test_accuracy REAL NOT NULL, train_seconds REAL NOT NULL,
    select_seconds REAL NOT NULL, class_histogram TEXT NOT NULL, class_entropy REAL NOT NULL,
    train_epochs INTEGER NOT NULL, train_accuracy REAL NOT NULL, balanced_accuracy REAL, macro_f1 REAL,
    selection_notes TEXT, PRIMARY KEY (run_id, round));
CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT NOT NULL, error TEXT NOT NULL, failed_at TEXT NOT NULL, host TEXT NOT NULL);
"""

_ROUND_FIELDS = [c for c in RESULT_COLUMNS]
#: Columns added to ``rounds`` after the first stores were written (NULL in their older rows).
_ADDED_COLUMNS = {"balanced_accuracy": "REAL", "macro_f1": "REAL", "selection_notes": "TEXT"}
_NUMERIC_ADDED = ("balanced_accuracy", "macro_f1")


class ResultsStore:
    """SQLite results store at ``path`` (a file, or a folder holding ``results.sqlite``)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        path = Path(path)
        if path.is_dir() or (not path.suffix and not path.exists()):
            path = path / STORE_NAME
        if not path.exists() and not create:
            raise FileNotFoundError(f"no results store at {str(path)!r} (run `activebatch bench` first)")
        self.path = path
        # a store opened only to read it (create=False: reports, load_results) is left byte for byte
        # as it is: no schema upgrade, no journal-mode change, no meta written
        self.readonly = not create
        if self.readonly:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)
            have = {row[1] for row in con.execute("PRAGMA table_info(rounds)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:   # a store from an earlier version: its rows keep NULL there
                    con.execute(f"ALTER TABLE rounds ADD COLUMN {column} {kind}")
            if con.execute("SELECT 1 FROM meta WHERE key = ?", (CLUSTER_MARGIN_KEY,)).fetchone() is None:
                con.execute("BEGIN IMMEDIATE")
                legacy = _has_cluster_margin_runs(con)
                con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                            (CLUSTER_MARGIN_KEY, json.dumps("diverse_minibatch" if legacy else "cluster_margin")))
                con.execute("COMMIT")

    @property
    def legacy_cluster_margin(self) -> bool:
        """Whether the runs named ``cluster_margin`` here were recorded before the rename (they ran
        Zhdanov's diverse mini-batch; :meth:`runs` and :meth:`frame` name them ``diverse_minibatch``)."""
        recorded = self.get_meta(CLUSTER_MARGIN_KEY)
        if recorded is None:   # a store never opened for writing since the rename: all such runs predate it
            with self._connect() as con:
                return _has_cluster_margin_runs(con)
        return recorded == "diverse_minibatch"

    def _relabel(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.legacy_cluster_margin:
            df.loc[df["strategy"] == "cluster_margin", "strategy"] = "diverse_minibatch"
        return df

    def _connect(self) -> Closing:
        return open_connection(self.path, timeout=120.0, readonly=self.readonly)

    # Writing ------------------------------------------------------------------------------
    def record_run(self, run_id: str, rows: Iterable[dict[str, Any]], *, seconds: float) -> bool:
        """Record all rounds of a finished run atomically. Returns False if it was already there."""
        rows = list(rows)
        if not rows:
            raise ValueError(f"run {run_id!r} has no rounds to record")
        first = rows[0]
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                    con.execute("ROLLBACK")
                    return False
                con.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, first["dataset"], first["model"], int(first["batch_size"]), first["strategy"],
                     int(first["seed"]), len(rows), float(seconds), _now(), socket.gethostname()))
                con.executemany(
                    f"INSERT INTO rounds (run_id, {', '.join(_ROUND_FIELDS)}) "
                    f"VALUES (?, {', '.join('?' for _ in _ROUND_FIELDS)})",
                    [(run_id, *[_to_sql(k, r.get(k) if k in _ADDED_COLUMNS else r[k]) for k in _ROUND_FIELDS])
                     for r in rows])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return True

    def record_failure(self, run_id: str, error: str) -> None:
        with self._connect() as con:
            con.execute("INSERT INTO failures VALUES (?, ?, ?, ?)", (run_id, error, _now(), socket.gethostname()))

    def set_meta(self, key: str, value: Any) -> None:
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # Reading ------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def specs(self) -> list[dict[str, Any]]:
        """The grid specs recorded by ``activebatch bench`` (as run), in the order of their names."""
        with self._connect() as con:
            rows = con.execute("SELECT value FROM meta WHERE key LIKE 'spec:%' ORDER BY key").fetchall()
        return [json.loads(r[0]) for r in rows]

    def completed(self) -> set[str]:
        """Run ids recorded so far."""
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT run_id FROM runs")}

    def failures(self) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query("SELECT * FROM failures ORDER BY failed_at", con)

    def runs(self) -> pd.DataFrame:
        """One row per recorded run (``strategy`` as in :meth:`frame`; ``run_id`` as recorded)."""
        with self._connect() as con:
            return self._relabel(pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", con))

    def frame(self) -> pd.DataFrame:
        """All rounds as a DataFrame with the results columns (``class_histogram`` and
        ``selection_notes`` as lists; ``balanced_accuracy`` and ``macro_f1`` NaN, ``selection_notes``
        None, in runs recorded before they were kept).

        Runs recorded as ``cluster_margin`` before that name was given to Citovsky et al.'s
        Cluster-Margin ran Zhdanov's diverse mini-batch and are named ``diverse_minibatch`` here
        (see :data:`CLUSTER_MARGIN_KEY`; the file keeps what was recorded).
        """
        with self._connect() as con:
            have = {row[1] for row in con.execute("PRAGMA table_info(rounds)")}
            # a store read as it is may predate the added columns
            fields = [f if f in have or f not in _ADDED_COLUMNS else f"NULL AS {f}" for f in _ROUND_FIELDS]
            df = pd.read_sql_query(
                f"SELECT {', '.join(fields)} FROM rounds ORDER BY dataset, model, batch_size, "
                "strategy, seed, round", con)
        df["class_histogram"] = [json.loads(h) for h in df["class_histogram"]]
        for column in _NUMERIC_ADDED:   # NaN where a run predates the column
            df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
        # None where a run predates the column (its notes were not kept), else a list (usually empty)
        df["selection_notes"] = [json.loads(n) if isinstance(n, str) else None for n in df["selection_notes"]]
        return self._relabel(df)


def _has_cluster_margin_runs(con) -> bool:
    return con.execute("SELECT 1 FROM runs WHERE strategy = 'cluster_margin' LIMIT 1").fetchone() is not None


def _to_sql(key: str, value: Any) -> Any:
    if key == "class_histogram":
        return json.dumps([int(v) for v in value])
    if key == "selection_notes":
        return None if value is None else json.dumps([str(v) for v in value])
    if hasattr(value, "item"):
        return value.item()
    return value


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
