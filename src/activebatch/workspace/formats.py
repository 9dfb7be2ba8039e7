"""Files exchanged with annotators: batch exports and label imports.

Exports
-------
- CSV / Parquet: one row per batch item (``id``, ``round``, ``rank``, ``position``, the image path
  or the table row, the model's guess) and an empty ``label`` column to fill in.
- Label Studio tasks (JSON): a list of ``{"data": {...}, "predictions": [...]}`` objects, the
  format Label Studio imports. ``data`` holds ``activebatch_id`` (how labels find their way
  back), the image URL (``image``), the table row (its columns, plus ``row``, the row as text) or
  a text item's text (``text``, beside its other columns), and the model's guess travels as a
  pre-annotation. :func:`label_config` writes the matching labelling interface (a ``Choices``
  tag named ``label``).

Imports
-------
- CSV / Parquet with an ``id`` (or ``activebatch_id``) column and a ``label`` column (class
  names; empty cells are skipped), optionally ``annotator``. An id may appear on several rows
  (one per annotator).
- Label Studio's JSON export (tasks with ``annotations``; cancelled annotations are skipped) and
  its JSON-MIN export (flat objects), read by :mod:`.labelstudio`.

Every row or annotation is one vote; :meth:`LabelRows.resolve` settles items given several
labels (see :mod:`.votes` for the conflict policies).
"""
from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pandas as pd

from .files import TABLE_SUFFIXES, InputFileError, read_table
from .labelstudio import FROM_NAME, ID_KEY, read_label_studio
from .votes import LabelRows, as_text, is_blank

__all__ = ["LabelRows", "read_label_file", "label_config", "label_studio_tasks", "image_data_uri",
           "ID_KEY", "FROM_NAME"]


# Reading labels ---------------------------------------------------------------------------------
def read_label_file(path: str | Path, *, from_name: str | None = None) -> LabelRows:
    """Read labels from a CSV/Parquet table or a Label Studio JSON export.

    Parameters
    ----------
    path : str or Path
    from_name : str, optional
        In Label Studio files, the name of the ``Choices`` tag to read (default: the only
        single-choice result of each annotation).

    Returns
    -------
    LabelRows
        One entry per vote: an item may appear more than once (see :meth:`LabelRows.resolve`).

    Raises
    ------
    InputFileError
        For unreadable or malformed files, with the file and the problem named.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"labels file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _read_label_table(p)
    if suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputFileError(f"labels file {str(p)!r} is not valid JSON: {exc}") from exc
        except RecursionError:   # Python's parser recurses once per level of nesting
            raise InputFileError(f"labels file {str(p)!r} is nested too deeply to be a Label Studio export") from None
        except ValueError as exc:   # e.g. a number with more digits than Python converts
            raise InputFileError(f"labels file {str(p)!r} is not usable JSON: {exc}") from exc
        return read_label_studio(data, str(p), from_name)
    raise InputFileError(f"labels file {str(p)!r}: expected .csv, .parquet or a Label Studio .json export")


def _read_label_table(p: Path) -> LabelRows:
    where = f"labels file {str(p)!r}"
    frame = read_table(p, what="labels", id_column="id")
    if "id" not in frame.columns and ID_KEY in frame.columns:
        frame = read_table(p, what="labels", id_column=ID_KEY).rename(columns={ID_KEY: "id"})
    missing = [c for c in ("id", "label") if c not in frame.columns]
    if missing:
        raise InputFileError(f"{where} needs columns 'id' and 'label' (and optionally 'annotator'); it has "
                             f"{', '.join(frame.columns) or 'none'}")
    out = LabelRows(format="table")
    who = frame["annotator"] if "annotator" in frame.columns else [None] * len(frame)
    first = 2 if p.suffix.lower() == ".csv" else 1   # a CSV's line numbers count the header
    place = "line" if first == 2 else "row"
    for row, (i, lab, a) in enumerate(zip(frame["id"], frame["label"], who)):
        if is_blank(i):
            raise InputFileError(f"{where}: {place} {row + first} has no id")
        if is_blank(lab):
            out.unlabeled += 1
            continue
        out.add(i, lab, None if is_blank(a) else as_text(a), origin=f"{place} {row + first}")
    return out


# Writing tasks ----------------------------------------------------------------------------------
def label_config(kind: str, classes: list[str], *, from_name: str = FROM_NAME) -> str:
    """The Label Studio labelling interface (XML) matching :func:`label_studio_tasks`."""
    if kind == "image":
        obj, to = '<Image name="image" value="$image"/>', "image"
    elif kind == "tabular":
        obj, to = '<Text name="row" value="$row"/>', "row"
    elif kind == "text":
        obj, to = '<Text name="text" value="$text"/>', "text"
    else:
        obj, to = f'<Text name="item" value="${ID_KEY}"/>', "item"
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (f"<View>\n  {obj}\n  <Choices name={quoteattr(from_name)} toName=\"{to}\" choice=\"single\" "
            f"showInline=\"true\">\n{choices}\n  </Choices>\n</View>\n")


def label_studio_tasks(batch: pd.DataFrame, *, kind: str, image_url: Callable[[dict], str],
                       from_name: str = FROM_NAME, text_key: str | None = None) -> list[dict]:
    """Label Studio tasks for the rows of a batch (as returned by the workspace's ``batch``).

    Parameters
    ----------
    batch : DataFrame
        Columns ``item_id``, ``round``, ``rank``, ``position``, ``source``, ``display``,
        ``predicted``, ``confidence``.
    kind : {"tabular", "image", "features", "text"}
    image_url : callable
        Maps a batch row (a dict) to the URL Label Studio loads the image from.
    from_name : str
        Name of the ``Choices`` tag (see :func:`label_config`).
    text_key : str, optional
        For text items, the column of ``display`` holding the text; it goes into ``data["text"]``
        (what the interface shows) and the other columns beside it (one named ``text`` as
        ``item.text``).
    """
    if kind == "text" and text_key is None:
        raise ValueError("text items need text_key, the column holding their text")
    to_name = {"image": "image", "tabular": "row", "text": "text"}.get(kind, "item")
    tasks = []
    for row in batch.to_dict("records"):
        data: dict[str, Any] = {}
        if kind == "tabular" and row.get("display"):
            data.update({str(k): v for k, v in row["display"].items()})
            data["row"] = "\n".join(f"{k}: {'' if v is None else v}" for k, v in row["display"].items())
        if kind == "image":
            data["image"] = image_url(row)
        if kind == "text":
            display = row.get("display") or {}
            data.update({("item.text" if k == "text" else str(k)): v for k, v in display.items() if k != text_key})
            data["text"] = display.get(text_key)
        data.update({ID_KEY: row["item_id"], "activebatch_round": int(row["round"]),
                     "activebatch_rank": int(row["rank"]), "activebatch_position": int(row["position"])})
        task: dict[str, Any] = {"data": data}
        if not is_blank(row.get("predicted")):
            task["predictions"] = [{
                "model_version": f"activebatch-round-{int(row['round'])}",
                "score": None if is_blank(row.get("confidence")) else float(row["confidence"]),
                "result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                            "value": {"choices": [str(row["predicted"])]}}],
            }]
        tasks.append(task)
    return tasks


def image_data_uri(path: str | Path) -> str:
    """The image file as a ``data:`` URI (embedded in the task, no file serving needed)."""
    p = Path(path)
    mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"
