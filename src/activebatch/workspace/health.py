"""Keeping a workspace store safe: read-only checks, damage reports, and backups.

Checks
------
Every :class:`~activebatch.workspace.store.WorkspaceStore` first opens its file read-only
(SQLite URI ``mode=ro``) and runs ``PRAGMA quick_check`` before anything else touches it, so a
damaged store (truncated, overwritten in the middle, emptied to 0 bytes) is reported and never
written to. A database error later on runs the check again to tell damage from other failures
(a full disk, a lock held too long).

Backups
-------
Before the first write of each store object (one command, one labelling server), the store is
copied with SQLite's online backup API into ``DIR/backups/workspace-<UTC time>-<pid>.sqlite``.
The copy is checked with ``quick_check`` before it is kept, so a damaged store never replaces a
good backup. A new copy is skipped when nothing but web-page claims changed since the newest one.
The newest :data:`KEEP` backups are kept (``ACTIVEBATCH_BACKUPS=N`` keeps N, 0 turns backups
off). A damage report names the newest backup and the shell line that puts it back.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from .errors import StoreDamagedError, WorkspaceError

__all__ = ["KEEP", "ENV", "BACKUP_DIR", "open_readonly", "check_store", "damage_report", "database_failure",
           "backup_keep", "list_backups", "make_backup", "restore_backup", "restore_command"]

KEEP = 5
ENV = "ACTIVEBATCH_BACKUPS"
BACKUP_DIR = "backups"
_MAGIC = b"SQLite format 3\x00"


# Checks -----------------------------------------------------------------------------------------
def open_readonly(path: str | Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): it can neither create nor change the file."""
    uri = "file:" + quote(str(Path(path).resolve())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)


def check_store(path: str | Path) -> str | None:
    """What is wrong with the SQLite file at ``path``, or None when ``quick_check`` passes."""
    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        return "it is empty (0 bytes)"
    with open(p, "rb") as f:
        header = f.read(100)
    if not header.startswith(_MAGIC):
        return "it does not start with SQLite's header (the start of the file was overwritten)"
    try:
        con = open_readonly(p)
        try:
            rows = [str(r[0]) for r in con.execute("PRAGMA quick_check(5)")]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return None
    found = "; ".join(rows)
    expected = _header_size(header)
    if expected is not None and size < expected:
        return f"it is truncated ({size} bytes, its header records {expected}); SQLite reports: {found}"
    return f"SQLite's quick_check reports: {found}"


def _header_size(header: bytes) -> int | None:
    """The file size the header records (page size x page count), when the header says it is valid."""
    if len(header) < 100:
        return None
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]   # the in-header size is valid only then (SQLite file format)
    return page * pages if valid and pages else None


def damage_report(path: str | Path, problem: str) -> str:
    """The message for a damaged store: what is wrong, and how to go back to the newest backup."""
    p = Path(path)
    folder = p.parent
    lines = [f"the workspace store {str(p)!r} is damaged: {problem}. activebatch changed nothing in it."]
    backups = list_backups(folder)
    if backups:
        newest = backups[-1]
        lines += [
            f"The newest backup is {str(newest)!r} ({_backup_time(newest)}; {len(backups)} backup(s) in "
            f"{str(folder / BACKUP_DIR)!r}). To go back to it, stop any `activebatch serve` on this workspace and "
            "run (the damaged files are kept in damaged/; labels recorded after the backup are lost, so import "
            "their files again):",
            f"  activebatch restore {shlex.quote(str(folder))}",
            "or, by hand:",
            "  " + restore_command(p, newest)]
    else:
        lines.append(f"There is no backup in {str(folder / BACKUP_DIR)!r}: create a new workspace with "
                     "`activebatch init` and import your label files again (the sqlite3 tool's `.recover` command "
                     "may salvage part of the damaged file).")
    return "\n".join(lines)


def database_failure(path: str | Path, exc: BaseException) -> WorkspaceError:
    """The error to raise for a database error: :class:`StoreDamagedError` when the file fails
    its check, otherwise a :class:`WorkspaceError` saying the file itself is sound."""
    p = Path(path)
    try:
        problem = check_store(p) if p.is_file() else f"the file is gone ({exc})"
    except OSError as os_exc:
        problem = f"it cannot be read ({os_exc})"
    if problem is not None:
        return StoreDamagedError(damage_report(p, problem))
    text = str(exc).split("\n")[-1]
    hint = ""
    if "locked" in text or "busy" in text:
        hint = "; another activebatch command held the store for too long: try again"
    elif "full" in text or "disk I/O" in text:
        hint = "; check the free space and the disk"
    return WorkspaceError(f"the workspace store {str(p)!r} could not be used: {text}{hint} (the file passes "
                          "SQLite's quick_check, so it is not damaged; nothing was recorded by the failed step)")


