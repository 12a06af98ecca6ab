"""Sizing answered by the HTTP protocol itself (server/sizing_fast.py `SizingProtocol`), on a
real uvicorn server over loopback, as `alphatrace serve` runs it.

What the protocol answers must be what the app answers (status, headers, body) and must reach
the client in request order; whatever it does not answer goes the app's way unchanged. The app
here has its ASGI fast path taken out, so "the app's way" is the route itself, and a counter on
the router tells which way a request went. Every wait is a bounded socket read (no timing).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRouter

from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.server.limits import Limits
from alphatrace.server.listen import bind
from alphatrace.server.sizing_fast import SizingFastPath, serving_protocol
from alphatrace.store import Store
from tests.server.conftest import histogram_count
from tests.server.test_sizing import Collector, evidence

WAIT_S = 30.0


class Served:
    def __init__(self, app: FastAPI, port: int, keys: dict[str, str]) -> None:
        self.app, self.port, self.keys = app, port, keys
        self.routed: list[str] = []

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S)

    def get(self, target: str, *, key: str | None = "read", extra: str = "") -> bytes:
        auth = f"Authorization: Bearer {self.keys[key]}\r\n" if key else ""
        return f"GET {target} HTTP/1.1\r\nHost: t\r\n{auth}{extra}\r\n".encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("proto") / "c.duckdb"
    with Store(db) as store:
        keys = {s: create_key(store, f"k-{s}", s)["key"] for s in ("ingest", "read", "admin")}
    app = create_app(db, linger_s=0.001, warn_without_keys=False)
    # The app's way is the route alone: no ASGI fast path, so only the protocol answers early.
    app.user_middleware = [m for m in app.user_middleware if m.cls is not SizingFastPath]
    sock = bind("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            http=serving_protocol(Limits(), app.state))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    s = Served(app, port, keys)
    try:
        for _ in range(int(WAIT_S / 0.05)):  # until uvicorn listens (its lifespan has run)
            if server.started or not thread.is_alive():
                break
            thread.join(0.05)
        assert server.started, "the server did not start"
        # Evidence for agent A, priced and decided, through the app's own writer.
        coll = Collector.__new__(Collector)
        coll.client, coll.keys = _Client(app), keys  # type: ignore[assignment]
        _post(s, evidence("A", [-30.0, -10.0, 5.0]))
        coll.reconcile_and_evaluate()
        inner = APIRouter.__call__

        async def counting(self: APIRouter, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                s.routed.append(scope["path"])
            await inner(self, scope, receive, send)

        APIRouter.__call__ = counting  # type: ignore[method-assign]
        try:
            yield s
        finally:
            APIRouter.__call__ = inner  # type: ignore[method-assign]
    finally:
        server.should_exit = True
        thread.join(WAIT_S)


class _Client:
    """What `Collector.write` reads of a TestClient: the app."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app


def _post(s: Served, events: list[dict[str, Any]]) -> None:
    body = json.dumps(events).encode()
    with s.connect() as c:
        c.sendall(f"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                  f"{s.keys['ingest']}\r\nContent-Type: application/json\r\nContent-Length: "
                  f"{len(body)}\r\n\r\n".encode() + body)
        status, _, answer = read_answer(c, bytearray())
    assert status == 200 and json.loads(answer)["rejected"] == 0, answer


def read_answer(c: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One answer from `c` (read by its Content-Length; `buf` keeps what follows it)."""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(65536)
        assert chunk, f"closed before an answer; got {bytes(buf)!r}"
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    total = end + 4 + int(headers["content-length"])
    while len(buf) < total:
        chunk = c.recv(65536)
        assert chunk, "closed inside a body"
        buf += chunk
    body = bytes(buf[end + 4:total])
    del buf[:total]
    return int(lines[0].split(" ", 2)[1]), headers, body


def ask(s: Served, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The answers to `requests`, sent in one write on one connection (pipelined)."""
    with s.connect() as c:
        c.sendall(b"".join(requests))
        buf = bytearray()
        return [read_answer(c, buf) for _ in requests]


def without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in names}


