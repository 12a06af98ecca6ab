"""A decoded OTLP protobuf ExportTraceServiceRequest → the OTLP/JSON dict shape the mapping reads.

Why not protobuf's `MessageToDict`: it walks every field by reflection, which cost about twice
the rest of the span mapping (bench/bench_otlp.py). This reads only the fields the mapping uses
(`otlp.request_events`): resource attributes; per span the ids (as hex, the OTLP/JSON spelling),
name, times, attributes, status and events. Attribute lists come already decoded (`Decoded`,
the plain dict `otlp.attributes` makes of a JSON list), which saves building the JSON form of
every value only to read it back.
"""

from __future__ import annotations

import base64
from typing import Any

from alphatrace.server.otlp import Decoded


def _value(v: Any) -> Any:
    """An AnyValue as the plain value `otlp.any_value` makes of its JSON form."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _attributes(kvs: Any) -> Decoded:
    return Decoded((kv.key, _value(kv.value)) for kv in kvs)


def _span(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": s.trace_id.hex(), "spanId": s.span_id.hex(),
        "startTimeUnixNano": s.start_time_unix_nano, "endTimeUnixNano": s.end_time_unix_nano,
        "attributes": _attributes(s.attributes)}
    if s.name:  # an unset field is left out, as protobuf's JSON mapping leaves it out
        out["name"] = s.name
    if s.parent_span_id:
        out["parentSpanId"] = s.parent_span_id.hex()
    if s.status.code:
        out["status"] = {"code": int(s.status.code), "message": s.status.message}
    if s.events:
        out["events"] = [{"name": e.name, "timeUnixNano": e.time_unix_nano,
                          "attributes": _attributes(e.attributes)} for e in s.events]
    return out


def request_doc(msg: Any) -> dict[str, Any]:
    """The OTLP/JSON shape of an ExportTraceServiceRequest message (the fields mapped)."""
    return {"resourceSpans": [
        {"resource": {"attributes": _attributes(rs.resource.attributes)},
         "scopeSpans": [{"spans": [_span(s) for s in ss.spans]} for ss in rs.scope_spans]}
        for rs in msg.resource_spans]}


def decode_protobuf(body: bytes) -> Any:
    """OTLP protobuf bytes → the dict shape of OTLP JSON (`request_doc`)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    msg = ExportTraceServiceRequest()
    msg.ParseFromString(body)
    return request_doc(msg)


def message_doc(msg: Any) -> Any:
    """A decoded ExportTraceServiceRequest (HTTP protobuf or gRPC) → the OTLP JSON dict shape,
    its attribute lists already decoded."""
    return request_doc(msg)
