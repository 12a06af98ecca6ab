"""OTLP protocols: the stock HTTP exporter at the root endpoint (plain and gzip), partial success
in protobuf and JSON with the rejected spans in quarantine, and a store error that costs one
event instead of the request."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from tests.server.conftest import Server
from tests.server.test_otlp import T0, export_and_read, make_spans

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_stock_exporter_with_the_base_url(server: Server, compression: Compression,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT=http://host:port: the exporter posts to <base>/v1/traces."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
    spans, tid = make_spans({"service.name": f"root-{compression.value}"})
    exporter = OTLPSpanExporter(headers={"Authorization": f"Bearer {server.keys['ingest']}"},
                                compression=compression)
    assert exporter._endpoint == server.url + "/v1/traces"  # what the env var gives
    events = export_and_read(server, exporter, spans, tid)
    assert sorted(e["tokens_in"] or 0 for e in events) == [0, 1830]
    assert {e["agent"] for e in events} == {f"root-{compression.value}"}


# -- partial success ----------------------------------------------------------------------
TID = "5b8efff798038103d269b633813fc60c"


def span(sid: str, **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"traceId": TID, "spanId": sid, "name": "llm",
                         "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 10**9)}
    attrs = [{"key": "alphatrace.run_id", "value": {"stringValue": extra.pop("run")}}]
    for k, v in extra.pop("attrs", {}).items():
        attrs.append({"key": k, "value": v})
    s["attributes"] = attrs
    s.update(extra)
    return s


def bad_request(run: str) -> dict[str, Any]:
    """Five spans: 0 and 4 good; 1 a token count of 1e20; 2 a start 1e30 ns; 3 no trace id."""
    spans = [
        span("0000000000000001", run=run, attrs={"gen_ai.usage.input_tokens": {"intValue": "7"}}),
        span("0000000000000002", run=run,
             attrs={"gen_ai.usage.input_tokens": {"intValue": "100000000000000000000"}}),
        span("0000000000000003", run=run, startTimeUnixNano="1" + "0" * 30),
        {**span("0000000000000004", run=run), "traceId": ""},
        span("0000000000000005", run=run, attrs={"gen_ai.usage.output_tokens": {"doubleValue": 3}}),
    ]
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "partial"}}]},
        "scopeSpans": [{"spans": spans}]}]}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app in-process (its store is readable from the test: quarantine has no route)."""
    from alphatrace.store import Store

    db = tmp_path / "otlp.duckdb"
    with Store(db) as store:
        key = create_key(store, "t", "admin")["key"]
    with TestClient(create_app(db)) as c:
        yield c, {"Authorization": f"Bearer {key}"}


def quarantined(c: TestClient) -> list[dict[str, Any]]:
    with c.app.state.writer.reader() as cur:  # type: ignore[attr-defined]
        rows = cur.execute("SELECT path, line, kind, field, reason, raw FROM quarantine "
                           "ORDER BY path, line").fetchall()
    return [dict(zip(["path", "line", "kind", "field", "reason", "raw"], r, strict=True))
            for r in rows]


def stored(c: TestClient, auth: dict[str, str], run: str) -> list[str]:
    return [e["event_id"] for e in c.get(f"/v1/runs/{run}", headers=auth).json()["events"]]


