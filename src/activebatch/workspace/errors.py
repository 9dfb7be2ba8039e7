"""Errors raised by workspaces (all ``ValueError``, so callers may catch one type)."""
from __future__ import annotations

from ..datasets.pool import LabelConflictError as _PoolLabelConflict

__all__ = ["WorkspaceError", "LabelConflictError", "ConcurrentQueryError", "NotInBatchError", "DisagreementError",
           "StoreDamagedError"]


class WorkspaceError(ValueError):
    """A workspace request that cannot be carried out; nothing was changed."""


class LabelConflictError(WorkspaceError, _PoolLabelConflict):
    """An item already has a different label (or the label is someone else's to undo)."""


class NotInBatchError(WorkspaceError):
    """Labels were given for items that are not in the batch they are checked against."""


class ConcurrentQueryError(WorkspaceError):
    """Another query recorded a round while this one was training; nothing was recorded."""


class DisagreementError(LabelConflictError):
    """A label file gives one item different labels (several annotators, tasks or rows) and the
    conflict policy does not settle them; nothing was recorded."""


class StoreDamagedError(WorkspaceError):
    """The workspace's SQLite file is damaged (truncated, overwritten, empty); nothing was changed."""
