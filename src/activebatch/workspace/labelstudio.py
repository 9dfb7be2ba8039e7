"""Reading Label Studio's JSON and JSON-MIN exports, checking their structure as they are read.

A full export is a list of tasks; each task's ``annotations`` (``completions`` in old versions)
are the labels people gave, each with a ``result`` list holding the ``choices`` result of the
labelling interface (:func:`activebatch.workspace.formats.label_config`). JSON-MIN flattens each
annotation into one object. Every annotation that was not cancelled is one vote
(:class:`~activebatch.workspace.votes.LabelRows`); disagreements are settled afterwards.

Anything shaped otherwise (an object instead of the list, ``choices`` given as a string, an
annotation without ``result``, ...) raises :class:`InputFileError` naming the task, what was found
and the structure expected, never a ``KeyError`` or ``TypeError``.
"""
from __future__ import annotations

from typing import Any

from .files import InputFileError
from .votes import LabelRows, as_text, is_blank

__all__ = ["read_label_studio", "EXPECTED", "ID_KEY", "FROM_NAME"]

#: Key of the item id inside a Label Studio task's ``data``.
ID_KEY = "activebatch_id"
#: Name of the ``Choices`` tag in the exported labelling interface.
FROM_NAME = "label"

EXPECTED = ("expected a JSON list of tasks, each with 'data': {'activebatch_id': ...} and 'annotations': "
            "[{'result': [{'type': 'choices', 'from_name': 'label', 'value': {'choices': ['<class>']}}]}] "
            "(Label Studio's JSON export), or a list of flat objects {'activebatch_id': ..., 'label': '<class>'} "
            "(its JSON-MIN export)")
_RESULT = "{'type': 'choices', 'from_name': 'label', 'value': {'choices': ['<class>']}}"


def read_label_studio(data: Any, where: str, from_name: str | None = None) -> LabelRows:
    """The votes in a parsed Label Studio export (JSON or JSON-MIN).

    Parameters
    ----------
    data : object
        The parsed JSON.
    where : str
        The file, as named in error messages.
    from_name : str, optional
        The ``Choices`` tag to read (default: the only single-choice result of each annotation).

    Raises
    ------
    InputFileError
        For anything not shaped like an export, naming the place and the structure expected.
    """
    where = f"Label Studio file {where!r}"
    if isinstance(data, dict):
        if not _looks_like_task(data):
            keys = ", ".join(repr(str(k)) for k in list(data)[:8]) or "none"
            hint = ""
            lists = [k for k, v in data.items() if isinstance(v, list)]
            if lists:
                hint = f" (if the tasks are the list under {lists[0]!r}, give that list itself)"
            raise InputFileError(f"{where}: {EXPECTED}; got an object with keys {keys}{hint}")
        data = [data]   # one task on its own
    if not isinstance(data, list):
        raise InputFileError(f"{where}: {EXPECTED}; got {_kind(data)}")
    out = LabelRows(format="label-studio")
    for n, task in enumerate(data):
        if not isinstance(task, dict):
            raise InputFileError(f"{where}: the task at index {n} is {_kind(task)}; {EXPECTED}")
        if "annotations" in task or "completions" in task or "data" in task:
            _full_task(task, n, where, from_name, out)
        else:
            _min_task(task, n, where, from_name, out)
    return out


def _looks_like_task(d: dict) -> bool:
    return bool({"data", "annotations", "completions", ID_KEY} & set(d))