def test_the_protocol_answers_as_the_route_without_the_app(served: Served) -> None:
    target = "/v1/agents/A/sizing?base_size=10000&score=-1.5"
    served.routed.clear()
    (status, headers, body), = ask(served, served.get(target))
    assert status == 200 and served.routed == []  # the app never saw it
    doc = json.loads(body)
    assert (doc["agent"], doc["base_size"], doc["score"]) == ("A", 10_000.0, -1.5)
    assert doc["size"] == pytest.approx(10_000 * 1.5 * 0.85 * 0.95)
    # The same request with Connection: close is left to the app: the route's answer.
    (r_status, r_headers, r_body), = ask(served, served.get(target, extra="Connection: close\r\n"))
    assert served.routed == ["/v1/agents/A/sizing"]
    assert r_status == status and r_body == body
    assert without(r_headers, "date", "connection") == without(headers, "date")
    assert r_headers["connection"] == "close" and "server" in headers and "date" in headers


def test_answers_keep_request_order_behind_a_request_of_the_app(served: Served) -> None:
    """A sizing request pipelined behind one the app is answering waits its turn; several in
    a row are answered in order; the connection then serves the app's routes as before."""
    sizing = [served.get(f"/v1/agents/A/sizing?base_size={n}") for n in (1, 2, 3)]
    answers = ask(served, served.get("/v1/agents", key="read"), *sizing,
                  b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", sizing[0])
    assert [a[0] for a in answers] == [200] * 6
    assert "agents" in json.loads(answers[0][2])  # GET /v1/agents first
    assert [json.loads(a[2])["base_size"] for a in answers[1:4]] == [1.0, 2.0, 3.0]
    assert json.loads(answers[5][2])["base_size"] == 1.0


@pytest.mark.parametrize(("target", "key", "extra", "status"), [
    ("/v1/agents/A/sizing", None, "", 401),                       # no key
    ("/v1/agents/A/sizing", "ingest", "", 403),                   # a key without read
    ("/v1/agents/A/sizing?score=abc", "read", "", 422),           # the route's validation
    ("/v1/agents/A/sizing?base_size=1e400", "read", "", 422),
    ("/v1/agents/%41/sizing", "read", "", 200),                   # percent-encoded: the app's way
    ("/v1/agents/A/sizing", "read", "Content-Length: 2\r\n", 200),  # a body to read first
])
def test_what_the_protocol_does_not_answer_goes_to_the_app(
        served: Served, target: str, key: str | None, extra: str, status: int) -> None:
    served.routed.clear()
    req = served.get(target, key=key, extra=extra) + (b"{}" if "Content-Length" in extra else b"")
    (got, _, body), = ask(served, req)
    assert got == status and len(served.routed) == 1
    if status != 200:
        assert "detail" in json.loads(body)  # FastAPI's error shape, unchanged


def test_protocol_answers_are_counted_in_the_sizing_histogram(served: Served) -> None:
    hist = served.app.state.metrics.sizing.latency

    def count() -> float:
        return histogram_count(hist)

    before = count()
    answers = ask(served, *[served.get("/v1/agents/A/sizing")] * 3)
    assert [a[0] for a in answers] == [200] * 3 and count() == before + 3


def test_a_failure_of_the_protocols_answer_leaves_the_request_to_the_app(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised inside the parser's callback it would be answered 400 (an invalid request); the
    request goes to the app instead, whose answer to the same failure is a 500."""
    def broken() -> None:
        raise RuntimeError("state unreadable")

    monkeypatch.setattr(served.app.state.live, "current", broken)
    served.routed.clear()
    (status, _, _), = ask(served, served.get("/v1/agents/A/sizing"))
    assert status == 500 and served.routed == ["/v1/agents/A/sizing"]
