"""A Label Studio ML backend for a workspace: pre-annotations, live labels and the next batch.

``activebatch ml-backend DIR`` serves this Starlette application; a Label Studio project connects
to it under *Settings -> Model* (or with the SDK's ``client.ml.create(project=..., url=...)``).
Label Studio then talks to it with the ML-backend protocol of its ``label_studio/ml/api_connector.py``
(checked against Label Studio 1.23):

``GET /health``
    Liveness (``{"status": "UP", ...}``), with what the backend knows: the workspace, its model
    (version, round, labels trained on), the current batch's progress and any training under way.
``POST /setup`` ``{"project": "<id>.<created>", "schema": "<View>...", "hostname": ..., "access_token": ...}``
    Sent when the project connects and before each prediction run. The answer
    ``{"model_version": ...}`` names the model that will predict; Label Studio asks again for
    predictions only for tasks lacking one from that version, so the name changes exactly when the
    model is retrained. The labelling interface (``schema``) is checked: it must have a
    ``Choices`` tag offering every class of the workspace.
``POST /predict`` ``{"tasks": [{"id": ..., "data": {"activebatch_id": ...}}, ...], "label_config": ..., ...}``
    One prediction per task, in order: the model's class as a ``choices`` result (``from_name`` /
    ``to_name`` of the project's ``Choices`` tag) and the item's uncertainty as the prediction's
    ``score`` (see *Scores*). Before any model can be trained (fewer than two classes labelled)
    the answer is ``{"results": []}``: no predictions, not an error.
``POST /webhook`` ``{"action": ..., "annotation": {...}, "task": {...}, "project": {...}}``
    Label Studio registers this URL as a webhook of the project when the backend is connected, and
    sends every event there. ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED`` (and the bulk
    ``ANNOTATIONS_CREATED``) record the annotation's class as its annotator's vote;
    ``ANNOTATIONS_DELETED`` (and ``ANNOTATION_DELETED``, the singular form some clients send)
    withdraw the votes of the deleted annotations; a skipped (cancelled) annotation or one without
    a choice is no vote. ``START_TRAINING`` (the *Start Training* button) retrains the model and
    chooses the next batch. Other events are acknowledged and ignored.
``POST /train``
    The older form of *Start Training* (Label Studio versions that post the annotations to
    ``/train`` instead of the ``START_TRAINING`` webhook): the same as ``START_TRAINING``; the
    labels themselves arrive through the webhook.

Votes and labels
----------------
Every annotation is one vote, kept (with its annotator and time) in ``DIR/labelstudio_votes.sqlite``.
After each event the votes of each item concerned are settled under the conflict policy of
:mod:`~activebatch.workspace.votes` (``refuse``: disagreeing votes leave the item without a label
until they agree; ``majority``: the most common class, a tie leaves it without one; ``latest``: the
annotation updated last) and the result is written to the workspace store as a training label
given by the winning vote's annotator (source ``label-studio``): recorded, changed, or withdrawn
when no vote is left. A label the item got some other way (an import, the labelling page) is never
replaced: a vote that disagrees with it is refused with 409 and nothing is recorded. The annotator
is the Label Studio user: the e-mail where the event carries the user, else ``labelstudio-user-<id>``
(as :mod:`.labelstudio` names them in exports).

Training and the next batch
---------------------------
When every item of the current round's batch has a label (or on ``START_TRAINING``), a background
thread runs :meth:`Workspace.query <activebatch.workspace.Workspace.query>` with the workspace's
strategy (that of the last round unless the backend was given one; ``badge`` after a random
round) and batch size: the model is retrained on all labels, the next batch is recorded, and the
new model serves ``/predict``. When the backend knows the Label Studio project (from ``/setup``
or a webhook) and can authenticate (the project owner's legacy token sent with ``/setup``, or the
``api_key`` given to the backend), the new batch is imported into the project as tasks, exactly as
``activebatch export`` writes them (without pre-annotations: Label Studio asks ``/predict``).

Scores
------
Label Studio's *uncertainty sampling* (project setting *Task sampling*, ``sampling =
"Uncertainty sampling"``) shows the tasks with the **lowest** prediction score first, so the score
is an uncertainty in that orientation: ``confidence`` (default), the model's probability of its
predicted class, max_k p(k|x) (least-confidence sampling); or ``margin``, the difference between
the two largest class probabilities (margin sampling). Both lie in [0, 1]; a low score means an
uncertain model. In the Data Manager, sort by *Prediction score* ascending to see the most
uncertain items first.

Requests
--------
Bodies must be JSON objects (``Content-Type: application/json``); anything malformed gets a 4xx
answer ``{"error": "..."}`` naming what is wrong and what is expected, and records nothing: 400 for
a body of the wrong shape, 404 for an item id that is not in the workspace (or, for labels, in none
of its batches), 409 for a vote that contradicts a label given otherwise, 413 / 415 for oversized
or non-JSON bodies. The backend has no login and listens on 127.0.0.1 by default.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import strategies
from ..utils.extras import require
from ..utils.sqlite import open_connection
from ..utils.validation import check_choice, check_scalar
from .errors import DisagreementError, LabelConflictError, NotInBatchError, StoreDamagedError, WorkspaceError
from .httpserver import UvicornServer
from .labelstudio import FROM_NAME, ID_KEY, _kind
from .labelstudio import _annotator as annotator_of
from .stopping import stopping_status
from .votes import LabelRows, check_policy
from .workspace import Workspace

__all__ = ["MLBackendService", "MLBackendServer", "create_app", "serve_ml_backend", "ChoiceTarget",
           "parse_label_config", "VoteBook", "VOTES_NAME", "SCORES", "SOURCE", "UNTRAINED", "MAX_BODY"]

#: File of the Label Studio votes, in the workspace folder.
VOTES_NAME = "labelstudio_votes.sqlite"
#: The prediction scores offered (see the module docstring).
SCORES = ("confidence", "margin")
#: ``source`` of the labels this backend writes into the workspace store.
SOURCE = "label-studio"
#: Model version reported while no model can be trained (fewer than two classes labelled).
UNTRAINED = "activebatch-untrained"
#: Default largest request body: predictions requests carry whole tasks (images as data URIs too).
MAX_BODY = 100 << 20

_VOTE_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
_DELETE_ACTIONS = ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")
_TRAIN_ACTION = "START_TRAINING"
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

_EXPECTED = {
    "setup": '{"project": "<project id>.<timestamp>", "schema": "<labelling interface XML>", "hostname": '
             '"<Label Studio URL>", "access_token": "<token>"}',
    "predict": '{"tasks": [{"id": <task id>, "data": {"activebatch_id": "<item id>", ...}}, ...], '
               '"label_config": "<labelling interface XML>"}',
    "webhook": '{"action": "ANNOTATION_CREATED", "annotation": {"id": <id>, "result": [{"type": "choices", '
               '"from_name": "label", "value": {"choices": ["<class>"]}}], "completed_by": <user>}, "task": '
               '{"id": <task id>, "data": {"activebatch_id": "<item id>"}}, "project": {"id": <project id>}}',
    "train": '{"project": ..., "annotations": [...]} (or nothing but {})',
}


class _Refused(Exception):
    """A request refused with an HTTP status and a message (nothing was recorded)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bad(message: str) -> _Refused:
    return _Refused(400, message)