def _kind(v: Any) -> str:
    """What a JSON value is, for error messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f"the string {v[:40]!r}" + ("..." if len(v) > 40 else "")
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "an object with keys " + (", ".join(repr(str(k)) for k in list(v)[:5]) or "none")
    return type(v).__name__


def _task_name(task: dict, n: int) -> str:
    tid = task.get("id")
    if isinstance(tid, (str, int)) and not isinstance(tid, bool) and str(tid).strip():
        return f"task {tid} (index {n})"
    return f"the task at index {n}"


def _item_id(value: Any, name: str, where: str, inside: str) -> str:
    if is_blank(value):
        raise InputFileError(f"{where}: {name} has no {ID_KEY!r} in its {inside}; export the batch with "
                             "`activebatch export --format json` so labels can be matched to items")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputFileError(f"{where}: {name} has {ID_KEY!r} {_kind(value)}; expected the item id (text or a number)")
    return as_text(value)


def _time_of(d: dict) -> str | None:
    """``updated_at``, else ``created_at``, as given (None when neither is there)."""
    for key in ("updated_at", "created_at"):
        v = d.get(key)
        if not is_blank(v) and not isinstance(v, (dict, list)):
            return str(v)
    return None


def _full_task(task: dict, n: int, where: str, from_name: str | None, out: LabelRows) -> None:
    name = _task_name(task, n)
    data = task.get("data")
    if not isinstance(data, dict):
        raise InputFileError(f"{where}: {name} has 'data' {_kind(data)}; expected an object holding {ID_KEY!r}")
    item_id = _item_id(data.get(ID_KEY), name, where, "data")
    key = "annotations" if "annotations" in task else "completions"
    annotations = task.get(key)
    if annotations is None:
        annotations = []
    if not isinstance(annotations, list):
        raise InputFileError(f"{where}: {name} has {key!r} {_kind(annotations)}; expected a list of annotations "
                             f"[{{'result': [{_RESULT}]}}]")
    voted = False
    for a, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise InputFileError(f"{where}: {name}: annotation at index {a} is {_kind(ann)}; expected an object "
                                 f"{{'result': [{_RESULT}]}}")
        aid = ann.get("id")
        aname = f"{name}, annotation {aid if isinstance(aid, (int, str)) and not isinstance(aid, bool) else a}"
        if ann.get("was_cancelled"):     # skipped in Label Studio
            continue
        if "result" not in ann:
            raise InputFileError(f"{where}: {aname} has no 'result'; expected 'result': [{_RESULT}]")
        choice = _choice(ann["result"], aname, item_id, where, from_name)
        if choice is not None:
            out.add(item_id, choice, _annotator(ann.get("completed_by")), at=_time_of(ann), origin=aname)
            voted = True
    if not voted:
        out.unlabeled += 1


def _choice(result: Any, aname: str, item_id: str, where: str, from_name: str | None) -> str | None:
    if not isinstance(result, list):
        raise InputFileError(f"{where}: {aname} has 'result' {_kind(result)}; expected a list [{_RESULT}]")
    picks = []
    for r, res in enumerate(result):
        if not isinstance(res, dict):
            raise InputFileError(f"{where}: {aname}: result at index {r} is {_kind(res)}; expected an object {_RESULT}")
        if res.get("type") == "choices" and (from_name is None or res.get("from_name") == from_name):
            picks.append(res)
    if not picks:
        return None
    if len(picks) > 1:
        names = sorted({str(r.get("from_name")) for r in picks})
        raise InputFileError(f"{where}: {aname} (item {item_id!r}) has several choice results ({', '.join(names)}); "
                             "name the one to read with --from-name")
    value = picks[0].get("value")
    if not isinstance(value, dict) or "choices" not in value:
        raise InputFileError(f"{where}: {aname} (item {item_id!r}) has a choices result whose 'value' is "
                             f"{_kind(value)}; expected {{'choices': ['<class>']}}")
    return _one_class(value["choices"], aname, item_id, where)


def _one_class(chosen: Any, name: str, item_id: str, where: str) -> str:
    if isinstance(chosen, str):
        raise InputFileError(f"{where}: {name} (item {item_id!r}) gives 'choices' as {_kind(chosen)}; expected a "
                             f"list holding one class name, like {{'choices': [{chosen[:40]!r}]}}")
    if not isinstance(chosen, list) or len(chosen) != 1:
        raise InputFileError(f"{where}: {name} (item {item_id!r}) must have exactly one chosen class, got "
                             f"{_kind(chosen) if not isinstance(chosen, list) else repr(chosen)[:200]}")
    return _class_name(chosen[0], name, item_id, where)


def _class_name(v: Any, name: str, item_id: str, where: str) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise InputFileError(f"{where}: {name} (item {item_id!r}) chose {_kind(v)}; expected a class name")
    return as_text(v)


def _annotator(v: Any) -> str | None:
    if isinstance(v, dict):
        v = v.get("email") or v.get("username") or v.get("id")
        if isinstance(v, (dict, list)):
            return None
        return None if v is None else (f"labelstudio-user-{v}" if isinstance(v, int) else str(v))
    if isinstance(v, bool) or isinstance(v, (list, float)):
        return None
    if isinstance(v, int):
        return f"labelstudio-user-{v}"
    return None if is_blank(v) else str(v)


def _min_task(task: dict, n: int, where: str, from_name: str | None, out: LabelRows) -> None:
    name = _task_name(task, n)
    aid = task.get("annotation_id")
    if isinstance(aid, (int, str)) and not isinstance(aid, bool):
        name += f", annotation {aid}"
    item_id = _item_id(task.get(ID_KEY), name, where, "object")
    key = from_name or FROM_NAME
    value = task.get(key)
    if isinstance(value, dict):
        if "choices" not in value:
            raise InputFileError(f"{where}: {name} (item {item_id!r}) has {key!r} {_kind(value)}; expected a class "
                                 f"name or {{'choices': ['<class>']}}")
        value = value["choices"]
        if isinstance(value, str):
            value = _one_class(value, name, item_id, where)   # raises: choices must be a list
    if isinstance(value, list):
        value = _one_class(value, name, item_id, where)
    if is_blank(value):
        out.unlabeled += 1
        return
    value = _class_name(value, name, item_id, where)
    out.add(item_id, value, _annotator(task.get("annotator")), at=_time_of(task), origin=name)
