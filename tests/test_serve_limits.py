"""The labelling page under malformed requests: size limits, deep JSON, huge numbers, and a fuzz run.

Every request goes to a server on 127.0.0.1 only. The fuzz run is seeded and bounded in count and
time; it asserts that no request gets a 500 and that the server still answers afterwards.
"""
import asyncio
import json
import random
import socket
import time

import httpx
import pytest
from starlette.requests import Request

from activebatch.workspace import ModelConfig, Workspace
from activebatch.workspace.server import LabelServer
from activebatch.workspace.webinput import MAX_BODY, RequestProblem, read_body
from workspace_fixtures import TAB_CLASSES, make_table, write_labels


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    items, truth = make_table(tmp, n=60)
    write_labels(tmp / "eval.csv", list(truth)[-10:], truth)
    ws = Workspace.create(tmp / "ws", items, TAB_CLASSES, eval_labels=tmp / "eval.csv",
                          model=ModelConfig(max_epochs=3))
    ws.query(8)
    server = LabelServer(ws.folder, port=0, max_body=64 * 1024).start()
    try:
        yield server, ws, truth
    finally:
        server.stop()


def raw_request(server, data: bytes, *, read_timeout=10.0) -> bytes:
    """Send raw bytes to the server and return what it answers (until it closes or goes quiet)."""
    host, port = server.sock.getsockname()[:2]
    with socket.create_connection((host, port), timeout=read_timeout) as s:
        try:
            s.sendall(data)
        except OSError:   # the server answered and closed before taking everything
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                head, sep, body = out.partition(b"\r\n\r\n")
                length = [int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
                          if k.strip().lower() == b"content-length"]
                if sep and length and len(body) >= length[0]:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_huge_declared_body_is_refused_before_it_is_read(served):
    server, _, _ = served
    head = (b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 300000000\r\n\r\n")
    t0 = time.monotonic()
    answer = raw_request(server, head + b'{"id": "x", ')
    assert status_of(answer) == 413 and time.monotonic() - t0 < 5
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert "larger than 65536 bytes" in body["error"] and "--max-body" in body["error"]


def test_a_streamed_body_is_cut_off_at_the_limit(served):
    server, _, _ = served
    chunk = b" " * 8192
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"   # 160 KiB, chunked
    head = (b"POST /api/label HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    assert status_of(raw_request(server, head + chunks)) == 413
    # Up to the limit is accepted (here: a valid object padded with spaces to the limit).
    body = json.dumps({"id": "nope", "label": "a", "annotator": "x"}).encode()
    body += b" " * (64 * 1024 - len(body))
    r = httpx.post(server.url + "api/label", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and "not items of this workspace" in r.json()["error"]


def test_the_body_is_read_incrementally():
    """An endless body: reading stops once the limit is passed, after about limit bytes."""
    pulled = []

    async def receive():
        pulled.append(4096)
        return {"type": "http.request", "body": b"x" * 4096, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/", "query_string": b""}, receive)
    with pytest.raises(RequestProblem) as err:
        asyncio.run(read_body(request, 100_000))
    assert err.value.status == 413 and sum(pulled) <= 100_000 + 4096
    assert MAX_BODY == 1 << 20


def test_deep_json_and_huge_numbers_get_4xx(served):
    server, ws, _ = served
    item = ws.batch()["item_id"].iloc[0]
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for deep in (b"[" * 60_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, b"[" * 30_000 + b"]" * 30_000):
            r = c.post("/api/label", content=deep, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and "nested too deeply" in r.json()["error"], r.text[:200]
        r = c.post("/api/label", content=b'{"id": 1' + b"0" * 5000 + b"}", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        for position in (2**63, 10**30, 2**63 - 1):
            r = c.get(f"/api/image/{position}")
            assert r.status_code == 404 and "no item at position" in r.json()["error"], r.text
        for rnd in (10**30, 2**63, 0, -1, 1.5, True):
            r = c.post("/api/label", json={"id": item, "label": "a", "annotator": "x", "round": rnd})
            assert r.status_code == 400 and "round must be an integer from 1 to" in r.json()["error"], (rnd, r.text)
        r = c.post("/api/label", json={"id": item, "label": "a", "annotator": "x", "round": 2**63 - 1})
        assert r.status_code == 404 and "is not in the batch of round" in r.json()["error"]
        for n in (10**30, 0, 61, "5", None):
            r = c.post("/api/query", json={"n": n, "strategy": "random"})
            assert r.status_code == 400 and "n (the batch size) must be an integer from 1 to 60" in r.json()["error"]
        r = c.post("/api/query", json={"n": 3, "strategy": ["badge"]})
        assert r.status_code == 400 and "give the strategy as its name" in r.json()["error"]
        r = c.post("/api/undo", content=b'"just a string"', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and 'must be a JSON object: {"id": "<item id>"' in r.json()["error"]


# Fuzz ---------------------------------------------------------------------------------------------------
PATHS = ["/", "/api/state", "/api/next", "/api/next", "/api/item", "/api/image/0", "/api/image/7"] + [
    "/api/label", "/api/undo", "/api/query"] * 5 + [
         "/static/app.js", "/static/style.css", "/static/", "/static/../pyproject.toml", "/api/",
         "/api/image/-1", "/api/image/" + "9" * 40, "/api/image/abc", "/static/%2e%2e/%2e%2e/etc/passwd",
         "/static/a%00b", "/static/%00", "/api/state%00", "/%ff%fe", "/static/" + "a" * 300, "/api/next/extra"]
CTYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=utf-16", "text/plain",
          "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "", "application/jsonx", "*/*",
          "application/json;;;", "\u00e9"]
METHODS = ["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def junk_value(rng, depth=0):
    kinds = ["int", "bigint", "neg", "float", "str", "longstr", "surrogate", "none", "bool", "list", "dict"]
    kind = rng.choice(kinds if depth < 3 else kinds[:9])
    if kind == "int":
        return rng.randint(-3, 70)
    if kind == "bigint":
        return rng.choice([2**63, 2**63 - 1, 2**64, 10**30, -(2**63) - 1, 10**300])
    if kind == "neg":
        return -rng.randint(1, 10**6)
    if kind == "float":
        return rng.choice([0.5, 1e308, -0.0, 3.0, 1e-300])
    if kind == "str":
        return "".join(rng.choice("ab c\u00e9\u4e2d\x00\n'\"<>&%") for _ in range(rng.randint(0, 12)))
    if kind == "longstr":
        return "x" * rng.choice([101, 5000, 60000])
    if kind == "surrogate":
        return "\ud800"
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "list":
        return [junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["id", "label", "annotator", "round", "n", "strategy", "x"]): junk_value(rng, depth + 1)
            for _ in range(rng.randint(0, 4))}


def junk_body(rng, ids):
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 3000))
    if kind == 1:
        return (rng.choice("[{") * rng.randint(1000, 40_000)).encode()
    if kind == 2:   # the right keys, values of every type
        body = {"id": rng.choice(ids + [junk_value(rng)]), "label": rng.choice(TAB_CLASSES + [junk_value(rng)]),
                "annotator": rng.choice(["fuzz", "", junk_value(rng)]), "round": junk_value(rng)}
        for key in rng.sample(list(body), rng.randint(0, 2)):
            del body[key]
        return json.dumps(body).encode()
    if kind == 3:
        return json.dumps({"n": junk_value(rng), "strategy": rng.choice(["nope", "", junk_value(rng)])}).encode()
    if kind == 4:
        return json.dumps(junk_value(rng)).encode()
    if kind == 5:
        return b'{"id": ' + str(rng.randint(10**50, 10**60)).encode() + b"," + b'"label": NaN, "round": Infinity}'
    if kind == 6:
        return json.dumps({"id": rng.choice(ids), "label": "a", "annotator": "fuzz"}).encode("utf-16")
    return rng.choice([b"", b"null", b"{}", b"[]", b'{"id": "\\ud800", "label": "a", "annotator": "\\udfff"}',
                       b'{"id": "a", "id": 3}', b"{" + b" " * 70_000 + b"}"])


def junk_params(rng, ids):
    params = []
    for _ in range(rng.randint(0, 5)):
        key = rng.choice(["annotator", "skip", "prefer", "id", "x", ""])
        value = rng.choice([rng.choice(ids), "", "fuzz", "\u00e9\u4e2d", "%00", "a" * rng.choice([100, 101, 3000]),
                            str(rng.randint(-(10**30), 10**30))])
        params.append((key, value))
    return params


def test_fuzz_no_request_gets_a_500(served):
    server, ws, _ = served
    ids = ws.batch()["item_id"].tolist()
    rng = random.Random(20260102)
    statuses: dict[int, int] = {}
    failures = []
    deadline = time.monotonic() + 120
    n_requests = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(400):
            if time.monotonic() > deadline:
                break
            path = rng.choice(PATHS)
            usual = "POST" if path in ("/api/label", "/api/undo", "/api/query") else "GET"
            method = usual if rng.random() < 0.8 else rng.choice(METHODS)
            headers = {}
            ctype = rng.choice(CTYPES[:3]) if rng.random() < 0.7 else rng.choice(CTYPES)
            if ctype:
                headers["Content-Type"] = ctype.encode("utf-8")
            client.cookies.clear()
            if rng.random() < 0.3:
                cookie = rng.choice(["short", "A" * 24, "\u00e9" * 20, "a b;c", "=;=", "A" * 5000])
                headers["Cookie"] = b"activebatch_browser=" + cookie.encode("utf-8")
            body = junk_body(rng, ids) if method in ("POST", "PUT", "PATCH", "DELETE") else None
            try:
                r = client.request(method, server.url.rstrip("/") + path, params=junk_params(rng, ids), content=body,
                                   headers=headers)
            except httpx.InvalidURL:
                continue
            except (httpx.RemoteProtocolError, httpx.WriteError):   # a connection closed after a refusal
                statuses[-1] = statuses.get(-1, 0) + 1
                continue
            n_requests += 1
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 500:
                failures.append((method, path, headers, (body or b"")[:200], r.status_code, r.text[:300]))
    # Bytes that are not HTTP at all.
    for _ in range(20):
        answer = raw_request(server, rng.randbytes(rng.randint(1, 400)) + b"\r\n\r\n", read_timeout=3)
        if answer.startswith(b"HTTP/"):
            assert status_of(answer) < 500, answer[:200]
    assert not failures, failures[:5]
    assert n_requests >= 300, statuses
    assert sum(v for code, v in statuses.items() if 400 <= code < 500) > 200 and statuses.get(400, 0) > 50, statuses
    state = httpx.get(server.url + "api/state", timeout=30)
    assert state.status_code == 200 and state.json()["classes"] == TAB_CLASSES   # still alive and sound
    assert ws.store.integrity_check() == "ok"
