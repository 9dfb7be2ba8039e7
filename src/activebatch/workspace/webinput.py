"""Checking what clients send to the labelling page, so a malformed request gets a 4xx answer.

- Bodies are read chunk by chunk and refused with 413 once they pass the limit (a
  ``Content-Length`` above it is refused before reading), so memory never grows past it.
- JSON must be an object; nesting too deep for Python's parser gives 400, not a
  ``RecursionError``.
- Numbers that end up in SQLite are checked against its 64-bit range.
- Each browser gets a random id in a cookie (:data:`COOKIE`): the server holds items for a
  browser, not for a name, so two people who type the same name are still shown different items.
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import WorkspaceError

__all__ = ["MAX_BODY", "SQLITE_MAX", "COOKIE", "RequestProblem", "json_body", "whole_number", "annotator",
           "browser_id", "give_browser_id"]

#: Default largest request body, in bytes (the page's requests are a few hundred bytes).
MAX_BODY = 1 << 20
#: Largest integer SQLite stores.
SQLITE_MAX = 2**63 - 1
#: Cookie holding the browser's id.
COOKIE = "activebatch_browser"
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class RequestProblem(Exception):
    """A request refused with ``status`` and a message (as ``{"error": message}``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> JSONResponse:
        """The JSON answer (closing the connection after a refused body, rather than waiting for
        the rest of it)."""
        headers = {"Connection": "close"} if self.status == 413 else None
        return JSONResponse({"error": str(self)}, status_code=self.status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read incrementally; :class:`RequestProblem` (413) past ``limit`` bytes."""
    too_large = RequestProblem(413, f"the request body is larger than {limit} bytes, the limit of this server "
                                    "(`activebatch serve --max-body` sets it)")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestProblem(400, f"Content-Length must be a number of bytes, got {declared[:40]!r}")
        if int(declared) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int, expected: str) -> dict[str, Any]:
    """The request's JSON object; ``expected`` describes it in error messages.

    Raises
    ------
    RequestProblem
        415 for another content type, 413 for a body over ``limit``, 400 for anything but a
        JSON object (invalid text, nesting too deep, another JSON value).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise RequestProblem(415, f"send JSON (Content-Type: application/json): {expected}")
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw)
    except RecursionError:   # the parser recurses once per level of nesting
        raise RequestProblem(400, f"the request body is nested too deeply; expected {expected}") from None
    except ValueError as exc:   # invalid JSON, invalid UTF-8, a number too long to convert
        raise RequestProblem(400, f"the request body is not valid JSON ({str(exc)[:80]}); "
                                  f"expected {expected}") from None
    if not isinstance(body, dict):
        raise RequestProblem(400, f"the request body must be a JSON object: {expected}")
    return body


def whole_number(value: Any, what: str, low: int, high: int = SQLITE_MAX) -> int:
    """``value`` if it is an integer in ``[low, high]`` (JSON true/false and 3.0 are not)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise WorkspaceError(f"{what} must be an integer from {low} to {high}, got {str(value)[:40]!r}")
    return value


def annotator(value: Any) -> str:
    """The annotator's name: text of 1 to 100 characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise WorkspaceError("give an annotator name (1 to 100 characters)")
    return value.strip()


def browser_id(request: Request) -> str | None:
    """The id the browser was given (see :func:`give_browser_id`), or None."""
    value = request.cookies.get(COOKIE)
    return value if value and _BROWSER_ID.fullmatch(value) else None


def give_browser_id(request: Request, response: Response) -> Response:
    """Give the browser a random id cookie unless it has one (on the page itself)."""
    if browser_id(request) is None:
        response.set_cookie(COOKIE, secrets.token_urlsafe(18), max_age=400 * 24 * 3600, path="/", httponly=True,
                            samesite="strict")
    return response
