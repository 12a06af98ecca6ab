"""OTLP traces → telemetry events (pure: a decoded ExportTraceServiceRequest in, events out).

One span becomes one telemetry event:
- run_id, agent, strategy: decided per trace (`otlp_runs`: the span's own `alphatrace.*` tag,
  else the trace's value, else the fallbacks of `otlp_attrs.TRACE`). `request_events` treats
  the spans of the request as the whole of their traces; the collector holds spans of a trace
  whose root has not arrived yet and decides when it has (`trace_hold`);
- model, token counts, provider, error type: from the attributes listed in `otlp_attrs`
  (GenAI semconv, current and older names, and OpenInference), first set wins;
- cost_usd: `alphatrace.cost_usd` if set, else the SDK price table when the model is known,
  cached prompt tokens at the cached rate;
- errors: 1 when the span has `error.type` or an ERROR status, else 0;
- ts / start_ts / end_ts: the span's start and end; latency_ms: the span duration, on root spans
  only (no parent), so nested spans never add up twice — the ledger takes a run's wall time
  from start_ts/end_ts;
- event_id: `otlp:<trace_id>:<span_id>`, so an exporter's retry is a duplicate, not a new event.
Both OTLP JSON forms of ids are read: hex (the OTLP/JSON spec) and base64 (protobuf's JSON
mapping), as are int64 values written as strings.

A span that cannot become an event (no valid trace/span id, a time past the year 9999, a token
count beyond a 64-bit integer) is rejected on its own with the field and reason: the other spans
of the request are kept (OTLP partial success).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from alphatrace.server.otlp_attrs import TRACE, USAGE
from alphatrace.server.otlp_runs import (
    Attribution,
    SpanTags,
    attribute_together,
    resource_values,
    span_tags,
    trace_attributions,
)

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ZEROS = {16: "0" * 32, 8: "0" * 16}  # the invalid all-zero trace and span ids, in hex
_EPOCH = dt.datetime(1970, 1, 1)
MAX_NANOS = 253_402_300_799_999_999_999  # 9999-12-31T23:59:59.999999999Z, the last timestamp
INT64_MAX = 2**63 - 1
S = TypeVar("S")  # a span as a front end decoded it (an OTLP/JSON dict, a protobuf message)


class SpanError(ValueError):
    """Why one span cannot become an event: the OTLP field (or attribute) and the reason."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class RejectedSpan:
    index: int  # the span's position in the request, counted over all resources and scopes
    field: str | None
    reason: str
    span: dict[str, Any]


@dataclass
class Mapped:
    """The events of a request (with the position of each one's span and what it says about
    its trace) and the spans rejected."""

    events: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    tags: list[SpanTags] = field(default_factory=list)
    # per trace id: its run, agent, strategy with the request's spans as the whole trace
    traces: dict[str, Attribution] = field(default_factory=dict)
    rejected: list[RejectedSpan] = field(default_factory=list)

    @property
    def spans(self) -> int:
        return len(self.events) + len(self.rejected)

    def for_hold(self) -> list[tuple[dict[str, Any], SpanTags, int]]:
        """Each event with its tags and its span's line (1-based), as
        `TraceHold.admit_submit` takes them."""
        return list(zip(self.events, self.tags, [p + 1 for p in self.positions], strict=True))


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def any_value(v: Any) -> Any:
    """An OTLP AnyValue as a plain Python value."""
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return None
    if "doubleValue" in v:
        try:
            return float(v["doubleValue"])
        except (TypeError, ValueError):
            return None
    if "arrayValue" in v:
        arr = v["arrayValue"]
        return [any_value(x) for x in _list(arr.get("values") if isinstance(arr, dict) else None)]
    if "kvlistValue" in v:
        kv = v["kvlistValue"]
        return attributes(kv.get("values") if isinstance(kv, dict) else None)
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


class Decoded(dict[str, Any]):
    """Attributes already decoded to plain values (from protobuf, `otlp_proto`): taken as they
    are. OTLP/JSON never gives one: its attributes are lists of key/value objects."""


def attributes(kvs: Any) -> dict[str, Any]:
    if isinstance(kvs, Decoded):
        return kvs
    out: dict[str, Any] = {}
    if not isinstance(kvs, list):
        return out
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = any_value(kv.get("value"))
    return out


def trace_id(v: Any, nbytes: int) -> str | None:
    """Hex id from OTLP/JSON hex or protobuf-JSON base64; None if empty or malformed."""
    if not isinstance(v, str) or not v:
        return None
    if len(v) == 2 * nbytes and _HEX.match(v):
        return None if v == _ZEROS[nbytes] else v.lower()
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != nbytes or raw == bytes(nbytes):
        return None
    return raw.hex()


