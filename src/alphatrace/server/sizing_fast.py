"""GET /v1/agents/{agent}/sizing answered before FastAPI, for requests that are plainly valid.

Why: a meta-agent asks for a size before every signal, and the route's own work is a dict
lookup and a byte splice (~10 µs), while FastAPI's routing, dependency solving and response
classes cost several times that on the one event-loop thread the collector also ingests on
(issue #20's target: p99 ≤ 5 ms at 1,000 requests/s beside 10,000 events/s).

The fast path answers a request only when the answer is certain to be the route's 200: method
GET, no root path, a non-empty agent without a line break, a query of at most `base_size` and `score` once each,
written as plain decimal numbers inside the route's bounds, a bearer key of scope read (taken
from the header as FastAPI's `HTTPBearer` takes it), a sizing state read, and a finite size. The
body is the route's (`sizing_routes.encoded`), with the same headers, and the time is counted in
the same histogram. Anything else (a 401, 403, 422 or 503 to give, an odd query, another path)
goes on to the app unchanged, so every refusal keeps FastAPI's shape.

Under `alphatrace serve` the same answer is given one step earlier, by the HTTP protocol itself
(`SizingProtocol`), as soon as the request's headers are parsed: the answer is written in the
read callback, with no ASGI task, no middleware stack and no other turn of the event loop. That
matters beside ingest: the loop shares the GIL with the writer and parsing threads, and each
callback that has to take the GIL back can wait a switch interval behind one of them; answering
inside the read callback takes it once a request instead of two or three times, and costs a
fraction of the CPU. The protocol answers only on a kept-alive HTTP/1.1 connection with no
request of its own still in progress (so answers stay in order) and no body to read; anything
else goes the ASGI way, where `SizingFastPath` (and then the route) decide as before.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import httptools
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from alphatrace.server.auth import KeyRing, allows
from alphatrace.server.guard import GuardedHttpToolsProtocol
from alphatrace.server.limits import Limits
from alphatrace.server.live_state import LiveState
from alphatrace.server.sizing_routes import BASE_SIZE_MAX, SCORE_MAX, encoded

log = logging.getLogger("alphatrace.server")
PREFIX, SUFFIX = "/v1/agents/", "/sizing"
# Decimal numbers that every parser involved reads alike (Python's float, pydantic's): no sign
# but a leading minus (a '+' in a query is a space), no spaces, no inf/nan, no underscores.
_NUMBER = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]-?[0-9]+)?")
_HEADERS = [(b"content-type", b"application/json")]


def query_numbers(query: bytes) -> tuple[float | None, float] | None:
    """(base_size, score) of a query the route would accept as is, or None when the route
    should decide (anything else: other or repeated names, encoded characters, bounds)."""
    base: float | None = None
    score = 1.0
    seen: set[bytes] = set()
    if query:
        for item in query.split(b"&"):
            name, eq, raw = item.partition(b"=")
            if not eq or name in seen or name not in (b"base_size", b"score"):
                return None
            if _NUMBER.fullmatch(raw) is None:
                return None
            seen.add(name)
            x = float(raw)
            if name == b"base_size":
                if not 0 <= x <= BASE_SIZE_MAX:
                    return None
                base = x
            else:
                if not -SCORE_MAX <= x <= SCORE_MAX:
                    return None
                score = x
    return base, score


def bearer_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The bearer credentials as FastAPI's HTTPBearer reads them (the first Authorization
    header), None when it would find none."""
    for name, value in headers:
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, key = get_authorization_scheme_param(text)
            if not (text and scheme and key) or scheme.lower() != "bearer":
                return None
            return key
    return None


def answer(state: Any, path: str, query: bytes, headers: Iterable[tuple[bytes, bytes]],
           root_path: str = "") -> bytes | None:
    """The 200 body of GET `path`?`query` (path percent-decoded, as in an ASGI scope) on the
    app whose state is `state`, or None to leave the request to the route."""
    if (root_path or not path.startswith(PREFIX) or not path.endswith(SUFFIX)
            or len(path) <= len(PREFIX) + len(SUFFIX)):
        return None  # a mounted app, another path or no agent name: the route decides
    agent = path[len(PREFIX):-len(SUFFIX)]
    if "\n" in agent:
        return None  # the route's pattern (`.*`) stops at a line break: no route, a 404
    numbers = query_numbers(query)
    if numbers is None:
        return None
    key = bearer_key(headers)
    if key is None:
        return None
    ring: KeyRing = state.keyring
    who = ring.verify(key)
    if who is None or not allows(who, "read"):
        return None
    live: LiveState = state.live
    snap = live.current()
    if snap is None:
        return None
    return encoded(snap, agent, *numbers)


