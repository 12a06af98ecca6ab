"""Slow clients against a real collector on loopback: half a header, a dribbled body, an idle
socket and too many connections are each cut off, and nothing else is disturbed.

The deadlines are set short by flag (2 s); every wait below is bounded generously (30 s) and
asserts on what the socket sees (a 408 or 503 answer, then end of stream), never on a time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Server, start_server

pytestmark = pytest.mark.slow  # see `make test-fast`

WAIT_S = 30.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("strict"), "--header-timeout", "2",
                       "--body-timeout", "2")
    yield srv
    srv.stop()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return s


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or WAIT_S of silence)."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {WAIT_S} s; got {out!r}") from None
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def test_half_a_header_is_closed_with_408(strict: Server) -> None:
    with ExitStack() as stack:
        socks = [stack.enter_context(connect(strict.url)) for _ in range(40)]
        for s in socks:
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: collector\r\nX-Slow: ")
        for s in socks:
            answer = read_until_closed(s)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert b"request headers not received within 2 s" in answer
    # The server is fine afterwards.
    assert httpx.get(strict.url + "/healthz", timeout=WAIT_S).status_code == 200


def test_a_connection_that_sends_nothing_is_closed(strict: Server) -> None:
    with connect(strict.url) as s:
        assert read_until_closed(s) == b""


def test_a_dribbled_body_is_cut_off_with_408(strict: Server) -> None:
    """One byte every 0.1 s keeps a per-read idle timer happy forever; the body deadline is for
    the whole body, so the connection still ends."""
    with connect(strict.url) as s:
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json"
                  b"\r\nAuthorization: Bearer " + strict.keys["ingest"].encode()
                  + b"\r\nContent-Length: 100000\r\n\r\n[")
        s.settimeout(0.1)
        answer = b""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                try:
                    s.sendall(b" ")
                except OSError:  # closed under us: what is left to read says why
                    s.settimeout(WAIT_S)
                    answer += read_until_closed(s)
                    break
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        else:
            raise AssertionError(f"still open after {WAIT_S} s")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"request body not received within 2 s" in answer


def test_a_request_on_time_is_unaffected(strict: Server) -> None:
    """A body sent in pieces but within the deadline, and a kept-alive connection's second
    request, are answered as usual."""
    with connect(strict.url) as s:
        body = b'[{"type":"telemetry","run_id":"slow-ok","agent":"a","ts":"2025-03-01T08:00:00Z"}]'
        head = (b"POST /v1/events HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + strict.keys["ingest"].encode()
                + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        s.sendall(head)
        s.sendall(body[:10])
        s.sendall(body[10:])
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n")
        both = first + read_until_closed(s)
    assert both.count(b"HTTP/1.1 200 ") == 2 and b'"accepted":1' in both


def test_no_tracebacks_in_the_log(strict: Server) -> None:
    """A body cut off mid-read ends the request quietly (no 'Exception in ASGI application')."""
    log = Path(strict.log).read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log


def test_connections_beyond_the_cap_get_503(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--max-connections", "4", "--header-timeout", "60")
    try:
        with ExitStack() as stack:
            socks = [stack.enter_context(connect(srv.url)) for _ in range(8)]
            for s in socks:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n")  # headers unfinished
            last = read_until_closed(socks[-1])
            assert last.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in last.lower()
            # The first connections were admitted: they are still open and can finish.
            socks[0].sendall(b"Connection: close\r\n\r\n")
            assert read_until_closed(socks[0]).startswith(b"HTTP/1.1 200 ")
        # Once those are gone there is room again (the server sees the closes shortly).
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                if httpx.get(srv.url + "/healthz", timeout=WAIT_S).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no room after the connections closed"
            time.sleep(0.1)
    finally:
        srv.stop()