def nanos(v: Any, name: str = "timeUnixNano") -> int | None:
    """Nanoseconds since 1970 (None when absent or not positive); SpanError past year 9999."""
    try:
        n = int(v)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float('inf')
        return None
    if n > MAX_NANOS:
        raise SpanError(name, f"{n} ns since 1970 is past the year 9999")
    return n if n > 0 else None


def iso_from_nanos(n: int) -> str:
    """ISO 8601 UTC to the microsecond (truncated), as `datetime.isoformat` writes it (no
    fraction on a whole second). The date and time of the second come from a cache: a
    request's spans start and end within a few seconds of one another."""
    second, micros = divmod(n // 1000, 1_000_000)
    return f"{_iso_second(second)}.{micros:06d}Z" if micros else f"{_iso_second(second)}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return (_EPOCH + dt.timedelta(seconds=second)).isoformat()


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _spans(rs: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in ("scopeSpans", "instrumentationLibrarySpans"):
        for ss in _list(rs.get(key)):
            if isinstance(ss, dict):
                out.extend(s for s in _list(ss.get("spans")) if isinstance(s, dict))
    return out


def is_error(attrs: dict[str, Any], status_code: Any) -> bool:
    """An error span: `error.type` set, or an ERROR status (2, in either JSON spelling)."""
    return bool(attrs.get("error.type")) or status_code in (2, "2", "STATUS_CODE_ERROR")


def exception_type(span: dict[str, Any]) -> Any:
    """`exception.type` of the span's first `exception` event (how SDKs record an error)."""
    for ev in _list(span.get("events")):
        if isinstance(ev, dict) and ev.get("name") == "exception":
            t = attributes(ev.get("attributes")).get("exception.type")
            if t:
                return t
    return None


_COUNT = tuple(src.kind == "count" for src in USAGE)
_NO_USAGE = (None,) * len(USAGE)


@functools.lru_cache(maxsize=1024)
def _usage_plan(keys: tuple[str, ...]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Per USAGE field some of `keys` may feed, in table order: (its index, those keys in the
    field's order). Spans of one instrumentation carry the same keys: one plan serves them all.
    `keys` are of READ_KEYS only (both readers keep no others), so an entry stays small."""
    have = set(keys)
    return tuple((i, tuple(k for k in src.keys if k in have))
                 for i, src in enumerate(USAGE) if not have.isdisjoint(src.keys))


def usage(a: dict[str, Any]) -> tuple[Any, ...]:
    """Per field of `otlp_attrs.USAGE`, in table order, its value read from span attributes
    `a` (None when unset): the first of the field's keys that is set, as an integer for a
    count (SpanError beyond a 64-bit integer), else as text."""
    plan = _usage_plan(tuple(a))
    if not plan:
        return _NO_USAGE
    out: list[Any] = [None] * len(USAGE)
    for i, keys in plan:
        for k in keys:
            v = a[k]
            if v is not None and v != "":
                if _COUNT[i]:
                    n = _int(v)
                    if n is not None and abs(n) > INT64_MAX:
                        raise SpanError(k, f"{v} is out of range for a token count")
                    out[i] = n
                else:
                    out[i] = str(v)
                break
    return tuple(out)


BAD_TRACE_ID = ("traceId", "missing, all zero or not a 16-byte id")  # SpanError(field, reason)
BAD_SPAN_ID = ("spanId", "missing, all zero or not an 8-byte id")
COST_KEY = "alphatrace.cost_usd"
# Every span attribute the mapping reads (`build_event`): a reader may drop the others.
READ_KEYS = frozenset([COST_KEY, *(k for src in (*TRACE, *USAGE) for k in src.keys)])


def span_fields(span: dict[str, Any]) -> SpanFields:
    """What the mapping reads of an OTLP/JSON span; SpanError when it cannot be an event."""
    tid = trace_id(span.get("traceId"), 16)
    if tid is None:
        raise SpanError(*BAD_TRACE_ID)
    sid = trace_id(span.get("spanId"), 8)
    if sid is None:
        raise SpanError(*BAD_SPAN_ID)
    # only what the mapping reads (as the protobuf reader keeps): `usage` caches a plan per
    # set of keys, which must not grow with whatever other attributes a client sends
    a = {k: v for k, v in attributes(span.get("attributes")).items() if k in READ_KEYS}
    start = nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = nanos(span.get("endTimeUnixNano"), "endTimeUnixNano")
    parent = trace_id(span.get("parentSpanId"), 8)
    status = span.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    return SpanFields(tid, sid, parent, start, end, span.get("name"), a, is_error(a, code),
                      lambda: exception_type(span))


@dataclass(slots=True)  # not frozen: built per span, and a frozen init costs 5x
class SpanFields:
    """What the mapping reads of a span, checked: the same from OTLP/JSON (`span_event`) and
    from a protobuf message (`otlp_proto.message_events`)."""

    trace_id: str  # hex
    span_id: str
    parent: str | None
    start: int | None  # ns since 1970
    end: int | None
    name: Any
    attrs: dict[str, Any]  # the span's attributes: those of READ_KEYS at least
    error: bool
    exception: Callable[[], Any]  # `exception_type` of the span (read on error spans only)


_FIELDS = tuple(src.field for src in USAGE)
_MODEL, _IN, _OUT, _CACHED, _ERROR_TYPE = (
    _FIELDS.index(f) for f in ("model", "tokens_in", "tokens_out", "cached_tokens", "error_type"))


def build_event(f: SpanFields, res: dict[str, Any], prices: Any = None,
                res_values: Any = None) -> tuple[dict[str, Any], SpanTags]:
    """The event (its keys in a fixed order, unset ones left out) and the tags of a span."""
    a = f.attrs
    u = usage(a)
    if f.error and u[_ERROR_TYPE] is None:
        u = (*u[:_ERROR_TYPE], f.exception(), *u[_ERROR_TYPE + 1:])
    ev: dict[str, Any] = {"type": "telemetry", "event_id": f"otlp:{f.trace_id}:{f.span_id}"}
    for name, v in zip(_FIELDS, u, strict=True):
        if v is not None:
            ev[name] = v
    ev["errors"] = 1 if f.error else 0
    if f.name is not None:
        ev["span_name"] = f.name
    ev["trace_id"] = f.trace_id
    ev["span_id"] = f.span_id
    if f.parent is not None:
        ev["parent_span_id"] = f.parent
    service = res.get("service.name")
    if service is not None:
        ev["service_name"] = service
    start, end = f.start, f.end
    if start is not None:
        ev["ts"] = ev["start_ts"] = iso_from_nanos(start)
    if end is not None:
        ev["end_ts"] = iso_from_nanos(end)
    if start is not None and end is not None and end >= start:
        ms = (end - start) / 1e6
        ev["span_ms"] = ms
        if f.parent is None:
            ev["latency_ms"] = ms
    cost = a.get(COST_KEY)
    if cost is None and prices is not None and u[_MODEL] and (u[_IN] or u[_OUT]):
        cost = prices.cost(u[_MODEL], u[_IN] or 0, u[_OUT] or 0, u[_CACHED] or 0)
        if cost is not None:
            ev["price_version"] = prices.version
    if cost is not None:
        ev["cost_usd"] = cost
    return ev, span_tags(f.trace_id, f.span_id, f.parent is None, start, a, res, res_values)


def request_events(doc: Any, prices: Any = None) -> Mapped:
    """The events of an ExportTraceServiceRequest in OTLP/JSON, and the spans that could not be
    mapped; each event attributed with the request's spans as the whole of its trace (a
    protobuf message: `otlp_proto.message_events`, the same events)."""
    if not isinstance(doc, dict):
        return Mapped()
    return map_spans(_doc_spans(doc), span_fields, lambda span: span, prices)


def _doc_spans(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any], Any]]:
    for rs in _list(doc.get("resourceSpans")):
        if not isinstance(rs, dict):
            continue
        resource = rs.get("resource")
        res = attributes(resource.get("attributes") if isinstance(resource, dict) else None)
        res_values = resource_values(res)
        for span in _spans(rs):
            yield span, res, res_values


def map_spans(spans: Iterable[tuple[S, dict[str, Any], Any]], fields: Callable[[S], SpanFields],
              raw: Callable[[S], dict[str, Any]], prices: Any = None) -> Mapped:
    """Map each (span, its resource's attributes, `resource_values` of them) of a request, in
    request order: `fields` reads a span, `raw` gives its OTLP/JSON form (for quarantine).

    Never raises on a span: whatever goes wrong with one (a SpanError, or anything the mapping
    did not foresee) rejects that span with its reason, and the others are mapped."""
    out = Mapped()
    for index, (span, res, res_values) in enumerate(spans):
        try:
            ev, tags = build_event(fields(span), res, prices, res_values)
            out.events.append(ev)
            out.tags.append(tags)
            out.positions.append(index)
        except SpanError as e:
            out.rejected.append(RejectedSpan(index, e.field, e.reason, raw(span)))
        except Exception as e:  # a bug here must cost one span, not the export
            out.rejected.append(RejectedSpan(
                index, None, f"cannot map span: {type(e).__name__}: {e}", raw(span)))
    out.traces = trace_attributions(out.tags)
    attribute_together(out.events, out.tags, out.traces)
    return out


def span_json(span: dict[str, Any]) -> str:
    """A span as one line of JSON (for quarantine)."""
    return json.dumps(span, separators=(",", ":"), default=str, sort_keys=True)
