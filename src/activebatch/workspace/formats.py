"""Files exchanged with annotators: batch exports and label imports.

Exports
-------
- CSV / Parquet: one row per batch item (``id``, ``round``, ``rank``, ``position``, the image path
  or the table row, the model's guess) and an empty ``label`` column to fill in.
- Label Studio tasks (JSON): a list of ``{"data": {...}, "predictions": [...]}`` objects, the
  format Label Studio imports. ``data`` holds ``activebatch_id`` (how labels find their way
  back), the image URL (``image``) or the table row (its columns, plus ``row``, the row as text),
  and the model's guess travels as a pre-annotation. :func:`label_config` writes the matching
  labelling interface (a ``Choices`` tag named ``label``).

Imports
-------
- CSV / Parquet with an ``id`` (or ``activebatch_id``) column and a ``label`` column (class
  names; empty cells are skipped), optionally ``annotator``.
- Label Studio's JSON export (tasks with ``annotations``; cancelled annotations are skipped,
  the most recent remaining one counts) and its JSON-MIN export (flat objects).
"""
from __future__ import annotations

import base64
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from xml.sax.saxutils import quoteattr

import pandas as pd

from .files import InputFileError, TABLE_SUFFIXES, read_table

__all__ = ["LabelRows", "read_label_file", "label_config", "label_studio_tasks", "image_data_uri",
           "ID_KEY", "FROM_NAME"]

#: Key of the item id inside a Label Studio task's ``data``.
ID_KEY = "activebatch_id"
#: Name of the ``Choices`` tag in the exported labelling interface.
FROM_NAME = "label"


@dataclass
class LabelRows:
    """Labels read from a file: parallel lists of ids, class names and annotators (None: not
    given), plus the number of rows or tasks that carried no label."""

    ids: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    annotators: list[Optional[str]] = field(default_factory=list)
    unlabeled: int = 0
    format: str = ""

    def add(self, item_id: Any, label: Any, annotator: Optional[str]) -> None:
        """Append one label (ids and labels are kept as stripped text)."""
        self.ids.append(_text(item_id))
        self.labels.append(_text(label))
        self.annotators.append(annotator)

    def __len__(self) -> int:
        return len(self.ids)


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _blank(v: Any) -> bool:
    if v is None:
        return True
    try:
        if pd.isna(v):
            return True
    except (TypeError, ValueError):
        pass
    return str(v).strip() == ""


# Reading labels ---------------------------------------------------------------------------------
def read_label_file(path: "str | Path", *, from_name: Optional[str] = None) -> LabelRows:
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
        return _read_label_studio(data, str(p), from_name)
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
    for row, (i, lab, a) in enumerate(zip(frame["id"], frame["label"], who)):
        if _blank(i):
            raise InputFileError(f"{where}: row {row + 2} has no id")
        if _blank(lab):
            out.unlabeled += 1
            continue
        out.add(i, lab, None if _blank(a) else _text(a))
    return out


def _read_label_studio(data: Any, where: str, from_name: Optional[str]) -> LabelRows:
    where = f"Label Studio file {where!r}"
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        raise InputFileError(f"{where}: expected a list of tasks (a Label Studio JSON or JSON-MIN export)")
    out = LabelRows(format="label-studio")
    for n, task in enumerate(data):
        if "annotations" in task or "completions" in task or "data" in task:
            item_id, choice, who = _full_task(task, n, where, from_name)
        else:
            item_id, choice, who = _min_task(task, n, where, from_name)
        if choice is None:
            out.unlabeled += 1
        else:
            out.add(item_id, choice, who)
    return out


def _task_id(data: Any, n: int, where: str) -> str:
    if not isinstance(data, dict) or _blank(data.get(ID_KEY)):
        raise InputFileError(f"{where}: task {n} has no {ID_KEY!r} in its data; export the batch with "
                             "`activebatch export --format json` so labels can be matched to items")
    return _text(data[ID_KEY])


