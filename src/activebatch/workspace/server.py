"""The labelling page: a small Starlette application served by uvicorn.

``activebatch serve DIR`` shows the workspace's current batch one item at a time (the image, the
table row, or the text), with a button and a keyboard shortcut per class, skip and undo, a progress bar,
and a button that trains the model on the labels so far and fetches the next batch. Every label
goes straight into the workspace store in its own transaction.

Several annotators can label the same batch at once: each item shown is claimed for a while
(``lease_seconds``) for the browser showing it, so other browsers are given different items,
and the store refuses to give an item two different labels (the second annotator is told,
nothing is overwritten). Claims belong to browsers (a random id in a cookie set with the page),
not to names, so two people who type the same name never share items; clients that keep no
cookies are told apart by their annotator name only. The page asks for a name on first use.

The server listens on 127.0.0.1 by default. It has no login: whoever can reach the port can
label. Requests must name a known host (no DNS rebinding) and POST requests must be JSON (so a
web page on another site cannot submit labels through the annotator's browser). A malformed
request gets a 4xx answer with a JSON error, never a 500 (:mod:`.webinput`): bodies over
``max_body`` bytes (1 MiB) are refused with 413 without being read whole.

JSON API
--------
``GET  /api/state``                      classes, current round, batch progress, training status, stopping rules
``GET  /api/next?annotator=A&skip=ID..`` claim and return the next unlabelled batch item
``GET  /api/item?id=ID``                 one item (to show again after an undo)
``GET  /api/image/POSITION``             an image item's file
``POST /api/label``  {id, label, annotator[, round]}   record a label
``POST /api/undo``   {id, annotator}                   remove the label this annotator gave
``POST /api/query``  {n, strategy}                     train and choose the next batch (background)
"""
from __future__ import annotations

import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from ..utils.extras import require
from .httpserver import _LOOPBACK, UvicornServer

require("starlette", "workspace", "the labelling page (activebatch serve)")

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .errors import LabelConflictError, NotInBatchError, StoreDamagedError, WorkspaceError
from .webinput import MAX_BODY, SQLITE_MAX, RequestProblem, browser_id, give_browser_id, json_body, whole_number
from .webinput import annotator as _annotator
from .workspace import Workspace

__all__ = ["create_app", "serve", "LabelServer", "LabelService"]

def _static_dir() -> Path:
    return Path(str(resources.files("activebatch.workspace").joinpath("static")))


