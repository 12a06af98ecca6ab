"""Slow-client guards for the collector: header and body read deadlines, a connection cap.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`), but nothing bounds a request
that arrives slowly: a client that sends half a header and waits, or dribbles a body a byte at a
time, holds its socket (and, for a body, a task waiting in `receive`) for as long as it likes,
and a few hundred of them exhaust file descriptors. uvicorn's `limit_concurrency` only answers
503 once a request's headers are complete, which such a client never reaches.

`GuardedHttpToolsProtocol` is uvicorn's httptools protocol plus three rules (its `limits`; the
server's protocol, server/sizing_fast.py `serving_protocol`, binds them):
- the request line and headers must arrive within `header_timeout_s` of the connection opening
  (or of the first byte of a later request on the same connection);
- the body must arrive within `body_timeout_s` of the end of the headers;
- beyond `max_connections` open connections, a new one is answered 503 and closed at once.
A request that misses a deadline after sending something is answered 408 with
`Connection: close`; a connection that never sent a byte is just closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from alphatrace.server.limits import Limits


def plain_response(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 response that closes the connection (written without the app)."""
    body = message.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    ).encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a connection cap (module doc)."""

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False  # bytes of a request seen, its headers not yet complete

    # -- the connection -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.logger.warning("connection refused: %d open connections (cap %d)",
                                len(self.connections) - 1, self.limits.max_connections)
            transport.write(plain_response(
                503, "Service Unavailable", "too many connections: retry later\n",
                "retry-after: 1\r\n"))
            transport.close()
            return
        self._arm(self.limits.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.limits.header_timeout_s, self._headers_late)

    def headers_arrived(self) -> None:
        """The header deadline is met: stop its timer."""
        self._in_request = False
        self._disarm()

    def on_headers_complete(self) -> None:
        self.headers_arrived()
        super().on_headers_complete()
        # Disarmed again by on_message_complete, at once when there is no body.
        self._arm(self.limits.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # -- deadlines ------------------------------------------------------------------------
    def _arm(self, seconds: float, fn: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, fn)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_request:
            self.transport.write(plain_response(
                408, "Request Timeout",
                f"request headers not received within {self.limits.header_timeout_s:g} s\n"))
        self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The app is waiting in receive(): it will see a disconnect, and nothing it sends
            # afterwards reaches the wire (uvicorn drops writes of a disconnected cycle).
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.write(plain_response(
                408, "Request Timeout",
                f"request body not received within {self.limits.body_timeout_s:g} s\n"))
        self.transport.close()

