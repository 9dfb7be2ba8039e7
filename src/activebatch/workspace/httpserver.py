"""A Starlette app on a uvicorn server, in the foreground or in a background thread: the base of
the labelling page's server and of the Label Studio ML backend's (importing this module needs
neither starlette nor uvicorn)."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import WorkspaceError

__all__ = ["UvicornServer"]

#: Addresses (and Host headers) of this machine only.
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(2048)   # connections made before the server loop starts wait in the backlog
    except OSError as exc:
        sock.close()
        raise WorkspaceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class UvicornServer:
    """A Starlette app on a uvicorn server bound to ``host:port``, run in the foreground
    (:meth:`run`) or in a background thread (:meth:`start`, :meth:`stop`); the labelling page and
    the Label Studio ML backend are two of them."""

    #: Name of the background thread and of the server in messages.
    thread_name = "activebatch-server"

    def _listen(self, host: str, port: int, make_app: Callable[[list[str]], Any], path: str = "") -> None:
        """Bind the socket and build the app with ``make_app(allowed_hosts)``: on a loopback
        address only loopback Host headers are accepted."""
        import uvicorn

        self.loopback = host in _LOOPBACK
        self.app = make_app(list(_LOOPBACK) if self.loopback else ["*"])
        self.sock = _bind(host, port)
        bound = self.sock.getsockname()
        shown = "127.0.0.1" if self.loopback and bound[0] in ("127.0.0.1", "::1") else bound[0]
        self.url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{bound[1]}{path}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off"))
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C) or :meth:`stop`."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self, timeout: float = 30.0) -> UvicornServer:
        """Serve in a background thread; returns once connections are accepted."""
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.thread_name} server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop a server started with :meth:`start`."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
