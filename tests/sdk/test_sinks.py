"""Sinks never raise into the agent and never drop: a dead collector or a full queue spools."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import alphatrace
from alphatrace.sdk import configure, emitter, flush, run
from alphatrace.sdk.follow import closed_files
from alphatrace.sdk.sinks import HttpSink, SpoolSink
from alphatrace.sdk.spool import SpoolWriter
from alphatrace.store import Store
from alphatrace.store.connection import one


def spooled(d: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for f in closed_files([d]) for ln in f.read_text().splitlines()]


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_default_sink_is_the_spool(tmp_path: Path) -> None:
    with run(agent="A") as r:
        r.alpha("BTC", "LONG")
    assert flush()
    got = spooled(tmp_path / "spool")  # $ALPHATRACE_SPOOL from the fixture
    assert [e["event_id"] for e in got] == [f"{r.run_id}:1", f"{r.run_id}:end"]
    assert got[0]["ts"].endswith("Z") and "T" in got[0]["ts"]


def test_dead_collector_spools_without_slowing_the_agent(tmp_path: Path) -> None:
    configure(url=f"http://127.0.0.1:{dead_port()}", retries=1, flush_interval_s=0.05,
              spool_dir=tmp_path / "fallback")
    t0 = time.perf_counter()
    ids = []
    for _ in range(200):
        with run(agent="A") as r:
            r.usage("gpt-4o", 10, 10)
        ids.append(r.run_id)
    hot = time.perf_counter() - t0
    assert hot < 0.5  # the network is off the hot path
    assert flush(timeout=30)
    got = spooled(tmp_path / "fallback")
    assert len(got) == 400 and {e["run_id"] for e in got} == set(ids)


class _Handler(BaseHTTPRequestHandler):
    status = 401
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        type(self).bodies.append(self.rfile.read(n))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        body = json.dumps({"detail": "x"}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: Any) -> None:
        pass


@pytest.fixture
def fake_collector() -> Any:
    _Handler.bodies = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_refused_key_spools_at_once(tmp_path: Path, fake_collector: Any) -> None:
    _Handler.status = 401
    fallback = SpoolSink(SpoolWriter(tmp_path / "fb"))
    sink = HttpSink(f"http://127.0.0.1:{fake_collector.server_port}", "k", fallback, batch_size=3)
    sink.write([{"type": "telemetry", "run_id": str(i), "agent": "A", "ts": 0.0} for i in range(7)])
    sink.flush()
    assert len(_Handler.bodies) == 3  # batches of 3, 3, 1 — no retries on 401
    assert [len(json.loads(b)) for b in _Handler.bodies] == [3, 3, 1]
    assert sink.spilled == 7 and len(spooled(tmp_path / "fb")) == 7
    assert json.loads(_Handler.bodies[0])[0]["ts"] == "1970-01-01T00:00:00.000000Z"


def test_server_errors_are_retried_then_spooled(tmp_path: Path, fake_collector: Any) -> None:
    _Handler.status = 503
    fallback = SpoolSink(SpoolWriter(tmp_path / "fb"))
    sink = HttpSink(f"http://127.0.0.1:{fake_collector.server_port}", None, fallback,
                    retries=2, backoff_s=0.01, cooldown_s=60)
    sink.write([{"type": "telemetry", "run_id": "1", "agent": "A"}])
    sink.flush()
    assert len(_Handler.bodies) == 3 and sink.spilled == 1
    # Now "down": the next batch goes straight to the spool, no request at all.
    sink.write([{"type": "telemetry", "run_id": "2", "agent": "A"}])
    sink.flush()
    assert len(_Handler.bodies) == 3 and sink.spilled == 2


class BlockingSink:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.events: list[dict[str, Any]] = []

    def write(self, events: list[dict[str, Any]]) -> None:
        self.gate.wait(30)
        self.events.extend(events)

    def tick(self, now: float) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def salvage(self) -> list[str]:
        return []
    def abandon(self) -> None: ...


def test_full_queue_spills_instead_of_dropping(tmp_path: Path) -> None:
    sink = BlockingSink()
    overflow = SpoolSink(SpoolWriter(tmp_path / "overflow"))
    em = emitter.Emitter(sink, overflow, max_queue=10, poll_s=0.01)  # type: ignore[arg-type]
    emitter.install(em)
    em.put({"type": "telemetry", "run_id": "first", "agent": "A"})
    time.sleep(0.1)  # the thread took it and is stuck in the sink
    for i in range(50):
        em.put({"type": "telemetry", "run_id": str(i), "agent": "A"})
    assert em.overflowed == 40 and em.pending() == 10
    sink.gate.set()
    assert em.flush(10)
    ids = [e["run_id"] for e in sink.events] + [e["run_id"] for e in spooled(tmp_path / "overflow")]
    assert sorted(ids) == sorted(["first", *map(str, range(50))])


def test_stuck_sink_at_exit_spools_the_rest(tmp_path: Path) -> None:
    sink = BlockingSink()
    overflow = SpoolSink(SpoolWriter(tmp_path / "overflow"))
    em = emitter.Emitter(sink, overflow, poll_s=0.01)  # type: ignore[arg-type]
    em.put({"run_id": "a"})
    time.sleep(0.1)
    em.put({"run_id": "b"})
    assert em.close(timeout=0.2) is False
    assert [e["run_id"] for e in spooled(tmp_path / "overflow")] == ["b"]
    em.put({"run_id": "late"})  # after close: straight to the spool, never lost
    overflow.flush()
    assert [e["run_id"] for e in spooled(tmp_path / "overflow")] == ["b", "late"]
    sink.gate.set()


def test_store_sink(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    configure(db=store)
    with alphatrace.run(agent="Direct", strategy="S") as r:
        r.usage("gpt-4o", 1830, 421)
        r.alpha("BTC", "SHORT", -1.42)
    assert flush()
    assert one(store.con, "SELECT count(*) FROM telemetry WHERE run_id = ?", [r.run_id])[0] == 2
    assert one(store.con, "SELECT direction FROM alpha WHERE run_id = ?", [r.run_id])[0] == "SHORT"
    store.close()


def test_bad_url_never_breaks_the_agent(tmp_path: Path) -> None:
    configure(url="not a url", spool_dir=tmp_path / "s")
    with run(agent="A") as r:
        r.alpha("BTC", "LONG")
    assert flush()
    assert len(spooled(tmp_path / "s")) == 2