def _int_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _item_id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise _bad(f"{where} has data.{ID_KEY} {_kind(value)}; expected the item id (text or an integer) "
                   "that `activebatch export` writes into each task")
    return str(value).strip()


# The labelling interface ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChoiceTarget:
    """The ``Choices`` tag predictions fill in and annotations are read from.

    ``to_value`` maps each workspace class to the value a result carries (the ``Choice``'s
    ``alias`` when it has one, else its ``value``); ``to_class`` maps results back.
    """

    from_name: str
    to_name: str
    to_value: dict[str, str]
    to_class: dict[str, str]

    @classmethod
    def default(cls, kind: str, classes: list[str]) -> ChoiceTarget:
        """The interface ``activebatch export`` writes (:func:`~activebatch.workspace.formats.label_config`)."""
        to = {"image": "image", "tabular": "row", "text": "text"}.get(kind, "item")
        return cls(FROM_NAME, to, {c: c for c in classes}, {c: c for c in classes})


def parse_label_config(xml: str, classes: list[str], from_name: str | None = None) -> ChoiceTarget:
    """The ``Choices`` tag of a Label Studio labelling interface that offers the workspace's classes.

    Parameters
    ----------
    xml : str
        The labelling interface (``label_config`` / ``schema``).
    classes : list of str
        The workspace's classes.
    from_name : str, optional
        Name of the tag to use. Default: the only ``Choices`` tag, else the one named ``label``
        (the name ``activebatch export`` gives it).

    Raises
    ------
    WorkspaceError
        When the XML does not parse, has no such tag, names several without one called
        ``label``, or lacks a ``Choice`` for some class (every missing class is named).
    """
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise WorkspaceError(f"the labelling interface is not valid XML ({exc})") from None
    tags = [e for e in root.iter() if e.tag == "Choices"]
    if from_name is not None:
        chosen = [e for e in tags if e.get("name") == from_name]
        if not chosen:
            raise WorkspaceError(f"the labelling interface has no <Choices name={from_name!r}> tag; its Choices tags: "
                                 f"{', '.join(repr(e.get('name')) for e in tags) or 'none'}")
    elif len(tags) == 1:
        chosen = tags
    else:
        chosen = [e for e in tags if e.get("name") == FROM_NAME]
        if not chosen:
            raise WorkspaceError(
                "the labelling interface needs a <Choices> tag offering the classes; it has "
                + (f"{len(tags)} ({', '.join(repr(e.get('name')) for e in tags)}): give the backend the one to use "
                   "(--from-name)" if tags else "none"))
    tag = chosen[0]
    name, to_name = tag.get("name"), tag.get("toName")
    if not name or not to_name:
        raise WorkspaceError("the <Choices> tag of the labelling interface needs both 'name' and 'toName'")
    offered: dict[str, str] = {}
    for choice in tag.iter("Choice"):
        value = choice.get("value")
        if value is None:
            continue
        alias = choice.get("alias")
        offered[value] = alias or value
        if alias:
            offered.setdefault(alias, alias)
    missing = [c for c in classes if c not in offered]
    if missing:
        raise WorkspaceError(f"the labelling interface's <Choices name={name!r}> offers no choice for the class(es) "
                             f"{', '.join(map(repr, missing))}; it must offer every class of the workspace "
                             f"({', '.join(classes)}), e.g. the interface `activebatch export` writes")
    to_value = {c: offered[c] for c in classes}
    return ChoiceTarget(name, to_name.split(",")[0].strip(), to_value, {v: c for c, v in to_value.items()})


# Votes --------------------------------------------------------------------------------------------
@dataclass
class Vote:
    """One Label Studio annotation: the class it chose (None: no choice, or skipped) and who gave it."""

    project: int
    annotation: int
    task: int | None
    item_id: str
    label: str | None
    annotator: str
    at: str | None


