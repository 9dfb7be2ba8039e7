"""SQLite connections shared by the results store and the workspace store."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["Closing", "open_connection"]


class Closing:
    """Context manager closing the connection (sqlite3's own only ends transactions)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def __enter__(self) -> sqlite3.Connection:
        return self.con

    def __exit__(self, *exc: Any) -> None:
        self.con.close()


def open_connection(path: str | Path, *, timeout: float, synchronous: str = "NORMAL",
                    foreign_keys: bool = False, check_same_thread: bool = True, readonly: bool = False) -> Closing:
    """An autocommit connection in WAL mode (readers never block the writer) that waits up to
    ``timeout`` seconds for a lock; use explicit ``BEGIN IMMEDIATE`` transactions to write.

    ``readonly`` opens the file as it is, for reading only: its journal mode is left alone, so
    reading a committed database leaves its bytes unchanged."""
    target, uri = (f"{Path(path).resolve().as_uri()}?mode=ro", True) if readonly else (path, False)
    con = sqlite3.connect(target, uri=uri, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread)
    con.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    if readonly:
        return Closing(con)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    if foreign_keys:
        con.execute("PRAGMA foreign_keys=ON")
    return Closing(con)