def _full_task(task: dict, n: int, where: str, from_name: Optional[str]) -> tuple[str, Optional[str], Optional[str]]:
    item_id = _task_id(task.get("data"), n, where)
    annotations = task.get("annotations", task.get("completions")) or []
    if not isinstance(annotations, list):
        raise InputFileError(f"{where}: task {n} has malformed annotations")
    live = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not live:
        return item_id, None, None
    live.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
    ann = live[-1]
    choices = [r for r in ann.get("result") or [] if isinstance(r, dict) and r.get("type") == "choices"
               and (from_name is None or r.get("from_name") == from_name)]
    if not choices:
        return item_id, None, None
    if len(choices) > 1:
        names = sorted({str(r.get("from_name")) for r in choices})
        raise InputFileError(f"{where}: task {n} (item {item_id!r}) has several choice results ({', '.join(names)}); "
                             "name the one to read with --from-name")
    value = choices[0].get("value") or {}
    picked = value.get("choices") if isinstance(value, dict) else None
    if not isinstance(picked, list) or len(picked) != 1:
        raise InputFileError(f"{where}: task {n} (item {item_id!r}) must have exactly one chosen class, got {picked!r}")
    return item_id, _text(picked[0]), _annotator(ann.get("completed_by"))


def _annotator(v: Any) -> Optional[str]:
    if isinstance(v, dict):
        v = v.get("email") or v.get("username") or v.get("id")
        return None if v is None else (f"labelstudio-user-{v}" if isinstance(v, int) else str(v))
    if isinstance(v, int):
        return f"labelstudio-user-{v}"
    return None if _blank(v) else str(v)


def _min_task(task: dict, n: int, where: str, from_name: Optional[str]) -> tuple[str, Optional[str], Optional[str]]:
    item_id = _task_id(task, n, where)
    key = from_name or FROM_NAME
    if key not in task:
        return item_id, None, None
    value = task[key]
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, list):
        if len(value) != 1:
            raise InputFileError(f"{where}: task {n} (item {item_id!r}) must have exactly one chosen class, got {value!r}")
        value = value[0]
    if _blank(value):
        return item_id, None, None
    return item_id, _text(value), _annotator(task.get("annotator"))


# Writing tasks ----------------------------------------------------------------------------------
def label_config(kind: str, classes: list[str], *, from_name: str = FROM_NAME) -> str:
    """The Label Studio labelling interface (XML) matching :func:`label_studio_tasks`."""
    if kind == "image":
        obj, to = '<Image name="image" value="$image"/>', "image"
    elif kind == "tabular":
        obj, to = '<Text name="row" value="$row"/>', "row"
    else:
        obj, to = f'<Text name="item" value="${ID_KEY}"/>', "item"
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (f"<View>\n  {obj}\n  <Choices name={quoteattr(from_name)} toName=\"{to}\" choice=\"single\" "
            f"showInline=\"true\">\n{choices}\n  </Choices>\n</View>\n")


def label_studio_tasks(batch: pd.DataFrame, *, kind: str, image_url: Callable[[dict], str],
                       from_name: str = FROM_NAME) -> list[dict]:
    """Label Studio tasks for the rows of a batch (as returned by the workspace's ``batch``).

    Parameters
    ----------
    batch : DataFrame
        Columns ``item_id``, ``round``, ``rank``, ``position``, ``source``, ``display``,
        ``predicted``, ``confidence``.
    kind : {"tabular", "image", "features"}
    image_url : callable
        Maps a batch row (a dict) to the URL Label Studio loads the image from.
    from_name : str
        Name of the ``Choices`` tag (see :func:`label_config`).
    """
    to_name = {"image": "image", "tabular": "row"}.get(kind, "item")
    tasks = []
    for row in batch.to_dict("records"):
        data: dict[str, Any] = {}
        if kind == "tabular" and row.get("display"):
            data.update({str(k): v for k, v in row["display"].items()})
            data["row"] = "\n".join(f"{k}: {'' if v is None else v}" for k, v in row["display"].items())
        if kind == "image":
            data["image"] = image_url(row)
        data.update({ID_KEY: row["item_id"], "activebatch_round": int(row["round"]),
                     "activebatch_rank": int(row["rank"]), "activebatch_position": int(row["position"])})
        task: dict[str, Any] = {"data": data}
        if not _blank(row.get("predicted")):
            task["predictions"] = [{
                "model_version": f"activebatch-round-{int(row['round'])}",
                "score": None if _blank(row.get("confidence")) else float(row["confidence"]),
                "result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                            "value": {"choices": [str(row["predicted"])]}}],
            }]
        tasks.append(task)
    return tasks


def image_data_uri(path: "str | Path") -> str:
    """The image file as a ``data:`` URI (embedded in the task, no file serving needed)."""
    p = Path(path)
    mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"
