"""The workspace store: one SQLite file holding items, labels, rounds, selections and model metrics.

Tables
------
``meta``          key -> JSON value (kind, configuration, feature statistics, schema version)
``classes``       class index -> name, fixed when the workspace is created
``items``         position (row order), id, source (image path), display (JSON of a table row),
                  features (float32 row as a BLOB); fixed when the workspace is created
``labels``        the current label of each labelled item: class, split (``train`` or ``eval``),
                  who gave it, when, and through what (``import:FILE``, ``web``, ...)
``label_events``  every change ever made to ``labels`` (label, relabel, remove), append-only
``rounds``        one row per query: strategy, options, batch size, seed, labels it was trained on
``selections``    the items of each round's batch, in selection order, with the model's guess
``snapshots``     metrics of each trained model (training accuracy, epochs, held-out accuracy)
``claims``        which browser (or, for clients without cookies, which annotator name) is looking at
                  which batch item on the web page, with an expiry time

Durability
----------
Every write is one ``BEGIN IMMEDIATE`` transaction that either commits whole or leaves nothing
behind, in WAL mode with ``synchronous=FULL``: a process killed at any moment (SIGKILL, Ctrl-C,
power loss after a commit) loses no committed label, and the file stays usable. Readers never
block writers. The workspace is created in a temporary file and linked into place, so an
interrupted ``init`` leaves no half-made workspace.

Damage and backups
------------------
A store is first opened read-only and checked (:mod:`.health`): a damaged file (truncated,
overwritten, emptied) raises :class:`StoreDamagedError` naming the newest backup and how to put it
back, and is never written to. Any later database error is diagnosed the same way. Before its
first write, each store object copies the file into ``backups/`` (the last 5 are kept).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..utils.sqlite import open_connection
from .errors import ConcurrentQueryError, LabelConflictError, StoreDamagedError, WorkspaceError
from .health import backup_keep, check_store, damage_report, database_failure, list_backups, make_backup, open_readonly

__all__ = ["WorkspaceStore", "STORE_NAME", "SCHEMA_VERSION", "LabelResult", "SPLITS", "now_iso"]

STORE_NAME = "workspace.sqlite"
SCHEMA_VERSION = 1
FORMAT = "activebatch-workspace"
SPLITS = ("train", "eval")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (class_index INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE items (
    position INTEGER PRIMARY KEY, item_id TEXT NOT NULL UNIQUE, source TEXT, display TEXT,
    features BLOB NOT NULL);
CREATE TABLE label_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL REFERENCES items(position),
    action TEXT NOT NULL CHECK (action IN ('label', 'relabel', 'remove')),
    class_index INTEGER REFERENCES classes(class_index),
    previous_class INTEGER REFERENCES classes(class_index),
    split TEXT CHECK (split IN ('train', 'eval')),
    annotator TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE labels (
    position INTEGER PRIMARY KEY REFERENCES items(position),
    class_index INTEGER NOT NULL REFERENCES classes(class_index),
    split TEXT NOT NULL CHECK (split IN ('train', 'eval')),
    annotator TEXT NOT NULL, labeled_at TEXT NOT NULL, source TEXT NOT NULL,
    event_id INTEGER NOT NULL REFERENCES label_events(event_id));
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY, strategy TEXT NOT NULL, options TEXT NOT NULL, n INTEGER NOT NULL,
    seed INTEGER NOT NULL, created_at TEXT NOT NULL, n_train_labels INTEGER NOT NULL,
    select_seconds REAL NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE TABLE selections (
    round INTEGER NOT NULL REFERENCES rounds(round), rank INTEGER NOT NULL,
    position INTEGER NOT NULL REFERENCES items(position), predicted INTEGER, confidence REAL,
    PRIMARY KEY (round, rank), UNIQUE (round, position));
CREATE INDEX selections_position ON selections(position);
CREATE TABLE snapshots (
    snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER REFERENCES rounds(round),
    created_at TEXT NOT NULL, model TEXT NOT NULL, n_train INTEGER NOT NULL,
    train_accuracy REAL, epochs INTEGER, fit_seconds REAL, n_eval INTEGER NOT NULL, eval_accuracy REAL,
    class_counts TEXT NOT NULL);
CREATE TABLE claims (
    position INTEGER PRIMARY KEY REFERENCES items(position), annotator TEXT NOT NULL, until REAL NOT NULL);
"""


