"""A decoded OTLP protobuf ExportTraceServiceRequest → its events (`message_events`), and the
OTLP/JSON dict shape of it (`request_doc`: the form a rejected span is quarantined in).

Why not protobuf's `MessageToDict` and the JSON mapping: it walks every field by reflection,
which cost about twice the rest of the span mapping (bench/bench_otlp.py); and building the
OTLP/JSON dict of every span (every attribute decoded) only to read a few fields back is work
the mapping does not need. `message_events`
reads the message's fields directly into `otlp.SpanFields` (ids as hex, the OTLP/JSON
spelling; of the span's attributes only those the mapping reads, `otlp.READ_KEYS`) and maps
them with the code the JSON path uses (`otlp.map_spans`), so both give the same events
(tests/server/test_otlp_proto.py).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from alphatrace.server.otlp import (
    BAD_SPAN_ID,
    BAD_TRACE_ID,
    READ_KEYS,
    Decoded,
    Mapped,
    SpanError,
    SpanFields,
    exception_type,
    is_error,
    map_spans,
    nanos,
    resource_values,
)


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
    """OTLP protobuf bytes → an ExportTraceServiceRequest message (DecodeError if not one)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    msg = ExportTraceServiceRequest()
    msg.ParseFromString(body)
    return msg


_ZERO = {16: bytes(16), 8: bytes(8)}


def _hex(raw: bytes, nbytes: int) -> str | None:
    """An id's bytes as hex; None when empty, all zero or not `nbytes` long (`otlp.trace_id`
    of the hex form: hex of another length is never a valid base64 id of `nbytes`)."""
    return raw.hex() if len(raw) == nbytes and raw != _ZERO[nbytes] else None


def _read_attributes(kvs: Any) -> dict[str, Any]:
    """The attributes of `otlp.READ_KEYS`, decoded (a repeated key: the last one, as in a dict).
    Text and integers (what the mapping reads nearly always) are read inline, not through
    `_value`: this loop is about a quarter of the mapping's time (py-spy of the collector)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        k = kv.key
        if k in READ_KEYS:
            v = kv.value
            kind = v.WhichOneof("value")
            if kind == "string_value":
                out[k] = v.string_value
            elif kind == "int_value":
                out[k] = v.int_value
            else:
                out[k] = _value(v)
    return out


def span_fields(s: Any) -> SpanFields:
    """What the mapping reads of a protobuf Span (`otlp.span_fields` of its JSON form)."""
    tid = _hex(s.trace_id, 16)
    if tid is None:
        raise SpanError(*BAD_TRACE_ID)
    sid = _hex(s.span_id, 8)
    if sid is None:
        raise SpanError(*BAD_SPAN_ID)
    a = _read_attributes(s.attributes)
    return SpanFields(tid, sid, _hex(s.parent_span_id, 8),
                      nanos(s.start_time_unix_nano, "startTimeUnixNano"),
                      nanos(s.end_time_unix_nano, "endTimeUnixNano"), s.name or None, a,
                      is_error(a, s.status.code), lambda: exception_type(_span(s)))


def _message_spans(msg: Any) -> Iterator[tuple[Any, dict[str, Any], Any]]:
    for rs in msg.resource_spans:
        res = _attributes(rs.resource.attributes)
        res_values = resource_values(res)
        for ss in rs.scope_spans:
            for s in ss.spans:
                yield s, res, res_values


def message_events(msg: Any, prices: Any = None) -> Mapped:
    """The events of a decoded ExportTraceServiceRequest (HTTP protobuf or gRPC): those
    `otlp.request_events` makes of its OTLP/JSON form, rejected spans included."""
    return map_spans(_message_spans(msg), span_fields, _span, prices)
