"""OTLP traces from the OpenTelemetry Python SDK land on the run with their tokens and latency."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.sdk.prices import shipped_table
from alphatrace.server.otlp import (
    MAX_NANOS,
    any_value,
    iso_from_nanos,
    request_events,
    trace_id,
)
from tests.server.conftest import Server

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")

from google.protobuf.json_format import MessageToDict  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import Status, StatusCode  # noqa: E402

T0 = 1_740_816_000_000_000_000  # 2025-03-01T08:00:00Z in ns


def make_spans(resource: dict[str, Any], run_attr: str | None = None,
               error: bool = False) -> tuple[list[ReadableSpan], str]:
    """A root 'agent' span of 1,250 ms around an LLM call span of 900 ms with usage attrs."""
    exp = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create(resource))
    tp.add_span_processor(SimpleSpanProcessor(exp))
    tracer = tp.get_tracer("agent")
    root = tracer.start_span("agent.run", start_time=T0)
    if run_attr:
        root.set_attribute("alphatrace.run_id", run_attr)
    from opentelemetry import trace

    ctx = trace.set_span_in_context(root)
    llm = tracer.start_span("chat gpt-4o", context=ctx, start_time=T0 + 100_000_000)
    llm.set_attribute("gen_ai.request.model", "gpt-4o")
    llm.set_attribute("gen_ai.usage.input_tokens", 1830)
    llm.set_attribute("gen_ai.usage.output_tokens", 421)
    if run_attr:
        llm.set_attribute("alphatrace.run_id", run_attr)
    if error:
        llm.set_attribute("error.type", "RateLimitError")
        llm.set_status(Status(StatusCode.ERROR))
    llm.end(end_time=T0 + 1_000_000_000)
    root.end(end_time=T0 + 1_250_000_000)
    spans = list(exp.get_finished_spans())
    return spans, format(root.get_span_context().trace_id, "032x")


def otlp_json(spans: list[ReadableSpan], hex_ids: bool) -> dict[str, Any]:
    """OTLP JSON of the spans. `hex_ids`: the OTLP/JSON spec's form (hex ids, integer enums);
    otherwise protobuf's canonical JSON mapping (base64 ids), which some exporters send."""
    doc = MessageToDict(encode_spans(spans), use_integers_for_enums=hex_ids)
    if hex_ids:
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in s:
                            s[k] = base64.b64decode(s[k]).hex()
    return doc


