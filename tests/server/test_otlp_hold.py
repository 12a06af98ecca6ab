"""The trace hold: spans wait for their root, a bounded time and a bounded memory; what is held
at shutdown is written; through a real collector, children sent before their root land in the
root's run."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.server.otlp import request_events
from alphatrace.server.otlp_export import export
from alphatrace.server.otlp_runs import SpanTags, span_tags
from alphatrace.server.trace_hold import Ready, TraceHold, estimate
from alphatrace.server.writer import Busy
from alphatrace.store import Store
from tests.server.conftest import Server, start_server
from tests.server.test_otlp_runs import TID, request, span


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def admit(hold: TraceHold, *spans: dict[str, Any], **resource: Any) -> list[Ready]:
    m = request_events(request(list(spans), **resource))
    return hold.admit(list(zip(m.events, m.tags, [p + 1 for p in m.positions], strict=True)))


def runs(ready: list[Ready]) -> dict[str, str]:
    return {r.event["span_id"]: r.event["run_id"] for r in ready}


def test_children_wait_for_the_root_then_go_with_it() -> None:
    hold = TraceHold(wait_s=60)
    assert admit(hold, span(2, parent=1), span(3, parent=1)) == []
    assert hold.stats.spans == 2 and hold.stats.traces == 1
    ready = admit(hold, span(1, alphatrace__run_id="R"))
    assert runs(ready) == dict.fromkeys([f"{i:016x}" for i in (2, 3, 1)], "R")
    assert [r.mine for r in ready] == [False, False, True]  # only the root was this request's
    assert [r.line for r in ready] == [1, 2, 1]  # each span's position in its own request
    assert hold.stats.spans == 0 and hold.stats.bytes == 0 and hold.stats.by_root == 1
    # a late child of a decided trace goes at once, into the same run
    assert runs(admit(hold, span(4, parent=1))) == {f"{4:016x}": "R"}


def test_a_trace_whose_root_never_comes_is_decided_after_the_wait() -> None:
    clock = Clock()
    hold = TraceHold(wait_s=30, clock=clock)
    assert admit(hold, span(2, parent=1, session__id="S")) == []
    clock.now = 29.9
    assert hold.due() == [] and hold.next_due() == pytest.approx(0.1)
    clock.now = 30.0
    (r,) = hold.due()
    assert (r.event["run_id"], r.mine, hold.stats.by_wait) == ("S", False, 1)
    assert hold.next_due() is None
    # a request also releases what is due
    clock.now = 40.0
    admit(hold, span(5, parent=9, start=1).copy() | {"traceId": "1" * 32})
    clock.now = 70.0
    assert runs(admit(hold, span(3, parent=1))) == {f"{3:016x}": "S", f"{5:016x}": "1" * 32}


def test_a_re_sent_span_is_held_once() -> None:
    hold = TraceHold(wait_s=60)
    admit(hold, span(2, parent=1))
    admit(hold, span(2, parent=1))
    assert hold.stats.spans == 1
    assert len(admit(hold, span(1))) == 2


def test_when_full_the_oldest_traces_are_decided_early() -> None:
    hold = TraceHold(wait_s=60, max_spans=5)
    out: list[Ready] = []
    for t in range(4):  # 4 traces of 2 children, no roots
        tid = f"{t + 1:032x}"
        out += admit(hold, *[span(i, parent=1) | {"traceId": tid} for i in (2, 3)])
        assert hold.stats.spans <= 5
    # 8 spans, at most 5 held: traces 1 and 2 went early, by fallback (their trace id)
    assert sorted({r.event["run_id"] for r in out}) == [f"{1:032x}", f"{2:032x}"]
    assert hold.stats.by_memory == 2 and hold.stats.spans == 4
    by_bytes = TraceHold(wait_s=60, max_bytes=3 * estimate(request_events(
        request([span(2, parent=1)])).events[0]))
    admit(by_bytes, span(2, parent=1), span(3, parent=1))
    admit(by_bytes, *[span(i, parent=1) | {"traceId": "2" * 32} for i in (2, 3)])
    assert by_bytes.stats.by_memory == 1 and by_bytes.stats.spans == 2


def test_drain_decides_everything_and_later_spans_pass_through() -> None:
    hold = TraceHold(wait_s=60)
    admit(hold, span(2, parent=1, gen_ai__agent__name="G"))
    (r,) = hold.drain()
    assert (r.event["run_id"], r.event["agent"], hold.stats.by_shutdown) == (TID, "G", 1)
    assert len(admit(hold, span(3, parent=1))) == 1  # closed: nothing is held any more


class BusyWriter:
    """A writer with more events waiting than it takes."""

    def submit_events(self, events: list[Any], *_args: Any) -> Any:
        raise Busy("full")


def test_spans_released_into_a_busy_writer_are_not_lost() -> None:
    hold = TraceHold(wait_s=60)
    admit(hold, span(2, parent=1))  # held: its request was answered
    with pytest.raises(Busy):  # the root's request: 503, its client re-sends the root
        asyncio.run(export(BusyWriter(), hold,  # type: ignore[arg-type]
                           request_events(request([span(1, alphatrace__run_id="R")]))))
    assert hold.next_due() == 0.0
    (r,) = hold.due()  # the child is handed out again, for the timer to write
    assert (r.event["span_id"], r.event["run_id"], r.mine) == (f"{2:016x}", "R", False)
    assert hold.due() == [] and hold.next_due() is None


def test_spans_of_a_request_refused_by_a_busy_writer_are_not_held() -> None:
    """Its client re-sends them: then they are held, and written to the store, as new."""
    hold = TraceHold(wait_s=60)
    with pytest.raises(Busy):
        asyncio.run(export(BusyWriter(), hold,  # type: ignore[arg-type]
                           request_events(request([span(2, parent=1)]))))
    assert (hold.stats.spans, hold.stats.traces, hold.next_due()) == (0, 0, None)
    assert admit(hold, span(2, parent=1)) == [] and hold.stats.spans == 1


# -- memory: spans of traces whose root never comes ----------------------------------------
BATCH = 1_000
REMEMBERED_BYTES = 400  # per decided trace kept: its id, the 3 values, the dict entry
IN_FLIGHT = 4 * 2**20  # one request's spans, being admitted


def limit(max_bytes: int, remember: int) -> int:
    """The stated bound on what the hold uses: its byte cap, the decided traces it
    remembers, and the request being admitted."""
    return max_bytes + remember * REMEMBERED_BYTES + IN_FLIGHT


def small_spans(batch: int) -> list[tuple[dict[str, Any], SpanTags, int]]:
    """BATCH small spans (4 per trace, none a root), as the mapping makes them: the events'
    keys and value sizes of `request_events` for a span with one usage attribute."""
    out = []
    for i in range(batch * BATCH, (batch + 1) * BATCH):
        tid, sid = f"{i // 4 + 1:032x}", f"{i + 1:016x}"
        ev = {"type": "telemetry", "event_id": f"otlp:{tid}:{sid}", "tokens_in": 10,
              "errors": 0, "span_name": "llm", "trace_id": tid, "span_id": sid,
              "parent_span_id": "00000000000000ff", "service_name": "svc",
              "ts": "2025-03-01T08:00:00.000001Z", "start_ts": "2025-03-01T08:00:00.000001Z",
              "end_ts": "2025-03-01T08:00:00.001001Z", "span_ms": 1.0, "run_id": tid,
              "agent": "svc"}
        out.append((ev, span_tags(tid, sid, False, 1, {}, {"service.name": "svc"}), 1))
    return out


def test_the_shape_of_the_memory_test_spans_is_the_mappings() -> None:
    m = request_events(request([span(2, parent=255, gen_ai__usage__input_tokens=10)]))
    (ev, tags, _), = small_spans(0)[:1]
    assert set(ev) == set(m.events[0]) and tags.values == m.tags[0].values


def test_unresolved_spans_stay_within_the_memory_bound() -> None:
    """50,000 spans without roots, 1,000 per request, through a hold capped at 2 MiB (about
    1,200 small spans; so 40 times the cap): the oldest traces go early, nothing is dropped,
    and every Python allocation (tracemalloc) stays under the stated bound."""
    max_bytes, remember = 2 * 2**20, 5_000
    hold = TraceHold(wait_s=1e9, max_bytes=max_bytes, remember=remember)
    released = peak_held = 0
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for b in range(50):
            released += len(hold.admit(small_spans(b)))
            peak_held = max(peak_held, hold.stats.bytes)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert released + hold.stats.spans == 50 * BATCH  # nothing dropped
    assert max_bytes * 0.9 < peak_held <= max_bytes  # the cap is what binds
    assert hold.stats.by_memory > 0
    assert peak <= limit(max_bytes, remember), peak


def rss() -> int:
    """This process's resident memory now (Linux)."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
