"""Where data files live, how they are fetched, and the error when they are missing.

Every file-backed data set lives in a folder ``<root>/<name>`` (or directly in ``root``), where
``root`` defaults to ``$ACTIVEBATCH_DATA`` or else ``~/.cache/activebatch``. With
``download=True`` missing files are fetched from the data set's official location and their
checksums verified before they are kept; with ``download=False`` a missing file raises
:class:`MissingFilesError`, which names every file and the folder to put it in.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RemoteFile", "MissingFilesError", "ChecksumError", "data_home", "dataset_dirs", "find_file",
           "require_files", "fetch", "file_digest"]

#: Seconds before a download attempt gives up waiting for the server.
TIMEOUT = 60


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its name on disk, where to fetch it and its checksum.

    Attributes
    ----------
    name : str
        File name in the data set's folder.
    url : str
        Official location (``https://``, ``http://`` or ``file://``).
    md5 : str, optional
        Expected MD5 hex digest (the form the publishers give).
    sha256 : str, optional
        Expected SHA-256 hex digest.
    alternatives : tuple of str
        Other names under which the same content is accepted (e.g. the file unzipped).
    """

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    alternatives: tuple[str, ...] = ()


class MissingFilesError(FileNotFoundError):
    """A data set's files are not present and downloading was not allowed."""


class ChecksumError(OSError):
    """A downloaded file does not have the published checksum."""


def data_home(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given, else ``$ACTIVEBATCH_DATA``, else ``~/.cache/activebatch``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("ACTIVEBATCH_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "activebatch"


def dataset_dirs(name: str, root: str | Path | None = None) -> list[Path]:
    """Folders searched for the files of data set ``name``: ``<root>/<name>`` then ``root``."""
    home = data_home(root)
    return [home / name, home]


def find_file(candidates: Iterable[str], dirs: Sequence[Path]) -> Path | None:
    """The first existing ``dir / candidate`` (dirs in order, candidates in order), or None."""
    for d in dirs:
        for c in candidates:
            p = d / c
            if p.is_file():
                return p
    return None


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _urlopen(url: str):
    """Open ``url`` for reading (the one place that touches the network; tests replace it)."""
    return urllib.request.urlopen(url, timeout=TIMEOUT)  # noqa: S310 - official, fixed URLs


def fetch(remote: RemoteFile, folder: str | Path) -> Path:
    """Download ``remote`` into ``folder``, verify its checksum and return its path.

    The file is written to a temporary name first and renamed only after its checksum matched,
    so an interrupted or corrupt download never leaves a file that looks complete.

    Raises
    ------
    ChecksumError
        The content does not match ``remote.md5`` / ``remote.sha256``.
    OSError
        The server could not be reached (the message names the URL).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / remote.name
    fd, tmp_name = tempfile.mkstemp(prefix=remote.name + ".", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, _urlopen(remote.url) as response:
                shutil.copyfileobj(response, out, 1 << 20)
        except OSError as exc:
            raise OSError(f"could not download {remote.url}: {exc}") from exc
        for algorithm, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
            if expected:
                got = file_digest(tmp, algorithm)
                if got.lower() != expected.lower():
                    raise ChecksumError(f"{remote.url}: {algorithm} checksum {got} does not match the "
                                        f"published {expected}; the file was not kept")
        tmp.replace(dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def require_files(name: str, files: Sequence[RemoteFile], root: str | Path | None, download: bool,
                  *, note: str = "") -> dict[str, Path]:
    """Locate (and with ``download`` fetch) every file of a data set.

    Parameters
    ----------
    name : str
        Data set name; its folder is ``<root>/<name>``.
    files : sequence of RemoteFile
    root : str or Path, optional
        See :func:`data_home`.
    download : bool
        Fetch missing files into ``<root>/<name>`` (checksums verified).
    note : str
        Extra sentence for the error message (e.g. how to unpack an archive).

    Returns
    -------
    dict
        ``{remote.name: path}`` of the file found (which may be one of its alternative names).

    Raises
    ------
    MissingFilesError
        Some files are absent and ``download`` is False; the message lists them and the folder.
    """
    dirs = dataset_dirs(name, root)
    found: dict[str, Path] = {}
    missing: list[RemoteFile] = []
    for f in files:
        p = find_file((f.name,) + tuple(f.alternatives), dirs)
        if p is None:
            missing.append(f)
        else:
            found[f.name] = p
    if missing and download:
        for f in missing:
            found[f.name] = fetch(f, dirs[0])
        missing = []
    if missing:
        lines = []
        for f in missing:
            alt = f" (or {', '.join(f.alternatives)})" if f.alternatives else ""
            lines.append(f"  {f.name}{alt}  <- {f.url}")
        raise MissingFilesError(
            f"data set {name!r} needs these files in {dirs[0]}:\n" + "\n".join(lines) +
            f"\nPut them there (or directly in {dirs[1]}), pass root= to point at the folder holding "
            f"them, or load with download=True to fetch them (checksums are verified)."
            + (f"\n{note}" if note else ""))
    return found