def export_and_read(server: Server, exporter: Any, spans: list[ReadableSpan],
                    run_id: str) -> list[dict[str, Any]]:
    """Export `spans` with a stock exporter; then the events of `run_id` from the read API."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        events: list[dict[str, Any]] = c.get(
            f"/v1/runs/{run_id}", headers=server.auth("read")).json()["events"]
    return events


def test_otel_sdk_payload_lands_on_the_run(client: httpx.Client, server: Server) -> None:
    spans, tid = make_spans({"service.name": "otel-agent", "alphatrace.strategy": "FUNDING"})
    res = client.post("/v1/otlp/v1/traces", json=otlp_json(spans, hex_ids=True),
                      headers=server.auth("ingest"))
    assert res.status_code == 200 and res.json() == {}
    run = client.get(f"/v1/runs/{tid}", headers=server.auth("read"))
    assert run.status_code == 200
    events = run.json()["events"]
    assert len(events) == 2 and {e["type"] for e in events} == {"telemetry"}
    root, llm = events  # ordered by ts: the root starts first
    assert root["agent"] == llm["agent"] == "otel-agent"
    assert root["strategy"] == "FUNDING"
    assert root["latency_ms"] == pytest.approx(1250.0)
    assert root["start_ts"] == "2025-03-01T08:00:00.000000Z"
    assert root["end_ts"] == "2025-03-01T08:00:01.250000Z"
    assert (llm["tokens_in"], llm["tokens_out"], llm["model"]) == (1830, 421, "gpt-4o")
    assert llm["latency_ms"] is None  # a child span: its time is inside the root's
    assert llm["attrs"]["span_ms"] == pytest.approx(900.0)
    # gpt-4o at 2.50 / 10.00 USD per 1M tokens: 1830·2.5e-6 + 421·1e-5
    assert llm["cost_usd"] == pytest.approx(0.004575 + 0.00421)
    assert llm["errors"] == 0 and root["errors"] == 0
    # The same spans in protobuf's JSON mapping (base64 ids) are the same events.
    again = client.post("/v1/otlp/v1/traces", json=otlp_json(spans, hex_ids=False),
                        headers=server.auth("ingest"))
    assert again.status_code == 200
    assert len(client.get(f"/v1/runs/{tid}", headers=server.auth("read")).json()["events"]) == 2


def test_run_id_attribute_and_errors(client: httpx.Client, server: Server) -> None:
    run_id = f"otel-{uuid.uuid4()}"
    spans, tid = make_spans({"service.name": "svc", "alphatrace.agent": "NamedAgent"},
                            run_attr=run_id, error=True)
    res = client.post("/v1/otlp/v1/traces", json=otlp_json(spans, hex_ids=True),
                      headers=server.auth("ingest"))
    assert res.status_code == 200
    assert client.get(f"/v1/runs/{tid}", headers=server.auth("read")).status_code == 404
    events = client.get(f"/v1/runs/{run_id}", headers=server.auth("read")).json()["events"]
    assert [e["agent"] for e in events] == ["NamedAgent", "NamedAgent"]
    assert [e["errors"] for e in events] == [0, 1]
    assert events[1]["attrs"]["error_type"] == "RateLimitError"


def test_real_otlp_exporter_protobuf(server: Server) -> None:
    exporter_mod = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    spans, tid = make_spans({"service.name": "proto-agent"})
    exporter = exporter_mod.OTLPSpanExporter(
        endpoint=server.url + "/v1/otlp/v1/traces",
        headers={"Authorization": f"Bearer {server.keys['ingest']}"},
    )
    events = export_and_read(server, exporter, spans, tid)
    assert sorted(e["tokens_in"] or 0 for e in events) == [0, 1830]


def test_otlp_needs_ingest_scope_and_a_json_object(client: httpx.Client, server: Server) -> None:
    assert client.post("/v1/otlp/v1/traces", json={}).status_code == 401
    assert client.post("/v1/otlp/v1/traces", json={}, headers=server.auth("read")).status_code == 403
    assert client.post("/v1/otlp/v1/traces", json=[1], headers=server.auth("ingest")).status_code == 400
    assert client.post("/v1/otlp/v1/traces", content=b"\x00\x01garbage",
                       headers={**server.auth("ingest"), "Content-Type": "application/x-protobuf"}
                       ).status_code == 400
    assert client.post("/v1/otlp/v1/traces", json={}, headers=server.auth("ingest")).json() == {}


# -- the mapping, pure --------------------------------------------------------------------
def test_ids_values_and_times() -> None:
    assert trace_id("0af7651916cd43dd8448eb211c80319c", 16) == "0af7651916cd43dd8448eb211c80319c"
    assert trace_id(base64.b64encode(bytes.fromhex("00f067aa0ba902b7")).decode(), 8) == "00f067aa0ba902b7"
    assert trace_id("0" * 32, 16) is None and trace_id("xyz", 16) is None and trace_id(None, 8) is None
    assert any_value({"intValue": "1830"}) == 1830 and any_value({"doubleValue": 0.5}) == 0.5
    assert any_value({"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": True}]}}) == ["a", True]
    assert any_value({"kvlistValue": {"values": [{"key": "k", "value": {"intValue": 2}}]}}) == {"k": 2}
    assert iso_from_nanos(T0 + 1_500) == "2025-03-01T08:00:00.000001Z"


def test_spans_without_ids_are_counted_not_mapped() -> None:
    doc = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "s"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "", "spanId": "00f067aa0ba902b7"},
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7",
             "attributes": [{"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "7"}},
                            {"key": "gen_ai.request.model", "value": {"stringValue": "mystery"}}],
             "status": {"code": "STATUS_CODE_ERROR"}},
        ]}]}]}
    mapped = request_events(doc, shipped_table())
    assert [(r.index, r.field) for r in mapped.rejected] == [(0, "traceId")]
    assert len(mapped.events) == 1 and mapped.positions == [1]
    ev = mapped.events[0]
    assert ev["run_id"] == "0af7651916cd43dd8448eb211c80319c" and ev["agent"] == "s"
    assert ev["tokens_in"] == 7 and ev["errors"] == 1 and "cost_usd" not in ev  # unknown model
    assert ev["event_id"] == "otlp:0af7651916cd43dd8448eb211c80319c:00f067aa0ba902b7"
    assert request_events([], None).spans == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "attributes",
                         "key", "value", "stringValue", "intValue", "status", "code", "resource",
                         "startTimeUnixNano", "endTimeUnixNano", "parentSpanId", "x"]),
        inner, max_size=5),
    max_leaves=30,
)


@given(JSON)
def test_mapping_never_raises_on_any_json(doc: Any) -> None:
    mapped = request_events(doc, shipped_table())
    assert len(mapped.positions) == len(mapped.events)
    assert sorted(mapped.positions + [r.index for r in mapped.rejected]) == list(range(mapped.spans))
    for ev in mapped.events:
        assert ev["type"] == "telemetry" and ev["event_id"].startswith("otlp:")


@given(st.one_of(st.integers(-(10**19), MAX_NANOS),  # whole seconds: no fraction written
                 st.integers(-(10**10), MAX_NANOS // 10**9).map(lambda s: s * 10**9)))
def test_iso_from_nanos_is_datetimes_isoformat(n: int) -> None:
    """The cached form writes what datetime does for the same instant (microsecond, truncated)."""
    expected = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=n // 1000)).isoformat()
    assert iso_from_nanos(n) == expected + "Z"