class LabelService:
    """What the page's API does, independent of HTTP (one instance per server).

    Parameters
    ----------
    folder : str or Path
        The workspace.
    lease_seconds : float, default 120
        How long an item shown to one annotator is held back from the others.
    """

    def __init__(self, folder: str | Path, *, lease_seconds: float = 120.0) -> None:
        self.workspace = Workspace(folder)
        # The session's backup is made now rather than on the first page load (it copies the file).
        self.workspace.store.ensure_backup()
        self.lease_seconds = float(lease_seconds)
        self._training_lock = threading.Lock()
        self.training: dict[str, Any] = {"running": False, "message": "", "error": None, "result": None}

    # Reads ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Workspace name, kind, classes, the current batch's progress, the training status and a
        line on the stopping rules."""
        ws = self.workspace
        store = ws.store
        # the training status first: when it says finished, the store reads below already see the
        # round the query recorded (read last, a query finishing in between would pair the old
        # batch with the new status)
        training = dict(self.training)
        rnd = store.last_round()
        batch = {"round": rnd, "total": 0, "labelled": 0}
        last: dict[str, Any] = {"strategy": "badge", "n": 10}
        if rnd:
            sel = store.selections(rnd)
            batch.update(total=int(len(sel)), labelled=int(sel["label"].notna().sum()))
            r = store.rounds().iloc[-1]
            # a round recorded as cluster_margin before the rename: offer the method it ran
            from ..strategies.cluster_margin import current_name

            last = {"strategy": current_name(str(r["strategy"]), r["options"]) if r["strategy"] != "random"
                    else "badge", "n": int(r["n"])}
        from .. import strategies
        from .stopping import stopping_status

        return {"workspace": ws.folder.name, "kind": ws.kind, "classes": ws.classes, "batch": batch,
                "stopping": stopping_status(store)["summary"],
                "last_query": last, "strategies": strategies.names(), "n_items": len(ws),
                "n_labels": int(len(store.labels())), "training": training}

    def _item_json(self, position: int, round: int | None = None) -> dict[str, Any]:
        store = self.workspace.store
        item = store.item(position)
        sel = store.selections(round) if round else store.selections()
        row = sel[sel["position"] == position]
        info = row.iloc[-1].to_dict() if len(row) else {}
        shown, text = item["display"], None
        if self.workspace.kind == "text" and shown is not None:
            # the text apart (the page shows it as a scrolling block), the other columns as the row
            key = (self.workspace.store.meta().get("items_info") or {}).get("text_column")
            text = shown.get(key)
            shown = {k: v for k, v in shown.items() if k != key} or None
        return {
            "id": item["item_id"], "position": int(position), "kind": self.workspace.kind,
            "image": f"/api/image/{int(position)}" if item["source"] else None, "row": shown, "text": text,
            "round": _value(info.get("round"), int), "rank": _value(info.get("rank"), int),
            "predicted": _value(info.get("predicted"), str), "confidence": _value(info.get("confidence"), float),
            "label": _value(info.get("label"), str),
        }

    def next_item(self, annotator: str, skip_ids: list[str], prefer_id: str | None = None, *,
                  holder: str | None = None) -> dict[str, Any]:
        """Claim the next unlabelled item of the current batch (see :meth:`WorkspaceStore.claim_next`);
        ``prefer_id`` asks for that item if it is free. The claim is held by ``holder`` (the
        browser; default: the annotator's name)."""
        store = self.workspace.store
        rnd = store.last_round()
        if rnd == 0:
            return {"item": None, "round": 0, "remaining": 0, "claimed_by_others": 0, "skipped": 0}
        ids = list(skip_ids) + ([prefer_id] if prefer_id else [])
        index = store.positions_of(ids) if ids else {}
        skip = [index[i] for i in skip_ids if i in index]
        prefer = index.get(prefer_id) if prefer_id else None
        got = store.claim_next(rnd, holder or annotator, skip=skip, lease_seconds=self.lease_seconds, prefer=prefer)
        item = None if got["position"] is None else self._item_json(got["position"], rnd)
        return {"item": item, "round": rnd, "remaining": got["remaining"],
                "claimed_by_others": got["claimed_by_others"], "skipped": got["skipped"]}

    def item(self, item_id: str) -> dict[str, Any]:
        """One item, as the page shows it."""
        index = self.workspace.store.positions_of([item_id])
        if item_id not in index:
            raise NotInBatchError(f"no item with id {item_id!r}")
        return self._item_json(index[item_id])

    def image_path(self, position: int) -> Path:
        """The image file of the item at ``position``."""
        if not 0 <= position <= SQLITE_MAX:
            raise NotInBatchError(f"no item at position {position}")
        item = self.workspace.store.item(position)
        if not item["source"]:
            raise NotInBatchError(f"item at position {position} has no image")
        p = Path(item["source"])
        if not p.is_file():
            raise NotInBatchError(f"the image of item {item['item_id']!r} is missing ({p})")
        return p

    # Writes --------------------------------------------------------------------------------------
    def label(self, item_id: str, label: str, annotator: str, round: int | None) -> dict[str, Any]:
        """Record a training label given on the page."""
        res = self.workspace.label(item_id, label, annotator=annotator, round=round, source="web")
        return {"status": "recorded" if res.changed else "unchanged"}

    def undo(self, item_id: str, annotator: str) -> dict[str, Any]:
        """Remove the label ``annotator`` gave ``item_id``."""
        removed = self.workspace.undo(item_id, annotator=annotator, source="web")
        return {"removed": removed}

    def start_query(self, n: int, strategy: str) -> dict[str, Any]:
        """Train and choose the next batch in a background thread (one at a time)."""
        from .. import strategies

        strategies.strategy_class(strategy)  # unknown names fail here, with the list of known ones
        whole_number(n, "n (the batch size)", 1, len(self.workspace))
        if not self._training_lock.acquire(blocking=False):
            raise LabelConflictError("a model is already being trained; wait for it to finish")
        self.training.update(running=True, message=f"training on the labels so far, then choosing {n} items",
                             error=None, result=None)

        def work() -> None:
            try:
                res = self.workspace.query(n, strategy, progress=lambda m: self.training.update(message=m))
                self.training.update(running=False, message=str(res), result={"round": res.round})
            except Exception as exc:  # reported to the page; the workspace is unchanged
                self.training.update(running=False, message="", error=str(exc))
            finally:
                self._training_lock.release()

        threading.Thread(target=work, name="activebatch-query", daemon=True).start()
        return {"started": True}


def _value(v: Any, kind: type) -> Any:
    """``kind(v)``, or None for a missing value (None or NaN)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return kind(v)


# HTTP --------------------------------------------------------------------------------------------------
def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreDamagedError):
        code = 503   # the server's file, not the request, is at fault
    elif isinstance(exc, NotInBatchError):
        code = 404
    elif isinstance(exc, LabelConflictError):
        code = 409
    else:
        code = 400
    return JSONResponse({"error": str(exc)}, status_code=code)


_EXPECTED = {
    "label": '{"id": "<item id>", "label": "<class>", "annotator": "<name>", "round": <round, optional>}',
    "undo": '{"id": "<item id>", "annotator": "<name>"}',
    "query": '{"n": <batch size>, "strategy": "<strategy name>"}',
}


def create_app(folder: str | Path, *, lease_seconds: float = 120.0,
               allowed_hosts: list[str] | None = None, max_body: int = MAX_BODY) -> Starlette:
    """The labelling application for the workspace in ``folder``.

    Parameters
    ----------
    folder : str or Path
    lease_seconds : float, default 120
        How long an item shown to one annotator is held back from the others.
    allowed_hosts : list of str, optional
        Host names the server answers to (default: the loopback names; ``["*"]`` for any).
    max_body : int, default 1 MiB
        Largest request body accepted (413 beyond).
    """
    service = LabelService(folder, lease_seconds=lease_seconds)
    static = _static_dir()

    async def call(fn, *args: Any) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(fn, *args))
        except ValueError as exc:  # WorkspaceError and the library's input errors
            return _error(exc)

    async def index(request: Request) -> Response:
        page = FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})
        return give_browser_id(request, page)

    async def state(request: Request) -> Response:
        return await call(service.state)

    async def next_item(request: Request) -> Response:
        try:
            who = _annotator(request.query_params.get("annotator"))
        except WorkspaceError as exc:
            return _error(exc)
        skip = [s for s in request.query_params.getlist("skip") if s]
        browser = browser_id(request)
        holder = f"browser:{browser}" if browser else f"name:{who}"
        return await call(lambda: service.next_item(who, skip, request.query_params.get("prefer") or None,
                                                    holder=holder))

    async def item(request: Request) -> Response:
        return await call(service.item, request.query_params.get("id", ""))

    async def image(request: Request) -> Response:
        try:
            path = await run_in_threadpool(service.image_path, int(request.path_params["position"]))
        except StoreDamagedError as exc:
            return _error(exc)
        except WorkspaceError as exc:
            return _error(NotInBatchError(str(exc)))
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    async def post(request: Request, fn, expected: str) -> Response:
        try:
            body = await json_body(request, max_body, expected)
        except RequestProblem as problem:
            return problem.response()
        return await call(fn, body)

    def do_label(body: dict) -> dict:
        rnd = body.get("round")
        if rnd is not None:
            rnd = whole_number(rnd, "round", 1)
        if not isinstance(body.get("id"), str) or not isinstance(body.get("label"), str):
            raise WorkspaceError(f"give the item 'id' and its 'label' (a class name) as strings: {_EXPECTED['label']}")
        return service.label(body["id"], body["label"], _annotator(body.get("annotator")), rnd)

    def do_undo(body: dict) -> dict:
        if not isinstance(body.get("id"), str):
            raise WorkspaceError(f"give the item 'id' as a string: {_EXPECTED['undo']}")
        return service.undo(body["id"], _annotator(body.get("annotator")))

    def do_query(body: dict) -> dict:
        strategy = body.get("strategy", "badge")
        if not isinstance(strategy, str):
            raise WorkspaceError(f"give the strategy as its name: {_EXPECTED['query']}")
        return service.start_query(body.get("n"), strategy)

    async def label(request: Request) -> Response:
        return await post(request, do_label, _EXPECTED["label"])

    async def undo(request: Request) -> Response:
        return await post(request, do_undo, _EXPECTED["undo"])

    async def query(request: Request) -> Response:
        return await post(request, do_query, _EXPECTED["query"])

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/next", next_item),
        Route("/api/item", item),
        Route("/api/image/{position:int}", image),
        Route("/api/label", label, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/query", query, methods=["POST"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    hosts = allowed_hosts or list(_LOOPBACK)
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
    app.state.service = service
    return app


class LabelServer(UvicornServer):
    """The labelling page on a uvicorn server, to run in the foreground or in a background thread.

    Parameters
    ----------
    folder : str or Path
        The workspace.
    host : str, default "127.0.0.1"
        Address to listen on. Anything but a loopback address makes the page reachable from
        other machines (it has no login).
    port : int, default 8000
        0 picks a free port (see :attr:`url`).
    lease_seconds : float, default 120
        How long an item shown to one annotator is held back from the others.
    max_body : int, default 1 MiB
        Largest request body accepted (413 beyond).

    Examples
    --------
    >>> server = LabelServer("proj", port=0).start()   # doctest: +SKIP
    >>> server.url                                      # doctest: +SKIP
    'http://127.0.0.1:41234/'
    >>> server.stop()                                   # doctest: +SKIP
    """

    def __init__(self, folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
                 lease_seconds: float = 120.0, max_body: int = MAX_BODY) -> None:
        require("uvicorn", "workspace", "the labelling page (activebatch serve)")
        self.thread_name = "activebatch-serve"
        self._listen(host, port, lambda hosts: create_app(folder, lease_seconds=lease_seconds, allowed_hosts=hosts,
                                                          max_body=max_body), "/")

    @property
    def service(self) -> LabelService:
        """The :class:`LabelService` behind the page."""
        return self.app.state.service


def serve(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000, lease_seconds: float = 120.0,
          max_body: int = MAX_BODY) -> None:
    """Run the labelling page until interrupted (Ctrl-C); see :class:`LabelServer`."""
    server = LabelServer(folder, host=host, port=port, lease_seconds=lease_seconds, max_body=max_body)
    if not server.loopback:
        print(f"activebatch serve: warning: listening on {host}: the labelling page (which has no login) can be "
              "reached from other machines", file=sys.stderr)
    print(f"activebatch serve: labelling page for {folder} at {server.url} (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    server.run()
