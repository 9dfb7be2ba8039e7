"""Labels read from a file, and how several labels of one item are settled.

A file may label an item more than once: a Label Studio task annotated by several people, the
same task imported into Label Studio twice, or a table with one row per annotator. Every such
label is a *vote*; :meth:`LabelRows.resolve` turns the votes into one label per item under a
conflict policy:

``refuse`` (default)
    Votes that agree count as one label; votes that disagree refuse the whole file, naming the
    items, the tasks or rows, the annotators and their labels.
``majority``
    The most common label wins. A tie for the most votes is refused like ``refuse``.
``latest``
    The vote with the latest time wins: a Label Studio annotation's ``updated_at`` (its
    ``created_at`` when it has no ``updated_at``), compared as instants, time zones honoured. When
    the latest time is shared by votes that disagree, the file is refused. When none of an item's
    votes has a time (table rows), the one nearest the end of the file wins. When only some have a
    time, the file is refused: the order of the others is unknown.

Whatever the policy, the label is recorded under the annotator of the winning vote (among several
winning votes, the latest).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from .errors import DisagreementError, WorkspaceError

__all__ = ["LabelRows", "CONFLICT_POLICIES", "parse_time", "check_policy", "as_text", "is_blank"]

CONFLICT_POLICIES = ("refuse", "majority", "latest")


def check_policy(conflicts: str) -> str:
    """``conflicts`` if it names a policy; a :class:`WorkspaceError` naming the choices otherwise."""
    if conflicts not in CONFLICT_POLICIES:
        raise WorkspaceError(f"conflicts must be one of {', '.join(CONFLICT_POLICIES)}, got {conflicts!r}")
    return conflicts


_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (no zone: UTC), or None when it is absent or unreadable.

    Label Studio writes ``2026-01-02T10:00:00.123456Z``; Python 3.10's ``fromisoformat`` needs
    ``+00:00`` instead of ``Z`` and exactly 3 or 6 digits of fraction, so both are normalised.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


@dataclass
class LabelRows:
    """Labels read from a file, one entry per vote.

    Parallel lists: ids, class names, annotators (None: not given), times (``updated_at`` or
    ``created_at`` as given, None when absent) and origins (where in the file the vote is, e.g.
    ``task 12, annotation 40`` or ``row 5``). ``unlabeled`` counts rows or tasks without a label;
    ``settled`` counts items whose disagreeing votes a policy settled.
    """

    ids: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    annotators: list[str | None] = field(default_factory=list)
    times: list[str | None] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    unlabeled: int = 0
    format: str = ""
    settled: int = 0

    def add(self, item_id: Any, label: Any, annotator: str | None, *, at: str | None = None,
            origin: str = "") -> None:
        """Append one vote (ids and labels are kept as stripped text)."""
        self.ids.append(as_text(item_id))
        self.labels.append(as_text(label))
        self.annotators.append(annotator)
        self.times.append(at)
        self.origins.append(origin or f"entry {len(self.ids)}")

    def __len__(self) -> int:
        return len(self.ids)

    def resolve(self, conflicts: str = "refuse", *, where: str = "") -> LabelRows:
        """One label per item, settled under ``conflicts`` (see the module docstring).

        Raises
        ------
        DisagreementError
            When votes disagree and the policy does not settle them (nothing is recorded).
        """
        check_policy(conflicts)
        groups: dict[str, list[int]] = {}
        for k, i in enumerate(self.ids):
            groups.setdefault(i, []).append(k)
        out = LabelRows(unlabeled=self.unlabeled, format=self.format)
        problems: list[str] = []
        for item_id, votes in groups.items():
            winner, problem = self._settle(item_id, votes, conflicts)
            if problem:
                problems.append(problem)
                continue
            if len({self.labels[k] for k in votes}) > 1:
                out.settled += 1
            out.add(item_id, self.labels[winner], self.annotators[winner], at=self.times[winner],
                    origin=self.origins[winner])
        if problems:
            raise DisagreementError(_disagreement_message(problems, conflicts, where))
        return out

    def _settle(self, item_id: str, votes: list[int], conflicts: str) -> tuple[int, str]:
        """The winning vote of one item, or a description of why there is none."""
        labels = {self.labels[k] for k in votes}
        if len(labels) == 1:
            return self._latest(votes), ""
        if conflicts == "majority":
            counts = Counter(self.labels[k] for k in votes).most_common()
            top = [lab for lab, c in counts if c == counts[0][1]]
            if len(top) == 1:
                return self._latest([k for k in votes if self.labels[k] == top[0]]), ""
            return -1, self._describe(item_id, votes, f"a tie between {', '.join(map(repr, sorted(top)))}")
        if conflicts == "latest":
            times = {k: parse_time(self.times[k]) for k in votes}
            untimed = [k for k in votes if times[k] is None]
            if untimed and len(untimed) < len(votes):
                return -1, self._describe(item_id, votes, "no readable updated_at/created_at time on "
                                          + ", ".join(self.origins[k] for k in untimed))
            if not untimed:
                last = max(times.values())
                newest = {self.labels[k] for k in votes if times[k] == last}
                if len(newest) > 1:
                    tie = last.astimezone(timezone.utc).isoformat()
                    return -1, self._describe(item_id, votes, f"a tie at the latest time, {tie}")
                return max(k for k in votes if times[k] == last), ""
            return votes[-1], ""
        return -1, self._describe(item_id, votes, "")

    def _latest(self, votes: list[int]) -> int:
        """The latest of votes that agree: by time when all have one, else the last in the file."""
        times = [parse_time(self.times[k]) for k in votes]
        if all(t is not None for t in times):
            return max(zip(times, votes))[1]
        return votes[-1]

    def _describe(self, item_id: str, votes: list[int], why: str) -> str:
        shown = "; ".join(f"{self.labels[k]!r} by {self.annotators[k] or 'an unnamed annotator'} ({self.origins[k]}"
                          + (f", {self.times[k]}" if self.times[k] else "") + ")" for k in votes[:6])
        more = f"; and {len(votes) - 6} more" if len(votes) > 6 else ""
        return f"item {item_id!r}: {shown}{more}" + (f" - {why}" if why else "")


def _disagreement_message(problems: list[str], conflicts: str, where: str) -> str:
    head = f"{where}: " if where else ""
    lines = [f"{head}{len(problems)} item(s) have labels that disagree"
             + ("" if conflicts == "refuse" else f" and cannot be settled by --conflicts {conflicts}") + ":"]
    lines += [f"  {p}" for p in problems[:5]]
    if len(problems) > 5:
        lines.append(f"  ... and {len(problems) - 5} more")
    lines.append("nothing was recorded; settle disagreements with --conflicts majority (the most common label) or "
                 "--conflicts latest (the most recently updated annotation), conflicts='majority'/'latest' in "
                 "Python, or correct the file")
    return "\n".join(lines)


def as_text(v: Any) -> str:
    """An id or class name as stripped text (``7.0`` read from a table becomes ``"7"``)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def is_blank(v: Any) -> bool:
    """True for None, NaN and empty or all-space text."""
    if v is None:
        return True
    if isinstance(v, (list, tuple, dict)):   # not a cell value; callers say what is wrong with it
        return False
    try:
        if bool(pd.isna(v)):
            return True
    except (TypeError, ValueError):
        pass
    return str(v).strip() == ""