class VoteBook:
    """The Label Studio votes of a workspace, one row per annotation, in ``DIR/labelstudio_votes.sqlite``."""

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS votes (project INTEGER NOT NULL, annotation INTEGER NOT NULL, "
               "task INTEGER, item_id TEXT NOT NULL, label TEXT, annotator TEXT NOT NULL, at TEXT, "
               "received TEXT NOT NULL, PRIMARY KEY (project, annotation))")

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / VOTES_NAME
        with self._connect() as con:
            con.execute(self._SCHEMA)
            con.execute("CREATE INDEX IF NOT EXISTS votes_item ON votes(item_id)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with open_connection(self.path, timeout=60.0, synchronous="FULL", check_same_thread=False) as con:
                yield con
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"the Label Studio votes file {str(self.path)!r} cannot be used: {exc}") from exc

    def votes(self, item_ids: list[str]) -> list[Vote]:
        """The votes on these items."""
        out: list[Vote] = []
        with self._connect() as con:
            for start in range(0, len(item_ids), 500):
                chunk = item_ids[start:start + 500]
                rows = con.execute("SELECT project, annotation, task, item_id, label, annotator, at FROM votes "
                                   f"WHERE item_id IN ({','.join('?' * len(chunk))}) ORDER BY received, annotation",
                                   chunk).fetchall()
                out += [Vote(*r) for r in rows]
        return out

    def find(self, project: int | None, annotations: list[int]) -> list[Vote]:
        """The votes of these annotations (of ``project``, or of any project when None)."""
        out: list[Vote] = []
        with self._connect() as con:
            for start in range(0, len(annotations), 500):
                chunk = annotations[start:start + 500]
                where = f"annotation IN ({','.join('?' * len(chunk))})"
                args: list[Any] = list(chunk)
                if project is not None:
                    where += " AND project = ?"
                    args.append(project)
                out += [Vote(*r) for r in con.execute(
                    f"SELECT project, annotation, task, item_id, label, annotator, at FROM votes WHERE {where}", args)]
        return out

    def write(self, put: list[Vote], remove: list[Vote]) -> None:
        """Store ``put`` (replacing earlier versions of the same annotations) and delete ``remove``, in one
        transaction."""
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("DELETE FROM votes WHERE project = ? AND annotation = ?",
                                [(v.project, v.annotation) for v in remove])
                con.executemany("INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                [(v.project, v.annotation, v.task, v.item_id, v.label, v.annotator, v.at, now)
                                 for v in put])
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def count(self) -> int:
        """Number of annotations on record."""
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM votes").fetchone()[0])


# The model ------------------------------------------------------------------------------------------
@dataclass
class _Model:
    learner: Any
    version: str
    round: int
    n_train: int
    trained_at: str


def _version(round: int, positions: np.ndarray, classes: np.ndarray) -> str:
    """The name of a model trained on these labels after ``round``: it changes with any label."""
    order = np.argsort(positions, kind="stable")
    digest = hashlib.sha1(np.stack([positions[order], classes[order]]).astype(np.int64).tobytes()).hexdigest()[:8]
    return f"activebatch-round{round}-{len(positions)}labels-{digest}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# Pushing batches into Label Studio ------------------------------------------------------------------
