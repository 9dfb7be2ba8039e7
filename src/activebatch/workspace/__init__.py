"""Human-in-the-loop labelling projects.

A workspace is a folder holding one SQLite file (:mod:`.store`): the items to label (rows of a
table, images in a folder, or rows of a precomputed feature matrix; :mod:`.items`), the class
list, every label with who gave it and when, the rounds of queries with their batches, and the
metrics of each model trained. :class:`Workspace` is the Python interface; the command line
(``activebatch init | query | export | import | status | serve``) and the labelling page
(:mod:`.server`) are built on it. Batches are exchanged with annotators as CSV files or as
Label Studio tasks (:mod:`.formats`, :mod:`.labelstudio`; several labels of one item are settled
by :mod:`.votes`). The store is checked read-only before use and backed up before writes
(:mod:`.health`).
"""
from .errors import (
    ConcurrentQueryError,
    DisagreementError,
    LabelConflictError,
    NotInBatchError,
    StoreDamagedError,
    WorkspaceError,
)
from .files import InputFileError
from .items import ItemSet, read_items
from .model import MODELS, ModelConfig
from .store import STORE_NAME, WorkspaceStore
from .workspace import ImportResult, QueryResult, Workspace, WorkspaceStatus, parse_classes

__all__ = ["ConcurrentQueryError", "DisagreementError", "ImportResult", "InputFileError", "ItemSet",
           "LabelConflictError", "MODELS", "ModelConfig", "NotInBatchError", "QueryResult", "STORE_NAME",
           "StoreDamagedError", "Workspace", "WorkspaceError", "WorkspaceStatus", "WorkspaceStore", "parse_classes",
           "read_items"]