def test_a_million_unresolved_spans_stay_within_the_memory_bound() -> None:
    """1M spans of 250,000 traces without roots, 1,000 per request, through a hold with a
    16 MiB cap: the process's resident memory grows by less than the stated bound at every
    request (unbounded, the held spans alone would take about 1.5 GB)."""
    max_bytes, remember = 16 * 2**20, 20_000
    hold = TraceHold(wait_s=1e9, max_bytes=max_bytes, remember=remember)
    released = growth = 0
    gc.collect()
    base = rss()
    for b in range(1_000):
        released += len(hold.admit(small_spans(b)))
        growth = max(growth, rss() - base)
    assert released + hold.stats.spans == 1_000_000
    assert hold.stats.bytes <= max_bytes and hold.stats.by_memory > 200_000 // 4
    assert growth <= limit(max_bytes, remember), growth


def test_the_size_estimate_does_not_under_count() -> None:
    """What a held small span really costs (its event, tags and hold entry, tracemalloc) is
    at most the estimate the bound is enforced with."""
    n = 20_000
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        hold = TraceHold(wait_s=1e9, max_bytes=2**40, max_spans=2**40)
        for b in range(n // BATCH):
            hold.admit(small_spans(b))
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert hold.stats.spans == n
    assert used <= hold.stats.bytes, (used / n, hold.stats.bytes / n)


# -- through a collector ------------------------------------------------------------------
otel = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

NS = 1_740_816_000_000_000_000


def agent_trace(run_id: str | None, session: str | None = None
                ) -> tuple[ReadableSpan, list[ReadableSpan], str]:
    """(root, its two LLM-call children, trace id): the tags only on the root."""
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "svc-hold"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("t")
    root = tracer.start_span("agent.run", start_time=NS)
    if run_id:
        root.set_attribute("alphatrace.run_id", run_id)
        root.set_attribute("alphatrace.agent", "HoldAgent")
    ctx = trace.set_span_in_context(root)
    for i in range(2):
        llm = tracer.start_span("chat", context=ctx, start_time=NS + (i + 1) * 10**8)
        llm.set_attribute("gen_ai.request.model", "gpt-4o")
        llm.set_attribute("gen_ai.usage.input_tokens", 1000)
        llm.set_attribute("gen_ai.usage.output_tokens", 100)
        if session:
            llm.set_attribute("session.id", session)
        llm.end(end_time=NS + (i + 1) * 10**8 + 5 * 10**7)
    root.end(end_time=NS + 10**9)
    spans = list(mem.get_finished_spans())
    return spans[-1], spans[:-1], format(root.get_span_context().trace_id, "032x")


def exporter(srv: Server) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=srv.url + "/v1/traces",
                            headers={"Authorization": f"Bearer {srv.keys['ingest']}"})


