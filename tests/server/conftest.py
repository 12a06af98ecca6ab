"""A real collector on loopback: `alphatrace serve` in a subprocess, keys created beforehand."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from alphatrace.server.keys import create_key
from alphatrace.store import Store

SCOPES = ("ingest", "read", "admin")


def histogram_count(hist: Any) -> float:
    """The `_count` sample of a prometheus_client histogram (observations so far)."""
    return next(s.value for m in hist.collect() for s in m.samples if s.name.endswith("_count"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    db: Path
    keys: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(tmp: Path, *extra: str, keys: bool = True,
                 prepare: Callable[[Store], None] | None = None) -> Server:
    db = tmp / "collector.duckdb"
    made: dict[str, str] = {}
    with Store(db) as store:
        if keys:
            for scope in SCOPES:
                made[scope] = create_key(store, f"test-{scope}", scope)["key"]
        if prepare is not None:
            prepare(store)
    port = free_port()
    if "--otlp-grpc-port" not in extra:  # off unless asked: test servers run side by side
        extra = (*extra, "--otlp-grpc-port", "0")
    log = tmp / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alphatrace.cli.main", "serve", "--db", str(db),
             "--port", str(port), "--log-level", "warning", *extra],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    srv = Server(url, db, made, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return srv
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    srv.stop()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def serve_with_port_taken(tmp: Path, option: str, *extra: str
                          ) -> tuple[int, subprocess.CompletedProcess[str]]:
    """`alphatrace serve` with `option` (e.g. --port) set to a port another socket listens on:
    (that port, the finished process)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        res = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "serve", "--db",
                              str(tmp / "taken.duckdb"), option, str(port), *extra],
                             capture_output=True, text=True, timeout=120)
    return port, res


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One collector shared by the tests that only add events under their own run_ids (its
    store starts with the ledger rows and events of tests/server/test_reads.py)."""
    from tests.server.test_reads import fill

    # --no-pipeline: the hand-made ledger rows of fill() have no events; a reconcile would
    # rebuild them away (the live pipeline: tests/server/test_pipeline_server.py)
    srv = start_server(tmp_path_factory.mktemp("collector"), "--no-pipeline", prepare=fill)
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