def test_bad_spans_are_rejected_one_by_one_json(local: tuple[TestClient, dict[str, str]]) -> None:
    c, auth = local
    run = f"partial-{uuid.uuid4()}"
    res = c.post("/v1/traces", json=bad_request(run), headers=auth)
    assert res.status_code == 200
    ps = res.json()["partialSuccess"]
    assert int(ps["rejectedSpans"]) == 3
    msg = ps["errorMessage"]
    assert msg.startswith("3 span(s) rejected")
    assert "span 1: gen_ai.usage.input_tokens: 100000000000000000000 is out of range" in msg
    assert "span 2: startTimeUnixNano:" in msg and "past the year 9999" in msg
    assert "span 3: traceId:" in msg
    assert stored(c, auth, run) == [f"otlp:{TID}:0000000000000001", f"otlp:{TID}:0000000000000005"]
    q = quarantined(c)
    assert [(r["path"], r["line"], r["field"]) for r in q] == [
        ("<otlp>", 2, "gen_ai.usage.input_tokens"), ("<otlp>", 3, "startTimeUnixNano"),
        ("<otlp>", 4, "traceId")]
    assert json.loads(q[0]["raw"])["spanId"] == "0000000000000002"
    # An exporter's retry: the good spans are duplicates, the bad ones not quarantined twice.
    again = c.post("/v1/traces", json=bad_request(run), headers=auth)
    assert again.json() == res.json() and len(quarantined(c)) == 3


def test_partial_success_in_protobuf(local: tuple[TestClient, dict[str, str]]) -> None:
    c, auth = local
    run = f"partial-pb-{uuid.uuid4()}"
    from google.protobuf.json_format import ParseDict

    doc = bad_request(run)
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # protobuf JSON: base64 ids
        for k in ("traceId", "spanId"):
            s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    # Protobuf cannot carry 1e20 in an int64 nor 1e30 in a fixed64: those become in-range
    # values there, so only the span without a trace id is rejected.
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["attributes"][1]["value"] = {"intValue": "9"}
    spans[2]["startTimeUnixNano"] = str(T0)
    body = ParseDict(doc, ExportTraceServiceRequest()).SerializeToString()
    res = c.post("/v1/otlp/v1/traces", content=body,
                 headers={**auth, "Content-Type": "application/x-protobuf"})
    assert res.status_code == 200 and res.headers["content-type"] == "application/x-protobuf"
    msg = ExportTraceServiceResponse.FromString(res.content)
    assert msg.partial_success.rejected_spans == 1
    assert msg.partial_success.error_message.startswith("1 span(s) rejected")
    assert "span 3: traceId" in msg.partial_success.error_message
    assert len(stored(c, auth, run)) == 4
    full = c.post("/v1/traces", content=ExportTraceServiceRequest().SerializeToString(),
                  headers={**auth, "Content-Type": "application/protobuf"})
    assert full.headers["content-type"] == "application/protobuf"
    assert ExportTraceServiceResponse.FromString(full.content) == ExportTraceServiceResponse()


