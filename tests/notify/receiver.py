"""A real webhook receiver on 127.0.0.1 for the notification tests: it records what arrives
and answers as told (ok, fail with 503, hang until released), and can go down and come back
on the same port."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "fail", "hang"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the body was read
    answered: int | None = None  # the status it got (None: hung up on)


@dataclass
class Receiver:
    port: int
    mode: Mode = "ok"
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.answered is not None and r.answered < 300]

    def up(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                rec = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                               self.rfile.read(n), time.monotonic())
                with outer._lock:
                    outer.requests.append(rec)
                if outer.mode == "hang":
                    outer.release.wait(60)
                    return  # hang up without an answer
                code = 200 if outer.mode == "ok" else 503
                rec.answered = code
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"no")

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self._server = srv
        return self

    def down(self) -> None:
        if self._server is not None:
            self.release.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.release = threading.Event()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        """The accepted requests once there are at least n (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.accepted()
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{len(self.accepted())} of {n} deliveries arrived in {timeout} s "
                             f"({len(self.requests)} requests)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
