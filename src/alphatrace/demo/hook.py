"""The live demo's webhook receiver: a thread in the demo's process, on a free 127.0.0.1 port.

It does what any receiver should (docs/governance.md §Notifications; examples/webhook_receiver.py
is the stand-alone version): checks the HMAC signature and its age (401 otherwise), drops a
repeated Idempotency-Key (answering 200, so the sender stops), and answers at once. Each new
delivery is queued with the wall time it arrived, for the demo's main thread to print.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alphatrace.notify import signing


@dataclass(frozen=True)
class Received:
    """One delivery as the receiver got it, signature checked."""

    record: dict[str, Any]
    delivery_id: str
    received_at: float  # unix time, when its body was read


class Hook:
    """A running receiver: `url` for the policy, `secret` to check signatures with."""

    def __init__(self, server: ThreadingHTTPServer, secret: str,
                 got: queue.Queue[Received]) -> None:
        self.server = server
        self.secret = secret
        self.got = got
        self.rejected = 0  # requests whose signature did not verify

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def drain(self) -> list[Received]:
        """The deliveries received since the last drain, in arrival order."""
        out: list[Received] = []
        while True:
            try:
                out.append(self.got.get_nowait())
            except queue.Empty:
                return out


def _handler(hook: list[Hook], seen: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            at = time.time()
            h = hook[0]
            if not signing.verify(h.secret, self.headers.get(signing.SIGNATURE_HEADER, ""),
                                  body, at):
                h.rejected += 1
                self._answer(401)
                return
            key = self.headers.get(signing.IDEMPOTENCY_HEADER, "")
            if key not in seen:
                seen.add(key)
                h.got.put(Received(json.loads(body)["record"],
                                   self.headers.get(signing.DELIVERY_HEADER, ""), at))
            self._answer(200)

        def _answer(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def receiver() -> Iterator[Hook]:
    """A receiver with a fresh random secret, serving until the block ends."""
    ref: list[Hook] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref, set()))
    server.daemon_threads = True
    hook = Hook(server, secrets.token_hex(16), queue.Queue())
    ref.append(hook)
    thread = threading.Thread(target=server.serve_forever, name="alphatrace-demo-hook",
                              daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
