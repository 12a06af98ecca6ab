"""The OTLP Export, shared by the HTTP routes and the gRPC service: a decoded request in,
(rejected spans, error message) out, with the partial-success answer in both encodings.

Each span is mapped on its own (`otlp.request_events`, `otlp_proto.message_events`) and goes
through the trace hold (`trace_hold`): the spans whose trace is decided go to the writer
(`otlp_held.store_spans`: the typed entry), with those of earlier requests that this one
released; the others wait for their root, written to `otlp_held` in the same round so that a
killed collector still has them. The answer counts the
request's spans the mapping or the store rejected (a held span is accepted: its run is not
known yet, its content was checked). The spans the mapping rejected are quarantined here,
those ingest rejected were quarantined by ingest.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from alphatrace.server.otlp import Mapped, span_json
from alphatrace.server.otlp_held import save, store_spans
from alphatrace.server.quarantine import Bad
from alphatrace.server.submit import DATA_ERRORS, quarantine_bad, store_events
from alphatrace.server.trace_hold import HoldWrites, Ready, TraceHold
from alphatrace.server.writer import Writer
from alphatrace.store.ingest import EventResult

SOURCE = "<otlp>"
REASONS_SHOWN = 3  # rejected spans named in error_message; the count covers them all


async def export(writer: Writer, hold: TraceHold, mapped: Mapped) -> tuple[int, str]:
    """Store the mapped spans of an ExportTraceServiceRequest, or hold those whose trace is
    not decided yet (written to `otlp_held` in the same round); (rejected, message)."""
    submitted: list[tuple[list[Ready], HoldWrites]] = []

    def submit(ready: list[Ready], writes: HoldWrites) -> Future[list[EventResult]] | None:
        submitted.append((ready, writes))
        if not ready and not writes.held and not writes.drop:
            return None  # every span re-sent while held: nothing new to keep
        return writer.submit_events([r.event for r in ready], SOURCE, store_spans, writes)

    future = hold.admit_submit(mapped.for_hold(), mapped.traces, submit)  # Busy: the client re-sends
    ((ready, writes),) = submitted
    results = [] if future is None else await _stored(writer, ready, writes, future)
    return await settle(writer, mapped, ready, results)


async def write_ready(writer: Writer, ready: list[Ready]) -> list[EventResult]:
    """Hand released spans to the writer (their held rows go in the same transaction); their
    statuses, in the same order."""
    if not ready:
        return []
    writes = HoldWrites.dropping(ready)
    future = writer.submit_events([r.event for r in ready], SOURCE, store_spans, writes)
    return await _stored(writer, ready, writes, future)


async def _stored(writer: Writer, ready: list[Ready], writes: HoldWrites,
                  future: Future[list[EventResult]]) -> list[EventResult]:
    """The statuses of `ready` once the writer stored them. A value the typed entry could not
    store fails its round with a data error: then the JSON path finds the event that raises
    (`submit.store_events` splits the batch), and the hold's writes follow on their own."""
    try:
        return await asyncio.shield(asyncio.wrap_future(future))
    except DATA_ERRORS:
        results = await store_events(writer, [r.event for r in ready], SOURCE,
                                     [r.line for r in ready])
        await asyncio.shield(asyncio.wrap_future(writer.submit_call(
            lambda store: save(store, [writes]))))
        return results


async def settle(writer: Writer, mapped: Mapped, ready: list[Ready],
                 results: list[EventResult]) -> tuple[int, str]:
    """Quarantine the spans the mapping rejected; (rejected spans, error message) of the
    request, from those and from the store's statuses of its own spans (the store
    quarantined what it rejected)."""
    await quarantine_bad(writer, SOURCE, [
        Bad(line=r.index + 1, kind="telemetry", field=r.field, reason=r.reason,
            raw=span_json(r.span)) for r in mapped.rejected])
    why = [(r.index, r.field, r.reason) for r in mapped.rejected]
    why += [(ready[r.index].line - 1, r.field, r.reason or "rejected")
            for r in results if r.status == "rejected" and ready[r.index].mine]
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
