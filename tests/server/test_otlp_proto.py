"""The protobuf reader (`otlp_proto`) gives the mapping what protobuf's own JSON mapping
(`MessageToDict`, the reference) gives it: the same events and the same rejections, for any
request; and `message_events`, which maps the message without its JSON form, gives what the
JSON path (`otlp.request_events`) makes of that form, down to the order of the events' keys."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from alphatrace.sdk.prices import shipped_table
from alphatrace.server.otlp import Mapped, request_events
from alphatrace.server.otlp_proto import message_events, request_doc

KEYS = st.sampled_from([
    "alphatrace.run_id", "alphatrace.agent", "alphatrace.strategy", "alphatrace.cost_usd",
    "session.id", "gen_ai.agent.name", "agent.name", "service.name", "gen_ai.request.model",
    "gen_ai.response.model", "llm.model_name", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens", "error.type",
    "llm.token_count.prompt", "exception.type", "other"])
SCALARS = st.one_of(
    st.builds(lambda v: AnyValue(string_value=v), st.sampled_from(["gpt-4o", "x", "", "7"])),
    st.builds(lambda v: AnyValue(int_value=v), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: AnyValue(double_value=v), st.floats(allow_nan=False)),
    st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
    st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=4)),
    st.just(AnyValue()),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(inner, max_size=3)),
    st.builds(lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs)),
              st.lists(st.builds(KeyValue, key=KEYS, value=inner), max_size=3))), max_leaves=3)
ATTRS = st.lists(st.builds(KeyValue, key=KEYS, value=VALUES), max_size=6)
IDS16 = st.one_of(st.just(b""), st.just(bytes(16)), st.binary(min_size=16, max_size=16),
                  st.binary(max_size=17))
IDS8 = st.one_of(st.just(b""), st.binary(min_size=8, max_size=8), st.binary(max_size=9))
SPANS = st.builds(
    Span, trace_id=IDS16, span_id=IDS8, parent_span_id=IDS8, name=st.text(max_size=5),
    start_time_unix_nano=st.integers(0, 2**64 - 1), end_time_unix_nano=st.integers(0, 2**64 - 1),
    attributes=ATTRS, status=st.builds(Status, code=st.sampled_from([0, 1, 2])),
    events=st.lists(st.builds(Span.Event, name=st.sampled_from(["exception", "log"]),
                              attributes=ATTRS), max_size=2))
REQUESTS = st.builds(lambda rss: ExportTraceServiceRequest(resource_spans=rss), st.lists(
    st.builds(ResourceSpans, resource=st.builds(Resource, attributes=ATTRS),
              scope_spans=st.lists(st.builds(ScopeSpans, spans=st.lists(SPANS, max_size=4)),
                                   max_size=2)), max_size=2))


def mapped(doc: Any) -> tuple[list[dict[str, Any]], list[tuple[int, str | None, str]]]:
    m = request_events(doc, shipped_table())
    return m.events, [(r.index, r.field, r.reason) for r in m.rejected]


@settings(max_examples=300)
@given(REQUESTS)
def test_same_events_as_protobufs_json_mapping(msg: ExportTraceServiceRequest) -> None:
    msg = ExportTraceServiceRequest.FromString(msg.SerializeToString())  # as received
    assert mapped(request_doc(msg)) == mapped(MessageToDict(msg))


def whole(m: Mapped) -> tuple[Any, ...]:
    """Everything a Mapped says, with each event's keys in order (they make the stored attrs)."""
    return ([list(e.items()) for e in m.events], m.positions, m.tags, m.traces,
            [(r.index, r.field, r.reason, r.span) for r in m.rejected])


@settings(max_examples=300)
@given(REQUESTS)
def test_message_events_are_the_json_paths_events(msg: ExportTraceServiceRequest) -> None:
    msg = ExportTraceServiceRequest.FromString(msg.SerializeToString())  # as received
    prices = shipped_table()
    assert whole(message_events(msg, prices)) == whole(request_events(request_doc(msg), prices))
    reference = request_events(MessageToDict(msg), prices)
    assert [list(e.items()) for e in message_events(msg, prices).events] == [
        list(e.items()) for e in reference.events]