class LabelStudioClient:
    """The few calls of Label Studio's REST API the backend makes (the standard library's urllib).

    ``token`` is a legacy API token (``Authorization: Token ...``) or a personal access token,
    a JWT refresh token exchanged at ``/api/token/refresh`` for an access token (``Bearer``).
    """

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - the user's server
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise WorkspaceError(f"Label Studio at {self.url} answered {exc.code} to {path}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise WorkspaceError(f"cannot reach Label Studio at {self.url} ({path}): {exc}") from None

    def _auth(self) -> dict[str, str]:
        if _JWT.match(self.token):
            access = self._call("/api/token/refresh", {"refresh": self.token}, {})
            if not isinstance(access, dict) or not isinstance(access.get("access"), str):
                raise WorkspaceError(f"Label Studio at {self.url} gave no access token for the personal access token")
            return {"Authorization": f"Bearer {access['access']}"}
        return {"Authorization": f"Token {self.token}"}

    def import_tasks(self, project: int, tasks: list[dict]) -> Any:
        """Add ``tasks`` to the project (``POST /api/projects/{id}/import``)."""
        return self._call(f"/api/projects/{int(project)}/import", tasks, self._auth())


# The service ----------------------------------------------------------------------------------------
class MLBackendService:
    """What the ML backend does, independent of HTTP (one instance per server).

    Parameters
    ----------
    folder : str or Path
        The workspace.
    strategy : str, optional
        Strategy choosing the next batches (default: the last round's; ``badge`` when there is
        none or it was drawn at random).
    batch_size : int, optional
        Size of the next batches (default: the last round's, else 10).
    options : dict, optional
        Options of ``strategy`` (default: the last round's, when its strategy is used).
    conflicts : {"refuse", "majority", "latest"}, default "refuse"
        How disagreeing annotations of one item are settled (:mod:`.votes`).
    score : {"confidence", "margin"}, default "confidence"
        The prediction ``score`` (module docstring, *Scores*).
    from_name : str, optional
        The ``Choices`` tag to fill in and read (default: the only one, else ``label``).
    push : bool, default True
        Import each new batch into the connected Label Studio project.
    label_studio_url, api_key : str, optional
        Where and as whom to push (default: the ``hostname`` and ``access_token`` that Label
        Studio sends with ``/setup``).
    image_url : str
        URL template of image items in pushed tasks (as ``activebatch export --image-url``).
    embed_images : bool, default False
        Put the images into pushed tasks as ``data:`` URIs instead.
    device : str, optional
        Override the workspace's training device.
    """

    def __init__(self, folder: str | Path, *, strategy: str | None = None, batch_size: int | None = None,
                 options: dict[str, Any] | None = None, conflicts: str = "refuse", score: str = "confidence",
                 from_name: str | None = None, push: bool = True, label_studio_url: str | None = None,
                 api_key: str | None = None, image_url: str = "/data/local-files/?d={relpath}",
                 embed_images: bool = False, device: str | None = None) -> None:
        self.workspace = Workspace(folder)
        self.workspace.store.ensure_backup()   # the session's backup now, not on the first label
        self.conflicts = check_policy(conflicts)
        self.score = check_choice(score, "score", SCORES)
        self.strategy = strategy
        self.batch_size = None if batch_size is None else check_scalar(batch_size, "batch_size", int, min_val=1)
        self.options = dict(options or {})
        # An unknown strategy or option fails now (naming the known ones), not at the first retrain.
        _, name, opts = self._next_query()
        strategies.get(name, **opts)
        self.from_name = from_name
        self.push = bool(push)
        self.label_studio_url = label_studio_url
        self.api_key = api_key
        self.image_url = image_url
        self.embed_images = bool(embed_images)
        self.device = device
        self.votes = VoteBook(self.workspace.folder)
        self.classes = self.workspace.classes
        self._X: np.ndarray | None = None
        self._model: _Model | None = None
        self._targets: dict[str, ChoiceTarget] = {}
        self._vote_lock = threading.Lock()    # one event settles at a time
        self._train_lock = threading.Lock()   # one model trains at a time
        self._job_lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._auto_rounds: set[int] = set()   # rounds whose completion already started a query
        self.connection: dict[str, Any] = {"project": None, "hostname": None, "token": None}
        self.training: dict[str, Any] = {"running": False, "reason": None, "message": "", "error": None,
                                         "result": None}
        self.last_push: dict[str, Any] | None = None

    # Helpers ---------------------------------------------------------------------------------------
    @property
    def features(self) -> np.ndarray:
        """The items' features (read once: items never change)."""
        if self._X is None:
            self._X = self.workspace.store.features()
        return self._X

    def target(self, label_config: Any) -> ChoiceTarget:
        """The ``Choices`` tag of a labelling interface (the exported one when none is given)."""
        if label_config is None or (isinstance(label_config, str) and not label_config.strip()):
            if self.from_name not in (None, FROM_NAME):
                return ChoiceTarget(self.from_name, ChoiceTarget.default(self.workspace.kind, self.classes).to_name,
                                    {c: c for c in self.classes}, {c: c for c in self.classes})
            return ChoiceTarget.default(self.workspace.kind, self.classes)
        if not isinstance(label_config, str):
            raise _bad(f"label_config is {_kind(label_config)}; expected the labelling interface as XML text")
        if label_config not in self._targets:
            try:
                target = parse_label_config(label_config, self.classes, self.from_name)
            except WorkspaceError as exc:
                raise _Refused(400, str(exc)) from None
            if len(self._targets) > 16:
                self._targets.clear()
            self._targets[label_config] = target
        return self._targets[label_config]

    def _train_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and class indices of the training labels (one light query: /health and /setup,
        which Label Studio gives 1 s and 3 s, read them)."""
        with self.workspace.store.connect() as con:
            rows = con.execute("SELECT position, class_index FROM labels WHERE split = 'train' ORDER BY position")
            pairs = np.array(rows.fetchall(), dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()

    def _next_query(self) -> tuple[int, str, dict[str, Any]]:
        """Batch size, strategy and options of the next query."""
        from ..strategies.cluster_margin import current_name

        rounds = self.workspace.store.rounds()
        last = rounds.iloc[-1] if len(rounds) else None
        n = self.batch_size or (int(last["n"]) if last is not None else 10)
        if self.strategy is not None:
            return n, self.strategy, dict(self.options)
        if last is None or last["strategy"] == "random":
            return n, "badge", dict(self.options)
        name = current_name(str(last["strategy"]), last["options"])
        options = dict(last["options"]) if name == last["strategy"] and isinstance(last["options"], dict) else {}
        return n, name, {**options, **self.options}

    def model_version(self) -> str:
        """The version of the model that answers ``/predict`` now (the one it would train when none is
        in memory)."""
        model = self._model
        if model is not None:
            return model.version
        positions, classes = self._train_labels()
        if len(np.unique(classes)) < 2:
            return UNTRAINED
        return _version(self.workspace.store.last_round(), positions, classes)

    def _fit(self) -> _Model | None:
        """Train the workspace model on the current training labels (None with fewer than two classes)."""
        from .model import build_learner

        positions, classes = self._train_labels()
        if len(np.unique(classes)) < 2:
            return None
        store = self.workspace.store
        rnd = store.last_round()
        X = self.features
        learner = build_learner(self.workspace.config, kind=self.workspace.kind, n_features=X.shape[1],
                                n_classes=len(self.classes), meta=store.meta(), device=self.device)
        # Seeded as Workspace.query seeds the model of round ``rnd``: on the labels that query saw this is
        # its model again (strategies without training callbacks), so the version name stays true.
        seed = int(np.random.SeedSequence([self.workspace.config.seed, rnd]).generate_state(1)[0] % (2**31 - 1))
        learner.fit(X[positions], classes, seed=seed)
        return _Model(learner, _version(rnd, positions, classes), rnd, len(positions), _now())

    @property
    def model(self) -> _Model | None:
        """The model in memory (``learner``, ``version``, ``round``, ``n_train``, ``trained_at``), or None."""
        return self._model

    def current_model(self) -> _Model | None:
        """The model answering ``/predict``: the last one trained, else one trained now on the labels (None
        while fewer than two classes have training labels)."""
        if self._model is None:
            with self._train_lock:
                if self._model is None:
                    self._model = self._fit()
        return self._model

    # Endpoints -------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Status and model information (``GET /health``)."""
        training = dict(self.training)   # first: when it says finished, the reads below see the new round
        store = self.workspace.store
        rnd = store.last_round()
        batch = {"round": rnd, "total": 0, "labelled": 0}
        if rnd:
            sel = store.selections(rnd)
            batch.update(total=int(len(sel)), labelled=int(sel["label"].notna().sum()))
        model = self._model
        n, strategy, _ = self._next_query()
        return {
            "status": "UP", "model_class": "activebatch", "workspace": self.workspace.folder.name,
            "kind": self.workspace.kind, "classes": self.classes, "model_version": self.model_version(),
            "model": None if model is None else {"version": model.version, "round": model.round,
                                                 "n_train": model.n_train, "trained_at": model.trained_at},
            "batch": batch, "next_query": {"strategy": strategy, "n": n}, "conflicts": self.conflicts,
            "score": self.score, "votes": self.votes.count(), "training": training,
            "label_studio": {"project": self.connection["project"], "url": self._push_url(),
                             "push": self.push, "last_push": self.last_push},
            # when to stop labelling: the workspace's stopping rules (as `activebatch status` shows them)
            "stopping": stopping_status(self.workspace.store),
        }

    def setup(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check the project's labelling interface, remember the project; answer the model version."""
        project = self._project_id(body.get("project"), "project")
        schema = body.get("schema")
        if schema is not None:
            self.target(schema)
        for key in ("hostname", "access_token"):
            v = body.get(key)
            if v is not None and not isinstance(v, str):
                raise _bad(f"setup: {key} is {_kind(v)}; expected text")
        extra = body.get("extra_params")
        if extra is not None and not isinstance(extra, dict):
            raise _bad(f"setup: extra_params is {_kind(extra)}; expected an object or null")
        if project is not None:
            self.connection.update(project=project, hostname=body.get("hostname") or self.connection["hostname"],
                                   token=body.get("access_token") or self.connection["token"])
        return {"model_version": self.model_version()}

    @staticmethod
    def _project_id(value: Any, what: str) -> int | None:
        """A project id from ``"<id>.<timestamp>"`` (what Label Studio sends), an integer, or an object
        with ``id`` (webhook payloads)."""
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get("id")
            what += ".id"
        if _int_id(value) and value >= 0:
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\d{1,18}(\.\d+)?", value.strip()):
            return int(value.strip().split(".")[0])
        raise _bad(f"{what} is {_kind(value)}; expected the Label Studio project: '<id>.<timestamp>', an integer "
                   "id, or an object with 'id'")

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        """One prediction per task: the model's class and the uncertainty score (``POST /predict``)."""
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise _bad(f"predict: 'tasks' is {_kind(tasks)}; expected a list of tasks: {_EXPECTED['predict']}")
        ids = []
        for k, task in enumerate(tasks):
            name = f"predict: task at index {k}"
            if not isinstance(task, dict):
                raise _bad(f"{name} is {_kind(task)}; expected an object {{'id': ..., 'data': {{...}}}}")
            if _int_id(task.get("id")):
                name = f"predict: task {task['id']} (index {k})"
            data = task.get("data")
            if not isinstance(data, dict):
                raise _bad(f"{name} has 'data' {_kind(data)}; expected an object holding {ID_KEY!r}")
            ids.append(_item_id(data.get(ID_KEY), name))
        target = self.target(body.get("label_config"))
        index = self.workspace.store.positions_of(ids)
        unknown = [i for i in ids if i not in index]
        if unknown:
            raise _Refused(404, f"predict: {len(unknown)} task(s) name items that are not in this workspace: "
                                f"{', '.join(map(repr, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}; "
                                "import tasks written by `activebatch export` from this workspace")
        model = self.current_model() if ids else self._model
        if model is None:
            return {"results": [], "model_version": self.model_version()}
        positions = np.array([index[i] for i in ids], dtype=np.int64)
        P, _ = model.learner.outputs(self.features[positions], embeddings=False)
        P = P.detach().cpu().numpy().astype(np.float64)
        top = np.sort(P, axis=1)[:, ::-1]
        scores = top[:, 0] if self.score == "confidence" else top[:, 0] - top[:, 1]
        predicted = P.argmax(1)
        results = [{"model_version": model.version, "score": round(float(s), 6),
                    "result": [{"from_name": target.from_name, "to_name": target.to_name, "type": "choices",
                                "value": {"choices": [target.to_value[self.classes[int(c)]]]}}]}
                   for c, s in zip(predicted, scores)]
        return {"results": results, "model_version": model.version}

    def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """Record, change or withdraw votes; start training on request (``POST /webhook``)."""
        action = body.get("action")
        if not isinstance(action, str) or not action.strip():
            raise _bad(f"webhook: 'action' is {_kind(action)}; expected the event name: {_EXPECTED['webhook']}")
        project = self._project_id(body.get("project"), "webhook: project")
        if project is not None and self.connection["project"] is None:
            self.connection["project"] = project
        if action == _TRAIN_ACTION:
            return {"status": "ok", "action": action, "training": self.start_training("START_TRAINING received")}
        if action in _VOTE_ACTIONS:
            # The project's own interface says which Choices tag holds the class (Label Studio sends it).
            given = body.get("project")
            target = self.target(given.get("label_config") if isinstance(given, dict) else None)
            votes = self._votes_of(body, action, project, target)
            return {"status": "ok", "action": action, **self._settle(votes, [])}
        if action in _DELETE_ACTIONS:
            gone = self._deleted_of(body, action, project)
            return {"status": "ok", "action": action, **self._settle([], gone)}
        return {"status": "ignored", "action": action}

    def train(self, body: dict[str, Any]) -> dict[str, Any]:
        """The older *Start Training* request (``POST /train``)."""
        project = self._project_id(body.get("project"), "train: project")
        if project is not None and self.connection["project"] is None:
            self.connection["project"] = project
        return {"status": "ok", "training": self.start_training("training requested (/train)")}

    # Votes -------------------------------------------------------------------------------------------
    def _votes_of(self, body: dict, action: str, project: int | None, target: ChoiceTarget) -> list[Vote]:
        annotations = body.get("annotation")
        tasks = body.get("task")
        if action == "ANNOTATIONS_CREATED":   # the bulk form: lists of annotations and of their tasks
            if not isinstance(annotations, list) or not isinstance(tasks, list):
                raise _bad(f"webhook {action}: expected 'annotation' and 'task' to be lists, got {_kind(annotations)} "
                           f"and {_kind(tasks)}")
        else:
            if not isinstance(annotations, dict):
                raise _bad(f"webhook {action}: 'annotation' is {_kind(annotations)}; expected an object: "
                           f"{_EXPECTED['webhook']}")
            if not isinstance(tasks, dict):
                raise _bad(f"webhook {action}: 'task' is {_kind(tasks)}; expected the annotated task with its "
                           f"'data' (Label Studio sends it with every annotation event): {_EXPECTED['webhook']}")
            annotations, tasks = [annotations], [tasks]
        by_task: dict[int, str] = {}
        for k, task in enumerate(tasks):
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise _bad(f"webhook {action}: task at index {k} is {_kind(task)}; expected an object with 'id' and "
                           f"'data' holding {ID_KEY!r}")
            item = _item_id(task["data"].get(ID_KEY), f"webhook {action}: task {task.get('id', k)}")
            if not _int_id(task.get("id")):
                raise _bad(f"webhook {action}: task at index {k} has 'id' {_kind(task.get('id'))}; expected its "
                           "integer id")
            by_task[task["id"]] = item
        votes = []
        for k, ann in enumerate(annotations):
            if not isinstance(ann, dict):
                raise _bad(f"webhook {action}: annotation at index {k} is {_kind(ann)}; expected an object")
            aid = ann.get("id")
            if not _int_id(aid):
                raise _bad(f"webhook {action}: annotation at index {k} has 'id' {_kind(aid)}; expected its integer id")
            name = f"webhook {action}: annotation {aid}"
            task_id = ann.get("task")
            if isinstance(task_id, dict):   # some serialisers nest the task
                task_id = task_id.get("id")
            if task_id is None and len(by_task) == 1:
                task_id = next(iter(by_task))
            if task_id not in by_task:
                raise _bad(f"{name} belongs to task {_kind(task_id)}, which the event does not carry; expected "
                           f"'task' {{'id': {task_id!r}, 'data': {{{ID_KEY!r}: ...}}}}")
            cancelled = ann.get("was_cancelled", False)
            if not isinstance(cancelled, bool):
                raise _bad(f"{name} has 'was_cancelled' {_kind(cancelled)}; expected true or false")
            label = None if cancelled else self._choice(ann.get("result"), name, target)
            at = next((ann[k] for k in ("updated_at", "created_at") if isinstance(ann.get(k), str) and ann[k]), None)
            pid = project if project is not None else (ann["project"] if _int_id(ann.get("project")) else 0)
            votes.append(Vote(pid, aid, task_id, by_task[task_id], label,
                              annotator_of(ann.get("completed_by")) or "labelstudio-user-unknown", at))
        return votes

    def _choice(self, result: Any, name: str, target: ChoiceTarget) -> str | None:
        if not isinstance(result, list):
            raise _bad(f"{name} has 'result' {_kind(result)}; expected a list of results [{{'type': 'choices', "
                       f"'from_name': {target.from_name!r}, 'value': {{'choices': ['<class>']}}}}]")
        picks = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"
                 and r.get("from_name") == target.from_name]
        bad = [r for r in result if not isinstance(r, dict)]
        if bad:
            raise _bad(f"{name}: a result is {_kind(bad[0])}; expected objects")
        if not picks:
            return None
        if len(picks) > 1:
            raise _bad(f"{name} has {len(picks)} choices results named {target.from_name!r}; expected one")
        value = picks[0].get("value")
        chosen = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(chosen, list) or len(chosen) != 1 or not isinstance(chosen[0], str):
            raise _bad(f"{name} has a choices result with 'value' {_kind(value)}; expected {{'choices': ['<class>']}} "
                       "with exactly one class")
        if chosen[0] not in target.to_class:
            raise _bad(f"{name} chose {chosen[0]!r}, which is not a class of this workspace "
                       f"({', '.join(self.classes)})")
        return target.to_class[chosen[0]]

    def _deleted_of(self, body: dict, action: str, project: int | None) -> list[tuple[int | None, int]]:
        key = "annotations" if "annotations" in body else "annotation"
        given = body.get(key)
        if isinstance(given, dict):
            given = [given]
        if not isinstance(given, list):
            raise _bad(f"webhook {action}: '{key}' is {_kind(given)}; expected a list of the deleted annotations "
                       "[{'id': <annotation id>}, ...]")
        out = []
        for k, a in enumerate(given):
            aid = a.get("id") if isinstance(a, dict) else a
            if not _int_id(aid):
                raise _bad(f"webhook {action}: deleted annotation at index {k} is {_kind(a)}; expected "
                           "{'id': <annotation id>}")
            out.append((project, aid))
        return out

    def _settle(self, put: list[Vote], deleted: list[tuple[int | None, int]]) -> dict[str, Any]:
        """Apply vote changes: check everything, then store the votes and the items' labels."""
        store = self.workspace.store
        with self._vote_lock:
            remove: list[Vote] = []
            for project in {p for p, _ in deleted}:
                remove += self.votes.find(project, [aid for p, aid in deleted if p == project])
            items = sorted({v.item_id for v in put} | {v.item_id for v in remove})
            if not items:
                return {"recorded": 0, "relabeled": 0, "withdrawn": 0, "unchanged": 0, "unsettled": [],
                        "training": None}
            index = store.positions_of(items)
            unknown = [i for i in items if i not in index]
            if unknown:
                raise _Refused(404, f"item(s) {', '.join(map(repr, unknown[:5]))} are not in this workspace; nothing "
                                    "was recorded (the tasks must come from `activebatch export` of this workspace)")
            allowed = store.selected_positions()
            outside = [i for i in items if index[i] not in allowed and any(v.item_id == i for v in put)]
            if outside:
                raise _Refused(404, f"item(s) {', '.join(map(repr, outside[:5]))} are in none of the workspace's "
                                    "batches; nothing was recorded")
            # The votes each item will have: stored ones, less the deleted, with the new versions.
            current = {(v.project, v.annotation): v for v in self.votes.votes(items)}
            for v in remove:
                current.pop((v.project, v.annotation), None)
            for v in put:
                current[(v.project, v.annotation)] = v
            outcome: dict[str, tuple[str | None, str | None, str]] = {}
            for item in items:
                outcome[item] = self._resolve(item, [v for v in current.values() if v.item_id == item])
            labels = store.labels().set_index("item_id")
            conflicts = []
            for item, (label, _, _) in outcome.items():
                if item in labels.index:
                    row = labels.loc[item]
                    ours = str(row["source"]).startswith(SOURCE)
                    if not ours and label is not None and (row["label"] != label or row["split"] != "train"):
                        conflicts.append(f"item {item!r} already has the label {row['label']!r} ({row['split']} split, "
                                         f"by {row['annotator']} through {row['source']}); the annotations give "
                                         f"{label!r}")
            if conflicts:
                raise _Refused(409, "; ".join(conflicts[:5]) + "; nothing was recorded (change the label in the "
                                    "workspace, or the annotation in Label Studio)")
            self.votes.write(put, remove)
            summary = {"recorded": 0, "relabeled": 0, "withdrawn": 0, "unchanged": 0, "unsettled": [],
                       "training": None}
            names = {c: k for k, c in enumerate(self.classes)}
            for item, (label, annotator, problem) in outcome.items():
                pos = index[item]
                had = labels.loc[item] if item in labels.index else None
                ours = had is not None and str(had["source"]).startswith(SOURCE)
                if problem:
                    summary["unsettled"].append(problem)
                if label is None:
                    if ours:
                        store.remove_label(pos, annotator=annotator or "label-studio", source=SOURCE, only_own=False)
                        summary["withdrawn"] += 1
                    continue
                res = store.apply_labels([pos], [names[label]], split="train", annotators=annotator or "label-studio",
                                         source=SOURCE, overwrite=ours)
                summary["recorded"] += res.recorded
                summary["relabeled"] += res.relabeled
                summary["unchanged"] += res.unchanged
            summary["training"] = self._maybe_next_batch()
        return summary

    def _resolve(self, item: str, votes: list[Vote]) -> tuple[str | None, str | None, str]:
        """The label of an item from its votes: (class, annotator, problem); class None for none."""
        rows = LabelRows(format="label-studio")
        for v in votes:
            if v.label is not None:
                rows.add(item, v.label, v.annotator, at=v.at, origin=f"annotation {v.annotation}")
        if len(rows) == 0:
            return None, None, ""
        try:
            won = rows.resolve(self.conflicts, where="Label Studio annotations")
        except DisagreementError as exc:
            return None, None, str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        return won.labels[0], won.annotators[0], ""

    # Training ------------------------------------------------------------------------------------------
    def _maybe_next_batch(self) -> str | None:
        """Start the next query when the current round's batch has just been completed."""
        store = self.workspace.store
        rnd = store.last_round()
        if not rnd or rnd in self._auto_rounds:
            return None
        sel = store.selections(rnd)
        if len(sel) == 0 or sel["label"].isna().any():
            return None
        self._auto_rounds.add(rnd)
        return self.start_training(f"every item of the batch of round {rnd} is labelled")

    def start_training(self, reason: str) -> str:
        """Retrain and choose the next batch in a background thread; says whether it started."""
        with self._job_lock:
            if self.training["running"]:
                return "already running"
            self.training.update(running=True, reason=reason, message="starting", error=None, result=None)
            self._job = threading.Thread(target=self._run_job, args=(reason,), name="activebatch-ml-backend-train",
                                         daemon=True)
            self._job.start()
        return "started"

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the background training (if any) to finish; returns the training status."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return dict(self.training)

    def _run_job(self, reason: str) -> None:
        say = self._say
        try:
            with self._train_lock:
                n, strategy, options = self._next_query()
                try:
                    res = self.workspace.query(n, strategy, options=options, device=self.device, progress=say)
                except WorkspaceError as exc:
                    if isinstance(exc, StoreDamagedError):
                        raise
                    # Nothing left to choose (or the strategy refused): still retrain for the predictions.
                    res, note = None, str(exc)
                else:
                    note = str(res)
                if res is not None and getattr(res, "learner", None) is not None:
                    positions, classes = self._train_labels()
                    self._model = _Model(res.learner, _version(res.round, positions, classes), res.round,
                                         res.n_train_labels, _now())
                else:
                    self._model = self._fit() or self._model
                    if res is None:
                        note = f"no new batch: {note}"
            pushed = self._push(res.round) if res is not None else None
            self.training.update(running=False, message=note + (f"; {pushed}" if pushed else ""),
                                 result=None if res is None else {"round": res.round, "items": res.item_ids})
        except Exception as exc:   # reported by /health; the workspace is unchanged by a failed query
            self.training.update(running=False, message="", error=f"{type(exc).__name__}: {exc}")

    def _say(self, message: str) -> None:
        self.training["message"] = message

    def _push_url(self) -> str | None:
        return self.label_studio_url or self.connection["hostname"]

    def _push(self, round: int) -> str | None:
        """Import the batch of ``round`` into the connected project, as ``activebatch export`` writes it."""
        project, url, token = self.connection["project"], self._push_url(), self.api_key or self.connection["token"]
        if not self.push:
            return None
        if project is None or not url or not token:
            self.last_push = {"round": round, "error": "no Label Studio project is connected (or no token): export "
                                                       "the batch with `activebatch export` and import it"}
            return "the new batch was not sent to Label Studio (no connected project); export it"
        with tempfile.TemporaryDirectory() as tmp:
            path = self.workspace.export(Path(tmp) / f"round-{round}.json", round=round, image_url=self.image_url,
                                         embed_images=self.embed_images)
            tasks = json.loads(path.read_text(encoding="utf-8"))
        for t in tasks:   # Label Studio asks /predict for these, with the score in its orientation
            t.pop("predictions", None)
        try:
            LabelStudioClient(url, token).import_tasks(project, tasks)
        except WorkspaceError as exc:
            self.last_push = {"round": round, "project": project, "error": str(exc)}
            return f"sending the batch to Label Studio failed: {exc}"
        self.last_push = {"round": round, "project": project, "tasks": len(tasks), "at": _now()}
        return f"{len(tasks)} task(s) of round {round} added to Label Studio project {project}"


# HTTP --------------------------------------------------------------------------------------------------
def create_app(folder: str | Path, *, allowed_hosts: list[str] | None = None, max_body: int = MAX_BODY,
               **options: Any) -> Any:
    """The ML-backend application for the workspace in ``folder``.

    Parameters
    ----------
    folder : str or Path
    allowed_hosts : list of str, optional
        Host names the server answers to (default: the loopback names; ``["*"]`` for any).
    max_body : int, default 100 MiB
        Largest request body accepted (413 beyond).
    **options
        Passed to :class:`MLBackendService`.

    Returns
    -------
    starlette.applications.Starlette
    """
    # Starlette comes with the workspace extra; only the HTTP layer needs it.
    require("starlette", "workspace", "the Label Studio ML backend (activebatch ml-backend)")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from .httpserver import _LOOPBACK
    from .webinput import RequestProblem, json_body

    service = MLBackendService(folder, **options)

    async def call(fn, *args: Any, status: int = 200) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(fn, *args), status_code=status)
        except _Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except StoreDamagedError as exc:   # the server's file, not the request, is at fault
            return JSONResponse({"error": str(exc)}, status_code=503)
        except NotInBatchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except LabelConflictError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except ValueError as exc:   # WorkspaceError and the library's input errors
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def post(request: Request, fn, expected: str, status: int = 200) -> Response:
        try:
            body = await json_body(request, max_body, expected)
        except RequestProblem as problem:
            return problem.response()
        return await call(fn, body, status=status)

    async def health(request: Request) -> Response:
        return await call(service.health)

    async def setup(request: Request) -> Response:
        return await post(request, service.setup, _EXPECTED["setup"])

    async def predict(request: Request) -> Response:
        return await post(request, service.predict, _EXPECTED["predict"])

    async def webhook(request: Request) -> Response:
        return await post(request, service.webhook, _EXPECTED["webhook"])

    async def train(request: Request) -> Response:
        return await post(request, service.train, _EXPECTED["train"], status=201)

    routes = [
        Route("/", health),
        Route("/health", health),
        Route("/setup", setup, methods=["POST"]),
        Route("/predict", predict, methods=["POST"]),
        Route("/webhook", webhook, methods=["POST"]),
        Route("/train", train, methods=["POST"]),
    ]
    hosts = allowed_hosts or list(_LOOPBACK)
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
    app.state.service = service
    return app


