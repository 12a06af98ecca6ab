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
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from alphatrace.server.auth import KeyRing, allows
from alphatrace.server.live_state import LiveState
from alphatrace.server.sizing_routes import BASE_SIZE_MAX, SCORE_MAX, encoded

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


def bearer_key(scope: Scope) -> str | None:
    """The bearer credentials as FastAPI's HTTPBearer reads them (the first Authorization
    header), None when it would find none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, key = get_authorization_scheme_param(text)
            if not (text and scheme and key) or scheme.lower() != "bearer":
                return None
            return key
    return None


class SizingFastPath:
    """ASGI middleware: the sizing answer for plainly valid requests (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"].startswith(PREFIX) and scope["path"].endswith(SUFFIX)):
            t0 = time.perf_counter()
            body = self.answer(scope)
            if body is not None:
                # the route's own time, as the route counts it (not the transport's)
                scope["app"].state.metrics.sizing.observe(time.perf_counter() - t0)
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        *_HEADERS]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def answer(scope: Scope) -> bytes | None:
        """The 200 body, or None to leave the request to the route."""
        path: str = scope["path"]
        if scope.get("root_path") or len(path) <= len(PREFIX) + len(SUFFIX):
            return None  # a mounted app, or no agent name: the route decides
        agent = path[len(PREFIX):-len(SUFFIX)]
        if "\n" in agent:
            return None  # the route's pattern (`.*`) stops at a line break: no route, a 404
        numbers = query_numbers(scope["query_string"])
        if numbers is None:
            return None
        key = bearer_key(scope)
        if key is None:
            return None
        state: Any = scope["app"].state
        ring: KeyRing = state.keyring
        who = ring.verify(key)
        if who is None or not allows(who, "read"):
            return None
        live: LiveState = state.live
        snap = live.current()
        if snap is None:
            return None
        return encoded(snap, agent, *numbers)
