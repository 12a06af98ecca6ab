"""The OTLP Export, shared by the HTTP routes and the gRPC service: a decoded request in,
(rejected spans, error message) out, with the partial-success answer in both encodings.

Each span is mapped on its own (`otlp.request_events`); the events go to the writer; the spans
the mapping rejected are quarantined here, those ingest rejected were quarantined by ingest.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from alphatrace.server.otlp import Mapped, request_events, span_json
from alphatrace.server.quarantine import Bad
from alphatrace.server.submit import quarantine_bad, store_events
from alphatrace.server.writer import Writer
from alphatrace.store.ingest import EventResult

SOURCE = "<otlp>"
REASONS_SHOWN = 3  # rejected spans named in error_message; the count covers them all


async def export(writer: Writer, prices: Any, doc: Any) -> tuple[int, str]:
    """Store the spans of an ExportTraceServiceRequest (as a dict); (rejected, message)."""
    mapped = request_events(doc, prices)
    lines = [p + 1 for p in mapped.positions]
    results = await store_events(writer, mapped.events, SOURCE, lines) if mapped.events else []
    return await settle(writer, mapped, results)


async def settle(writer: Writer, mapped: Mapped, results: list[EventResult]) -> tuple[int, str]:
    """Quarantine the spans the mapping rejected; (rejected spans, error message) of the
    request, from those and from the store's per-event statuses (it quarantined its own)."""
    await quarantine_bad(writer, SOURCE, [
        Bad(line=r.index + 1, kind="telemetry", field=r.field, reason=r.reason,
            raw=span_json(r.span)) for r in mapped.rejected])
    why = [(r.index, r.field, r.reason) for r in mapped.rejected]
    why += [(mapped.positions[r.index], r.field, r.reason or "rejected")
            for r in results if r.status == "rejected"]
    why.sort(key=lambda w: w[0])
    return len(why), rejection_message(why)


def rejection_message(why: list[tuple[int, str | None, str]]) -> str:
    """`2 span(s) rejected (…): span 3: startTimeUnixNano: …; span 7: …` (the first few)."""
    if not why:
        return ""
    shown = "; ".join(f"span {i}: {f + ': ' if f else ''}{r}" for i, f, r in why[:REASONS_SHOWN])
    more = f"; and {len(why) - REASONS_SHOWN} more" if len(why) > REASONS_SHOWN else ""
    return (f"{len(why)} span(s) rejected (span = position in the request, from 0; kept in "
            f"quarantine): {shown}{more}")


def partial_json(rejected: int, message: str) -> dict[str, Any]:
    """ExportTraceServiceResponse in OTLP/JSON: `{}` on full success (OTLP spec)."""
    if not rejected:
        return {}
    return {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}


def partial_message(rejected: int, message: str) -> ExportTraceServiceResponse:
    """ExportTraceServiceResponse as protobuf (HTTP and gRPC): partial_success set only when
    spans were rejected."""
    if not rejected:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
        rejected_spans=rejected, error_message=message))