def timed_answer(state: Any, path: str, query: bytes, headers: Iterable[tuple[bytes, bytes]],
                 root_path: str = "") -> bytes | None:
    """`answer`, its time counted in the sizing histogram when it answers (the route's own
    time, as the route counts it, not the transport's)."""
    t0 = time.perf_counter()
    body = answer(state, path, query, headers, root_path)
    if body is not None:
        state.metrics.sizing.observe(time.perf_counter() - t0)
    return body


class SizingFastPath:
    """ASGI middleware: the sizing answer for plainly valid requests (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = timed_answer(scope["app"].state, scope["path"], scope["query_string"],
                                scope["headers"], scope.get("root_path", ""))
            if body is not None:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        *_HEADERS]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def answer(scope: Scope) -> bytes | None:
        """The 200 body of an ASGI scope, or None to leave the request to the route."""
        return answer(scope["app"].state, scope["path"], scope["query_string"],
                      scope["headers"], scope.get("root_path", ""))


class SizingProtocol(GuardedHttpToolsProtocol):
    """The collector's HTTP protocol: the slow-client guards, and sizing answered from the
    read callback (module doc). `state` is the app's state (keys, live state, metrics)."""

    state: ClassVar[Any] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answered = False  # the current request was answered here, not by the app

    def on_headers_complete(self) -> None:
        try:
            body = self._direct()
        except Exception:  # raised in a parser callback it would be a 400: the app decides
            log.exception("sizing answer failed; the request goes to the app")
            body = None
        if body is None:
            super().on_headers_complete()
            return
        self._answered = True
        self.headers_arrived()
        self.transport.write(self._head(len(body)) + body)
        self.on_response_complete()  # as after an app's answer: keep-alive timer, next request

    def on_message_complete(self) -> None:
        if self._answered:
            self._answered = False
            return
        super().on_message_complete()

    def _direct(self) -> bytes | None:
        """The answer to the request whose headers were just parsed, when it is certain to be
        the route's 200 and safe to give before the app would (module doc); else None."""
        cycle = self.cycle
        if (self.state is None or self.parser.get_method() != b"GET"
                or self.parser.get_http_version() != "1.1"
                or not self.parser.should_keep_alive() or self.parser.should_upgrade()
                or (cycle is not None and not cycle.response_complete) or self.pipeline
                or self.flow.write_paused or self.limit_concurrency is not None):
            return None
        for name, value in self.headers:
            if (name == b"transfer-encoding" or name == b"expect"
                    or (name == b"content-length" and value.strip() != b"0")):
                return None  # a body to read (or to wait for): the app's way
        try:
            parsed = httptools.parse_url(self.url)
            path = parsed.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None
        if "%" in path:
            return None  # percent-decoding is the app's way (the route decides the same)
        query = parsed.query or b""
        body = timed_answer(self.state, path, query, self.headers, self.root_path)
        if body is not None and self.access_log:  # the line uvicorn logs for the app's answer
            where: Any = {"client": self.client, "root_path": self.root_path, "path": path,
                          "raw_path": parsed.path, "query_string": query}
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(where), "GET",
                                    get_path_with_query_string(where), "1.1", 200)
        return body

    def _head(self, length: int) -> bytes:
        """The status line and headers uvicorn writes for the same answer from the app."""
        lines = [STATUS_LINE[200]]
        for name, value in [*self.server_state.default_headers,
                            (b"content-length", str(length).encode()), *_HEADERS]:
            lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        return b"".join(lines)


def serving_protocol(limits: Limits, state: Any) -> type[SizingProtocol]:
    """The protocol class to pass as uvicorn's `http=`: guards bound to `limits`, sizing
    answered from `state` (the app's)."""
    return type("SizingProtocol", (SizingProtocol,), {"limits": limits, "state": state})