# Backups ----------------------------------------------------------------------------------------
def backup_keep() -> int:
    """How many backups to keep: ``$ACTIVEBATCH_BACKUPS`` (0 turns them off), else :data:`KEEP`."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return KEEP
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise WorkspaceError(f"{ENV} must be a whole number of backups to keep (0 for none), got {text!r}")
    return n


def list_backups(folder: str | Path) -> list[Path]:
    """The backups of the workspace in ``folder``, oldest first."""
    d = Path(folder) / BACKUP_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("workspace-*.sqlite") if p.is_file())


def _backup_time(p: Path) -> str:
    try:
        t = datetime.strptime(p.name.split("-")[1], "%Y%m%dT%H%M%S%fZ")
        return f"made {t:%Y-%m-%d %H:%M:%S} UTC, before the first write of the command run then"
    except (IndexError, ValueError):
        return "made before a write"


def restore_command(store_path: str | Path, backup: Path) -> str:
    """The shell line that sets the damaged store (and its -wal/-shm files) aside in ``damaged/``
    and puts ``backup`` in its place."""
    p = Path(store_path)
    return (f"(cd {shlex.quote(str(p.parent.resolve()))} && mkdir -p damaged && mv {shlex.quote(p.name)}* damaged/ "
            f"&& cp {shlex.quote(f'{BACKUP_DIR}/{backup.name}')} {shlex.quote(p.name)})")


def restore_backup(folder: str | Path, backup: str | Path | None = None) -> tuple[Path, Path]:
    """Put a backup (default: the newest) in place of the workspace store of ``folder``.

    The backup is checked first (a damaged backup is refused); the current store and its
    ``-wal``/``-shm`` files are moved, not deleted, into ``damaged/<time>/``. Returns
    (the backup restored, the folder holding the files set aside).
    """
    folder = Path(folder)
    store = folder / "workspace.sqlite"
    backups = list_backups(folder)
    if backup is None:
        if not backups:
            raise WorkspaceError(f"there is no backup in {str(folder / BACKUP_DIR)!r} to restore")
        chosen = backups[-1]
    else:
        chosen = Path(backup)
        if not chosen.is_file():
            chosen = folder / BACKUP_DIR / str(backup)
        if not chosen.is_file():
            names = ", ".join(b.name for b in backups) or "none"
            raise WorkspaceError(f"backup {str(backup)!r} does not exist; backups in {str(folder / BACKUP_DIR)!r}: "
                                 f"{names}")
    problem = check_store(chosen)
    if problem:
        raise WorkspaceError(f"the backup {str(chosen)!r} is damaged too ({problem}); choose another with --backup")
    aside = folder / "damaged" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside.mkdir(parents=True, exist_ok=False)
    for part in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
        if part.exists():
            part.replace(aside / part.name)
    tmp = store.with_name(".restore.tmp")
    tmp.write_bytes(chosen.read_bytes())
    tmp.replace(store)   # atomic: the store is never half-copied
    return chosen, aside


def _fingerprint(con: sqlite3.Connection) -> str:
    """What a backup must capture: metadata, labels and their history, rounds and metrics (claims,
    which only hold items for the web page, are left out)."""
    h = hashlib.sha256()
    for q in ("SELECT key, value FROM meta ORDER BY key",
              "SELECT COUNT(*), COALESCE(MAX(event_id), 0) FROM label_events",
              "SELECT COUNT(*) FROM labels", "SELECT COUNT(*), COALESCE(MAX(round), 0) FROM rounds",
              "SELECT COUNT(*), COALESCE(MAX(snapshot_id), 0) FROM snapshots"):
        h.update(repr(con.execute(q).fetchall()).encode())
    return h.hexdigest()


def make_backup(store_path: str | Path, keep: int) -> Path | None:
    """Copy the store into ``backups/`` (online backup API), check the copy, drop old copies.

    Returns the new backup, the newest one when nothing changed since it, or None when
    ``keep`` is 0.

    Raises
    ------
    StoreDamagedError
        When the copy fails ``quick_check`` (the store is damaged; no backup is replaced).
    WorkspaceError
        When the copy cannot be written (full disk, read-only folder).
    """
    if keep <= 0:
        return None
    src_path = Path(store_path)
    folder = src_path.parent / BACKUP_DIR
    existing = list_backups(src_path.parent)
    try:
        src = open_readonly(src_path)
        try:
            mark = _fingerprint(src)
            if existing and _same(existing[-1], mark):
                return existing[-1]
            final = _copy(src, src_path, folder)
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        raise database_failure(src_path, exc) from exc
    except OSError as exc:
        raise WorkspaceError(f"cannot back up the workspace store into {str(folder)!r}: {exc}; nothing was "
                             f"changed (free some space, or set {ENV}=0 to write without backups)") from exc
    _rotate(folder, keep)
    return final


def _copy(src: sqlite3.Connection, src_path: Path, folder: Path) -> Path:
    """Copy through a temporary file, kept only once it passes ``quick_check``."""
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"workspace-{stamp}-{os.getpid()}.sqlite"
    tmp = folder / f".{final.name}.tmp"
    try:
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")   # one self-contained file
            check = [str(r[0]) for r in dst.execute("PRAGMA quick_check(5)")]
        finally:
            dst.close()
        if check != ["ok"]:
            raise StoreDamagedError(damage_report(src_path, "a copy of it fails SQLite's quick_check: "
                                                  + "; ".join(check)))
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _same(backup: Path, mark: str) -> bool:
    try:
        con = open_readonly(backup)
        try:
            return _fingerprint(con) == mark
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False


def _rotate(folder: Path, keep: int) -> None:
    for old in list_backups(folder.parent)[:-keep]:
        old.unlink(missing_ok=True)
    for stale in folder.glob(".workspace-*.tmp"):   # left by a backup that was killed
        try:
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink(missing_ok=True)
        except OSError:
            pass