def test_an_event_the_store_cannot_take_costs_only_itself(
    local: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If ingest raises on a batch (a value it did not foresee), the batch is split until the
    events that raise are alone: those are rejected and quarantined, the rest stored."""
    c, auth = local
    writer = c.app.state.writer  # type: ignore[attr-defined]
    real = writer.submit_events

    def submit(events: list[Any], source: str = "<http>") -> Future[Any]:
        if any(e.get("poison") for e in events):
            fut: Future[Any] = Future()
            fut.set_exception(duckdb.ConversionException(
                'Conversion Error: bad value\nfrom column "tokens_in"'))
            return fut
        return real(events, source)

    monkeypatch.setattr(writer, "submit_events", submit)
    run = f"poison-{uuid.uuid4()}"
    poisoned = {2, 5, 6}
    batch = [{"type": "telemetry", "run_id": run, "agent": "p", "ts": "2025-03-01T08:00:00Z",
              "event_id": f"{run}:{i}", "poison": i in poisoned} for i in range(9)]
    res = c.post("/v1/events", json=batch, headers=auth)
    assert res.status_code == 207
    doc = res.json()
    assert (doc["accepted"], doc["rejected"]) == (6, 3)
    assert [r["index"] for r in doc["results"]] == list(range(9))
    bad = [r for r in doc["results"] if r["status"] == "rejected"]
    assert [r["index"] for r in bad] == sorted(poisoned)
    assert all(r["field"] == "tokens_in" and r["reason"] == "cannot be stored: Conversion Error: "
               "bad value" for r in bad)
    assert sorted(stored(c, auth, run)) == sorted(f"{run}:{i}" for i in range(9) if i not in poisoned)
    q = [r for r in quarantined(c) if r["path"] == "<http>"]
    assert [r["line"] for r in q] == [3, 6, 7]  # 1-based positions in the request
    assert json.loads(q[0]["raw"])["event_id"] == f"{run}:2"


def test_a_server_failure_is_not_blamed_on_the_events(
    local: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error is the server's: no splitting, no quarantine, a 500 the client retries."""
    c, auth = local
    calls: list[int] = []

    def broken(events: list[Any], source: str = "<http>") -> Future[Any]:
        calls.append(len(events))
        fut: Future[Any] = Future()
        fut.set_exception(duckdb.IOException("IO Error: No space left on device"))
        return fut

    monkeypatch.setattr(c.app.state.writer, "submit_events", broken)  # type: ignore[attr-defined]
    batch = [{"type": "telemetry", "run_id": "io", "agent": "a", "event_id": f"io:{i}"}
             for i in range(4)]
    with pytest.raises(duckdb.IOException):
        c.post("/v1/events", json=batch, headers=auth)
    assert calls == [4] and quarantined(c) == []


def test_out_of_range_values_never_500_on_events(local: tuple[TestClient, dict[str, str]]) -> None:
    """The real store, no patching: an event whose token count DuckDB cannot hold is rejected
    alone (by ingest's own checks, or by the split above), never a 500."""
    c, auth = local
    run = f"range-{uuid.uuid4()}"
    batch = [{"type": "telemetry", "run_id": run, "agent": "r", "ts": "2025-03-01T08:00:00Z",
              "event_id": f"{run}:{i}", "tokens_in": 10**20 if i == 1 else 5} for i in range(3)]
    res = c.post("/v1/events", json=batch, headers=auth)
    assert res.status_code == 207
    assert [r["status"] for r in res.json()["results"]] == ["accepted", "rejected", "accepted"]
    assert any(r["path"] == "<http>" and json.loads(r["raw"])["event_id"] == f"{run}:1"
               for r in quarantined(c))


def test_a_busy_writer_is_503_with_retry_after(
    local: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from alphatrace.server.writer import Busy

    c, auth = local

    def busy(events: list[Any], *_args: Any, **_kw: Any) -> Future[Any]:
        raise Busy("500000 events waiting")

    monkeypatch.setattr(c.app.state.writer, "submit_events", busy)  # type: ignore[attr-defined]
    for path, body in (("/v1/events", [{"type": "telemetry"}]), ("/v1/traces", bad_request("b"))):
        res = c.post(path, json=body, headers=auth)
        assert res.status_code == 503 and res.headers["retry-after"] == "1"
        assert res.json() == {"detail": "collector busy: retry later"}


def test_quarantine_records_each_bad_item_once(tmp_path: Path) -> None:
    from alphatrace.server.quarantine import Bad, record
    from alphatrace.store import Store

    bad = [Bad(1, "telemetry", "traceId", "missing", '{"a":1}'),
           Bad(2, None, None, "x", '{"b":' + "9" * 5000 + "}"),
           Bad(1, "telemetry", "traceId", "missing", '{"a":1}')]  # the same item twice
    with Store(tmp_path / "q.duckdb") as store:
        assert record(store, "<otlp>", bad) == 2
        assert record(store, "<otlp>", bad) == 0  # a retry adds nothing
        assert record(store, "<http>", bad[:1]) == 1  # another route is another source
        rows = store.con.execute("SELECT path, line, kind, field, reason, length(raw) "
                                 "FROM quarantine ORDER BY path, line").fetchall()
    assert rows == [("<http>", 1, "telemetry", "traceId", "missing", 7),
                    ("<otlp>", 1, "telemetry", "traceId", "missing", 7),
                    ("<otlp>", 2, None, None, "x", 4096)]  # raw kept up to 4096 characters