def now_iso() -> str:
    """The current time in UTC, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class LabelResult:
    """What one call of :meth:`WorkspaceStore.apply_labels` changed."""

    recorded: int = 0
    relabeled: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        """Labels added or replaced."""
        return self.recorded + self.relabeled

    def __str__(self) -> str:
        parts = [f"{self.recorded} new label(s)"]
        if self.relabeled:
            parts.append(f"{self.relabeled} relabelled")
        if self.unchanged:
            parts.append(f"{self.unchanged} already recorded (unchanged)")
        return ", ".join(parts)


class WorkspaceStore:
    """Access to a workspace's SQLite file.

    Parameters
    ----------
    path : str or Path
        The ``workspace.sqlite`` file, or the workspace folder holding it.
    backups : int, optional
        How many backups to keep in ``backups/`` (default: ``$ACTIVEBATCH_BACKUPS``, else 5; 0:
        none). One is made before this object's first write.

    Raises
    ------
    StoreDamagedError
        When the file fails its read-only check (it is left untouched).
    WorkspaceError
        When there is no workspace there, or the file is not one.
    """

    def __init__(self, path: str | Path, *, backups: int | None = None) -> None:
        p = Path(path)
        if p.is_dir() or not p.suffix:
            p = p / STORE_NAME
        if not p.is_file():
            raise WorkspaceError(f"no workspace at {str(p.parent)!r} (create one with `activebatch init`)")
        self.path = p
        self.backup_keep = backup_keep() if backups is None else int(backups)
        self._backup_pending = self.backup_keep > 0
        self._backup_lock = threading.Lock()
        # Read-only first: nothing below can create, extend or rewrite a damaged (or empty) file.
        problem = check_store(p)
        if problem is not None:
            raise StoreDamagedError(damage_report(p, problem))
        try:
            con = open_readonly(p)
            try:
                rows = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('format', 'schema_version')"))
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{str(p)!r} is not an activebatch workspace store (it is an SQLite file without "
                                 f"the workspace tables: {exc})") from exc
        if _loads(p, rows.get("format", "null"), "format") != FORMAT:
            raise WorkspaceError(f"{str(p)!r} is not an activebatch workspace store")
        version = _loads(p, rows.get("schema_version", "0"), "schema version")
        if version != SCHEMA_VERSION:
            raise WorkspaceError(f"{str(p)!r} has workspace schema version {version}; this activebatch "
                                 f"reads version {SCHEMA_VERSION}")

    # Creation -------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, *, classes: Sequence[str], ids: Sequence[str], features: np.ndarray,
               sources: Sequence[str | None], displays: Sequence[dict | None], meta: dict[str, Any]
               ) -> WorkspaceStore:
        """Write a new store in ``folder`` (created if needed) and return it.

        The file is built under a temporary name and linked into place in one step, so an
        interrupted creation leaves nothing behind, and an existing workspace is never
        overwritten.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / STORE_NAME
        if final.exists():
            raise WorkspaceError(f"{str(folder)!r} already holds a workspace ({STORE_NAME}); "
                                 "choose another folder")
        feats = np.ascontiguousarray(features, dtype=np.float32)
        n = feats.shape[0]
        if not (len(ids) == len(sources) == len(displays) == n):
            raise ValueError("ids, sources, displays and features must have one entry per item")
        tmp = folder / f".{STORE_NAME}.{os.getpid()}.tmp"
        if tmp.exists():
            tmp.unlink()
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.executescript(_SCHEMA)
                con.execute("BEGIN")
                full_meta = dict(meta, format=FORMAT, schema_version=SCHEMA_VERSION, created_at=now_iso(),
                                 n_items=int(n), n_features=int(feats.shape[1]))
                con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in full_meta.items()])
                con.executemany("INSERT INTO classes VALUES (?, ?)", list(enumerate(classes)))
                con.executemany(
                    "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                    ((i, str(ids[i]), sources[i], None if displays[i] is None else json.dumps(displays[i]),
                      feats[i].tobytes()) for i in range(n)))
                con.execute("COMMIT")
            finally:
                con.close()
            try:
                os.link(tmp, final)  # fails rather than replace a workspace created meanwhile
            except FileExistsError:
                raise WorkspaceError(f"{str(folder)!r} already holds a workspace ({STORE_NAME})") from None
        finally:
            if tmp.exists():
                tmp.unlink()
        return cls(final, backups=0)   # nothing to back up in a store just made

    # Connections ------------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A new connection (autocommit mode; use :meth:`transaction` to write), closed when the
        block ends. Database errors in the block are diagnosed: :class:`StoreDamagedError` when
        the file fails its check, else a :class:`WorkspaceError` naming the error."""
        try:
            con = open_connection(self.path, timeout=60.0, synchronous="FULL", foreign_keys=True,
                                  check_same_thread=False).con
        except sqlite3.DatabaseError as exc:
            raise database_failure(self.path, exc) from exc
        try:
            yield con
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:   # pandas wraps sqlite3's errors
            raise database_failure(self.path, exc) from exc
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on any exception
        (KeyboardInterrupt included). The store is backed up first if this object has not
        written yet (see :meth:`backup`)."""
        self.ensure_backup()
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except sqlite3.Error:   # closing the connection rolls back anyway
                    pass
                raise
            con.execute("COMMIT")

    # Backups ------------------------------------------------------------------------------------
    def backup(self) -> Path | None:
        """Copy the store into ``backups/`` now (see :mod:`.health`); returns the backup, or None
        when backups are off. Older backups beyond :attr:`backup_keep` are removed."""
        return make_backup(self.path, self.backup_keep)

    def ensure_backup(self) -> None:
        """Back up once per store object, before its first write."""
        if not self._backup_pending:
            return
        with self._backup_lock:
            if self._backup_pending:
                self.backup()
                self._backup_pending = False

    def backups(self) -> list[Path]:
        """The backups of this workspace, oldest first."""
        return list_backups(self.path.parent)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" when the file is sound)."""
        with self.connect() as con:
            return str(con.execute("PRAGMA integrity_check").fetchone()[0])

    # Reading -----------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """All metadata (kind, model configuration, feature statistics, ...)."""
        with self.connect() as con:
            rows = con.execute("SELECT key, value FROM meta").fetchall()
        return {k: _loads(self.path, v, f"metadata {k!r}") for k, v in rows}

    def set_meta(self, key: str, value: Any) -> None:
        """Set one metadata value (JSON-serialisable)."""
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def classes(self) -> list[str]:
        """Class names, in class-index order."""
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT name FROM classes ORDER BY class_index")]

    def n_items(self) -> int:
        """Number of items."""
        with self.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def items(self, positions: Sequence[int] | None = None) -> pd.DataFrame:
        """Items (without features): ``position``, ``item_id``, ``source``, ``display`` (dict or None)."""
        with self.connect() as con:
            frame = pd.read_sql_query("SELECT position, item_id, source, display FROM items ORDER BY position", con)
        if positions is not None:
            frame = frame.set_index("position").loc[list(positions)].reset_index()
        frame["display"] = [None if d is None else _loads(self.path, d, "item row") for d in frame["display"]]
        return frame

    def item(self, position: int) -> dict[str, Any]:
        """One item (without features): ``position``, ``item_id``, ``source``, ``display``."""
        with self.connect() as con:
            row = con.execute("SELECT position, item_id, source, display FROM items WHERE position = ?",
                              (int(position),)).fetchone()
        if row is None:
            raise WorkspaceError(f"no item at position {position}")
        return {"position": row[0], "item_id": row[1], "source": row[2],
                "display": None if row[3] is None else _loads(self.path, row[3], "item row")}

    def positions_of(self, ids: Sequence[str]) -> dict[str, int]:
        """Map item ids to positions (ids that are not items are left out)."""
        wanted = [str(i) for i in ids]
        out: dict[str, int] = {}
        with self.connect() as con:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                q = f"SELECT item_id, position FROM items WHERE item_id IN ({','.join('?' * len(chunk))})"
                out.update({k: int(v) for k, v in con.execute(q, chunk)})
        return out

    def features(self) -> np.ndarray:
        """The feature matrix (N, d), float32, in position order."""
        d = int(self.meta()["n_features"])
        with self.connect() as con:
            blobs = [r[0] for r in con.execute("SELECT features FROM items ORDER BY position")]
        if any(not isinstance(b, bytes) or len(b) != 4 * d for b in blobs):
            raise StoreDamagedError(damage_report(self.path, f"some item features are not {d} float32 values"))
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), d).copy()

    def labels(self) -> pd.DataFrame:
        """Current labels: ``position``, ``item_id``, ``class_index``, ``label``, ``split``,
        ``annotator``, ``labeled_at``, ``source``."""
        with self.connect() as con:
            return pd.read_sql_query(
                "SELECT l.position, i.item_id, l.class_index, c.name AS label, l.split, l.annotator, "
                "l.labeled_at, l.source FROM labels l JOIN items i USING (position) "
                "JOIN classes c USING (class_index) ORDER BY l.position", con)

    def label_events(self) -> pd.DataFrame:
        """Every label change ever made, oldest first."""
        with self.connect() as con:
            return pd.read_sql_query(
                "SELECT e.event_id, e.position, i.item_id, e.action, c.name AS label, p.name AS previous, "
                "e.split, e.annotator, e.at, e.source FROM label_events e JOIN items i USING (position) "
                "LEFT JOIN classes c ON c.class_index = e.class_index "
                "LEFT JOIN classes p ON p.class_index = e.previous_class ORDER BY e.event_id", con)

    def rounds(self) -> pd.DataFrame:
        """One row per round, with the number of its items labelled so far."""
        with self.connect() as con:
            frame = pd.read_sql_query(
                "SELECT r.*, (SELECT COUNT(*) FROM selections s JOIN labels l USING (position) "
                "WHERE s.round = r.round) AS n_done FROM rounds r ORDER BY r.round", con)
        frame["options"] = [_loads(self.path, o, "round options") for o in frame["options"]]
        return frame

    def last_round(self) -> int:
        """The number of the latest round (0 when no batch was chosen yet)."""
        with self.connect() as con:
            return int(con.execute("SELECT COALESCE(MAX(round), 0) FROM rounds").fetchone()[0])

    def selections(self, round: int | None = None) -> pd.DataFrame:
        """Batch items (of one round, or all), in round and selection order, with their current
        label if any: ``round``, ``rank``, ``position``, ``item_id``, ``source``, ``display``,
        ``predicted``, ``confidence``, ``label``, ``annotator``."""
        where, args = ("WHERE s.round = ?", (int(round),)) if round is not None else ("", ())
        with self.connect() as con:
            frame = pd.read_sql_query(
                "SELECT s.round, s.rank, s.position, i.item_id, i.source, i.display, pc.name AS predicted, "
                "s.confidence, c.name AS label, l.annotator FROM selections s JOIN items i USING (position) "
                "LEFT JOIN classes pc ON pc.class_index = s.predicted "
                "LEFT JOIN labels l ON l.position = s.position "
                f"LEFT JOIN classes c ON c.class_index = l.class_index {where} ORDER BY s.round, s.rank",
                con, params=args)
        frame["display"] = [None if d is None else _loads(self.path, d, "item row") for d in frame["display"]]
        return frame

    def selected_positions(self, round: int | None = None) -> set[int]:
        """Positions of the items in a round's batch (or in any batch)."""
        where, args = ("WHERE round = ?", (int(round),)) if round is not None else ("", ())
        with self.connect() as con:
            return {int(r[0]) for r in con.execute(f"SELECT position FROM selections {where}", args)}

    def pending_positions(self) -> set[int]:
        """Items chosen in some round that have no label yet."""
        with self.connect() as con:
            return {int(r[0]) for r in con.execute(
                "SELECT DISTINCT s.position FROM selections s LEFT JOIN labels l USING (position) "
                "WHERE l.position IS NULL")}

    def snapshots(self) -> pd.DataFrame:
        """Metrics of every trained model, oldest first (``round`` is None for
        :meth:`Workspace.evaluate`)."""
        with self.connect() as con:
            frame = pd.read_sql_query("SELECT * FROM snapshots ORDER BY snapshot_id", con)
        frame["class_counts"] = [_loads(self.path, c, "model metrics") for c in frame["class_counts"]]
        return frame

    # Writing labels ----------------------------------------------------------------------------
    def apply_labels(self, positions: Sequence[int], class_indices: Sequence[int], *, split: str, annotators:
                     str | Sequence[str], source: str, overwrite: bool = False) -> LabelResult:
        """Record labels, all or nothing.

        An item without a label gets it; an item that already has the same label in the same
        split is left as it is; an item with a different label (or split) is a conflict: the
        whole call is refused with :class:`LabelConflictError` unless ``overwrite`` is set, in
        which case the label is replaced (and the old one stays in ``label_events``).

        Parameters
        ----------
        positions : sequence of int
            Item positions (distinct).
        class_indices : sequence of int
        split : {"train", "eval"}
        annotators : str or sequence of str
            Who gave each label (one name for all, or one per label).
        source : str
            Where the labels came from (``import:labels.csv``, ``web``, ...).
        overwrite : bool, default False
        """
        if split not in SPLITS:
            raise WorkspaceError(f"split must be one of {SPLITS}, got {split!r}")
        pos = [int(p) for p in positions]
        cls_ = [int(c) for c in class_indices]
        who = [annotators] * len(pos) if isinstance(annotators, str) else [str(a) for a in annotators]
        if not (len(pos) == len(cls_) == len(who)):
            raise ValueError("positions, class_indices and annotators must have the same length")
        if len(set(pos)) != len(pos):
            raise WorkspaceError("the same item is labelled twice in one call")
        result = LabelResult()
        names = self.classes()
        with self.transaction() as con:
            current: dict[int, tuple[int, str, str, str]] = {}
            for start in range(0, len(pos), 500):
                chunk = pos[start:start + 500]
                q = ("SELECT position, class_index, split, annotator, labeled_at FROM labels "
                     f"WHERE position IN ({','.join('?' * len(chunk))})")
                current.update({r[0]: r[1:] for r in con.execute(q, chunk)})
            conflicts = [(p, c) for p, c in zip(pos, cls_)
                         if p in current and (current[p][0] != c or current[p][1] != split)]
            if conflicts and not overwrite:
                raise LabelConflictError(self._conflict_message(con, conflicts, current, split, names))
            at = now_iso()
            for p, c, a in zip(pos, cls_, who):
                if p in current and current[p][0] == c and current[p][1] == split:
                    result.unchanged += 1
                    continue
                action = "relabel" if p in current else "label"
                prev = current[p][0] if p in current else None
                cur = con.execute(
                    "INSERT INTO label_events (position, action, class_index, previous_class, split, annotator, "
                    "at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (p, action, c, prev, split, a, at, source))
                con.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (p, c, split, a, at, source, cur.lastrowid))
                if action == "label":
                    result.recorded += 1
                else:
                    result.relabeled += 1
            for start in range(0, len(pos), 500):
                chunk = pos[start:start + 500]
                con.execute(f"DELETE FROM claims WHERE position IN ({','.join('?' * len(chunk))})", chunk)
        return result

    @staticmethod
    def _conflict_message(con: sqlite3.Connection, conflicts: list[tuple[int, int]], current: dict,
                          split: str, names: list[str]) -> str:
        lines = []
        for p, c in conflicts[:5]:
            item_id = con.execute("SELECT item_id FROM items WHERE position = ?", (p,)).fetchone()[0]
            old_c, old_split, who, when = current[p]
            old = names[old_c] + ("" if old_split == split else f" ({old_split} split)")
            new = names[c] + ("" if old_split == split else f" ({split} split)")
            lines.append(f"item {item_id!r} already has label {old!r} (by {who}, {when}); "
                         f"refusing to relabel it as {new!r}")
        more = f"\n... and {len(conflicts) - 5} more conflicting item(s)" if len(conflicts) > 5 else ""
        return ("\n".join(lines) + more + "\nnothing was recorded; use --overwrite (overwrite=True) to replace "
                "existing labels")

    def remove_label(self, position: int, *, annotator: str, source: str, only_own: bool = True) -> str | None:
        """Remove an item's label (undo). Returns the removed class name, or None if it had none.

        With ``only_own`` (the default) a label given by someone else is not removed:
        :class:`LabelConflictError` is raised instead. The removal is kept in ``label_events``.
        """
        names = self.classes()
        with self.transaction() as con:
            row = con.execute("SELECT class_index, split, annotator FROM labels WHERE position = ?",
                              (int(position),)).fetchone()
            if row is None:
                return None
            if only_own and row[2] != annotator:
                item_id = con.execute("SELECT item_id FROM items WHERE position = ?", (int(position),)).fetchone()[0]
                raise LabelConflictError(f"item {item_id!r} was labelled {names[row[0]]!r} by {row[2]}, not by "
                                         f"{annotator}; only {row[2]} can undo it")
            con.execute("INSERT INTO label_events (position, action, class_index, previous_class, split, annotator, "
                        "at, source) VALUES (?, 'remove', NULL, ?, ?, ?, ?, ?)",
                        (int(position), row[0], row[1], annotator, now_iso(), source))
            con.execute("DELETE FROM labels WHERE position = ?", (int(position),))
        return names[row[0]]

    # Rounds and snapshots -------------------------------------------------------------------------
    def record_round(self, *, expected_last: int, strategy: str, options: dict[str, Any], seed: int,
                     positions: Sequence[int], predicted: Sequence[int] | None, confidence: Sequence[float] | None,
                     n_train_labels: int, select_seconds: float, note: str = "",
                     snapshot: dict[str, Any] | None = None) -> int:
        """Record a new round, its batch and the metrics of its model in one transaction.

        ``expected_last`` is the round number seen when the query started; if another query has
        recorded a round since, :class:`ConcurrentQueryError` is raised and nothing is written.
        Returns the new round's number.
        """
        pos = [int(p) for p in positions]
        with self.transaction() as con:
            last = int(con.execute("SELECT COALESCE(MAX(round), 0) FROM rounds").fetchone()[0])
            if last != expected_last:
                raise ConcurrentQueryError(
                    f"round {last} was recorded by another query while this one was running; nothing was "
                    "recorded; query again to choose a batch that takes it into account")
            rnd = last + 1
            con.execute("INSERT INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (rnd, strategy, json.dumps(options), len(pos), int(seed), now_iso(), int(n_train_labels),
                         float(select_seconds), note))
            pred = list(predicted) if predicted is not None else [None] * len(pos)
            conf = list(confidence) if confidence is not None else [None] * len(pos)
            con.executemany("INSERT INTO selections VALUES (?, ?, ?, ?, ?)",
                            [(rnd, k, p, None if pr is None else int(pr), None if cf is None else float(cf))
                             for k, (p, pr, cf) in enumerate(zip(pos, pred, conf))])
            if snapshot is not None:
                self._insert_snapshot(con, dict(snapshot, round=rnd))
        return rnd

    def record_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Record the metrics of a model trained outside a query (``round`` None)."""
        with self.transaction() as con:
            self._insert_snapshot(con, dict(snapshot, round=snapshot.get("round")))

    @staticmethod
    def _insert_snapshot(con: sqlite3.Connection, s: dict[str, Any]) -> None:
        con.execute(
            "INSERT INTO snapshots (round, created_at, model, n_train, train_accuracy, epochs, fit_seconds, n_eval, "
            "eval_accuracy, class_counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.get("round"), now_iso(), s["model"], int(s["n_train"]), s.get("train_accuracy"), s.get("epochs"),
             s.get("fit_seconds"), int(s.get("n_eval", 0)), s.get("eval_accuracy"),
             json.dumps([int(c) for c in s.get("class_counts", [])])))

    # Claims (web page) ------------------------------------------------------------------------------
    def claim_next(self, round: int, annotator: str, *, skip: Sequence[int] = (), lease_seconds: float = 120.0,
                   prefer: int | None = None) -> dict[str, Any]:
        """Hand ``annotator`` the next unlabelled item of a round's batch, claiming it.

        ``annotator`` is whoever holds the claim: the labelling page passes the browser's id, so
        two browsers never share claims whatever names their users type. Items claimed by another
        holder whose claim has not expired are passed over, so two people labelling the same
        batch see different items. Returns a dict with ``position``
        (None when nothing is left for this annotator), ``remaining`` (unlabelled items of the
        batch), ``claimed_by_others`` and ``skipped`` (remaining items this annotator skipped).
        """
        now = time.time()
        skip_set = {int(s) for s in skip}
        with self.transaction() as con:
            con.execute("DELETE FROM claims WHERE until < ?", (now,))
            con.execute("DELETE FROM claims WHERE annotator = ?", (annotator,))
            rows = con.execute(
                "SELECT s.position, c.annotator FROM selections s LEFT JOIN labels l USING (position) "
                "LEFT JOIN claims c ON c.position = s.position WHERE s.round = ? AND l.position IS NULL "
                "ORDER BY s.rank", (int(round),)).fetchall()
            free = [p for p, who in rows if who is None and p not in skip_set]
            others = sum(1 for _, who in rows if who is not None)
            chosen = prefer if prefer is not None and prefer in free else (free[0] if free else None)
            if chosen is not None:
                con.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (chosen, annotator, now + lease_seconds))
        return {"position": chosen, "remaining": len(rows), "claimed_by_others": others,
                "skipped": sum(1 for p, who in rows if who is None and p in skip_set)}

    def release_claims(self, annotator: str) -> None:
        """Drop every claim held by ``annotator``."""
        with self.transaction() as con:
            con.execute("DELETE FROM claims WHERE annotator = ?", (annotator,))


def _loads(path: Path, text: Any, what: str) -> Any:
    """A JSON value stored by activebatch; unreadable text means the file was damaged."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise StoreDamagedError(damage_report(path, f"its {what} is not the JSON activebatch wrote "
                                                    f"({str(text)[:60]!r})")) from None