def test_children_sent_before_their_root_land_in_its_run(server: Server) -> None:
    run_id = f"hold-{uuid.uuid4()}"
    root, children, tid = agent_trace(run_id)
    exp = exporter(server)
    for s in children:  # each child in its own request, then the root
        assert exp.export([s]) == SpanExportResult.SUCCESS
    assert exp.export([root]) == SpanExportResult.SUCCESS
    exp.shutdown()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        events = c.get(f"/v1/runs/{run_id}", headers=server.auth("read")).json()["events"]
        assert c.get(f"/v1/runs/{tid}", headers=server.auth("read")).status_code == 404
    assert len(events) == 3 and {e["agent"] for e in events} == {"HoldAgent"}
    assert sum(e["tokens_in"] or 0 for e in events) == 2000
    # gpt-4o: 2 × (1000·2.50 + 100·10.00) / 1e6
    assert sum(e["cost_usd"] or 0 for e in events) == pytest.approx(0.007)


def test_spans_held_at_shutdown_are_written(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        _, children, tid = agent_trace("never-seen", session="sess-held")
        exp = exporter(srv)
        assert exp.export(children) == SpanExportResult.SUCCESS  # the root never comes
        exp.shutdown()
    finally:
        srv.stop()  # SIGTERM: a clean stop
    with Store(srv.db, read_only=True) as s:
        rows = s.con.execute("SELECT run_id, agent FROM telemetry WHERE event_id LIKE ?",
                             [f"otlp:{tid}:%"]).fetchall()
    assert rows == [("sess-held", "svc-hold")] * 2  # decided by the fallbacks


def test_spans_held_when_the_collector_is_killed_land_in_their_run_after_a_restart(
        tmp_path: Path) -> None:
    """kill -9 with two children held (answered success): the restarted collector holds them
    again, and the root sent to it brings them into its run, as without the kill."""
    run_id = f"killed-{uuid.uuid4()}"
    root, children, tid = agent_trace(run_id)
    srv = start_server(tmp_path, "--no-pipeline")
    try:
        exp = exporter(srv)
        assert exp.export(children) == SpanExportResult.SUCCESS
        exp.shutdown()
    finally:
        srv.proc.kill()  # SIGKILL: no shutdown, nothing written at stop
        srv.proc.wait(30)
    with Store(srv.db, read_only=True) as s:
        assert s.con.execute("SELECT count(*) FROM telemetry").fetchall() == [(0,)]
        assert s.con.execute("SELECT count(*) FROM otlp_held WHERE trace_id = ?",
                             [tid]).fetchall() == [(2,)]
    keys = srv.keys
    srv = start_server(tmp_path, "--no-pipeline", keys=False)
    srv.keys = keys
    try:
        exp = exporter(srv)
        assert exp.export([root]) == SpanExportResult.SUCCESS
        exp.shutdown()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            events = c.get(f"/v1/runs/{run_id}", headers=srv.auth("read")).json()["events"]
    finally:
        srv.stop()
    assert len(events) == 3 and {e["agent"] for e in events} == {"HoldAgent"}
    assert sum(e["tokens_in"] or 0 for e in events) == 2000
    with Store(srv.db, read_only=True) as s:  # released: their held rows went with them
        assert s.con.execute("SELECT count(*) FROM otlp_held").fetchall() == [(0,)]


def test_restored_spans_wait_only_what_they_had_left(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    hold = TraceHold(wait_s=30, clock=lambda: clock[0])
    m = request_events(request([span(2, parent=1, session__id="S")]))
    # restore reads the wall clock: fixed, so a stalled machine cannot age the span further
    monkeypatch.setattr(time, "time", lambda: 1_000.0)
    hold.restore([(m.events[0], m.tags[0], 980.0)])  # held 20 s before the stop
    assert hold.stats.spans == 1 and hold.next_due() == pytest.approx(10, abs=1)
    clock[0] += 11
    (r,) = hold.due()
    assert (r.event["run_id"], r.trace) == ("S", TID)


def test_a_trace_whose_root_never_comes_is_written_after_the_wait(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    with Store(db) as s:
        key = create_key(s, "k", "admin")["key"]
    app = create_app(db, trace_hold=TraceHold(wait_s=0.3))
    _, children, tid = agent_trace(None)
    from tests.server.test_otlp import otlp_json

    with TestClient(app) as c:
        h = {"Authorization": f"Bearer {key}"}
        assert c.post("/v1/traces", json=otlp_json(children, hex_ids=True), headers=h).json() == {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            res = c.get(f"/v1/runs/{tid}", headers=h)
            if res.status_code == 200 and len(res.json()["events"]) == 2:
                break
            time.sleep(0.1)
        assert res.status_code == 200 and {e["agent"] for e in res.json()["events"]} == {
            "svc-hold"}


# -- the hold's bounds as `serve` flags -----------------------------------------------------
class Captured(Exception):
    """Raised by a stand-in create_app: the hold `serve` built, before anything listens."""

    def __init__(self, hold: TraceHold) -> None:
        super().__init__("captured")
        self.hold = hold


def test_serve_flags_set_the_holds_bounds(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import alphatrace.server.app as app_module
    from alphatrace.cli.app import app

    def fake_create_app(*_a: Any, trace_hold: TraceHold, **_k: Any) -> Any:
        raise Captured(trace_hold)

    monkeypatch.setattr(app_module, "create_app", fake_create_app)
    db = str(tmp_path / "c.duckdb")
    res = CliRunner().invoke(app, ["serve", "--db", db, "--no-pipeline", "--otlp-hold-seconds",
                                   "2.5", "--otlp-hold-spans", "7", "--otlp-hold-bytes", "9000"])
    assert isinstance(res.exception, Captured), res.output
    hold = res.exception.hold
    assert (hold.wait_s, hold.max_spans, hold.max_bytes) == (2.5, 7, 9000)
    res = CliRunner().invoke(app, ["serve", "--db", db, "--no-pipeline"])
    assert isinstance(res.exception, Captured)
    defaults = TraceHold()
    assert (res.exception.hold.wait_s, res.exception.hold.max_spans,
            res.exception.hold.max_bytes) == (defaults.wait_s, defaults.max_spans,
                                              defaults.max_bytes)
    res = CliRunner().invoke(app, ["serve", "--db", db, "--otlp-hold-spans", "-1"])
    assert res.exit_code == 2 and "--otlp-hold-spans" in res.output


def test_a_server_that_holds_nothing_writes_children_at_once(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--no-pipeline", "--otlp-hold-spans", "0")
    try:
        _, children, tid = agent_trace(None, session="sess-now")
        exp = exporter(srv)
        assert exp.export(children) == SpanExportResult.SUCCESS  # no root: held by default
        exp.shutdown()
        with httpx.Client(base_url=srv.url, timeout=30) as c:  # already stored, no wait
            events = c.get("/v1/runs/sess-now", headers=srv.auth("read")).json()["events"]
    finally:
        srv.stop()
    assert len(events) == len(children) == 2  # decided by the fallbacks: session, service
    assert {e["agent"] for e in events} == {"svc-hold"} and tid