class MLBackendServer(UvicornServer):
    """The ML backend on a uvicorn server, in the foreground or in a background thread.

    Parameters
    ----------
    folder : str or Path
        The workspace.
    host : str, default "127.0.0.1"
        Address to listen on (anything but a loopback address lets other machines label).
    port : int, default 9090
        0 picks a free port (see :attr:`url`).
    max_body : int, default 100 MiB
    **options
        Passed to :class:`MLBackendService`.
    """

    def __init__(self, folder: str | Path, *, host: str = "127.0.0.1", port: int = 9090, max_body: int = MAX_BODY,
                 **options: Any) -> None:
        require("uvicorn", "workspace", "the Label Studio ML backend (activebatch ml-backend)")
        self.thread_name = "activebatch-ml-backend"
        self._listen(host, port, lambda hosts: create_app(folder, allowed_hosts=hosts, max_body=max_body, **options))

    @property
    def service(self) -> MLBackendService:
        """The :class:`MLBackendService` behind the server."""
        return self.app.state.service


def serve_ml_backend(folder: str | Path, *, host: str = "127.0.0.1", port: int = 9090, max_body: int = MAX_BODY,
                     **options: Any) -> None:
    """Run the ML backend until interrupted (Ctrl-C); see :class:`MLBackendServer`."""
    server = MLBackendServer(folder, host=host, port=port, max_body=max_body, **options)
    if not server.loopback:
        print(f"activebatch ml-backend: warning: listening on {host}: the backend (which has no login) can be "
              "reached from other machines", file=sys.stderr)
    print(f"activebatch ml-backend: Label Studio ML backend for {folder} at {server.url} (connect it in the "
          "project's Settings -> Model; Ctrl-C to stop)", file=sys.stderr, flush=True)
    server.run()
