"""POST /v1/traces (and /v1/otlp/v1/traces): the OTLP/HTTP traces endpoint.

Served at the root so that `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8700` works (exporters
append `/v1/traces` to it), and under `/v1/otlp` as before. Protobuf (the exporters' default)
and JSON, plain or gzip/deflate. Spans are accepted or rejected one by one: the answer is an
ExportTraceServiceResponse whose `partial_success` counts the rejected spans and says why
(OTLP spec); the rejected spans are kept in quarantine with their reason.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from alphatrace.server.auth import Principal, require
from alphatrace.server.body import parse_json, read_body
from alphatrace.server.ingest_routes import WRITE_ERRORS, quarantine_bad, store_events
from alphatrace.server.models import OTLP_BODY_SCHEMA
from alphatrace.server.otlp import Mapped, decode_protobuf, request_events, span_json
from alphatrace.server.quarantine import Bad

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"
SOURCE = "<otlp>"
REASONS_SHOWN = 3  # rejected spans named in error_message; the count covers them all

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "ExportTraceServiceResponse (partialSuccess counts the rejected spans)",
        "content": {"application/json": {"schema": {"type": "object"}},
                    PROTOBUF: {"schema": {"type": "string", "format": "binary"}}},
    },
    415: {"description": "a Content-Encoding other than gzip or deflate"},
    **WRITE_ERRORS,
}


@router.post("/v1/traces", summary="Ingest OTLP traces", responses=RESPONSES,
             openapi_extra={"requestBody": OTLP_BODY_SCHEMA})
@router.post("/v1/otlp/v1/traces", summary="Ingest OTLP traces (same as /v1/traces)",
             responses=RESPONSES, openapi_extra={"requestBody": OTLP_BODY_SCHEMA})
async def post_traces(request: Request, who: Principal = Depends(require("ingest"))) -> Response:
    """Each span becomes a telemetry event of its run (see docs/collector.md for the mapping)."""
    body = await read_body(request, request.app.state.max_body)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    protobuf = ctype == PROTOBUF
    doc = decode_protobuf_body(body) if protobuf else decode_json_body(body)
    mapped = request_events(doc, request.app.state.prices)
    results = await store_events(request, mapped.events, SOURCE,
                                 [p + 1 for p in mapped.positions]) if mapped.events else []
    rejected, message = await settle(request, mapped, results)
    if protobuf:
        return Response(partial_protobuf(rejected, message), media_type=PROTOBUF)
    return Response(json.dumps(partial_json(rejected, message)), media_type="application/json")


def decode_protobuf_body(body: bytes) -> Any:
    try:
        return decode_protobuf(body)
    except (DecodeError, ValueError, RecursionError):
        raise HTTPException(400, "body is not a valid OTLP protobuf message") from None


def decode_json_body(body: bytes) -> Any:
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise HTTPException(400, "body must be an OTLP ExportTraceServiceRequest object")
    spans = doc.get("resourceSpans")
    if spans is not None and (
        not isinstance(spans, list) or not all(isinstance(x, dict) for x in spans)
    ):
        raise HTTPException(400, '"resourceSpans" must be an array of objects')
    return doc


async def settle(request: Request, mapped: Mapped, results: list[Any]) -> tuple[int, str]:
    """Quarantine the spans the mapping rejected; (rejected spans, error message) of the
    request, from those and from the store's per-event statuses (it quarantined its own)."""
    await quarantine_bad(request, SOURCE, [
        Bad(line=r.index + 1, kind="telemetry", field=r.field, reason=r.reason,
            raw=span_json(r.span)) for r in mapped.rejected])
    why = [(r.index, r.field, r.reason) for r in mapped.rejected]
    why += [(mapped.positions[r.index], r.field, r.reason or "rejected")
            for r in results if r.status == "rejected"]
    why.sort(key=lambda w: w[0])
    return len(why), rejection_message(why)


def rejection_message(why: list[tuple[int, str | None, str]]) -> str:
    """`2 of the spans rejected: span 3: startTimeUnixNano: …; span 7: …` (the first few)."""
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


def partial_protobuf(rejected: int, message: str) -> bytes:
    if not rejected:
        return bytes(ExportTraceServiceResponse().SerializeToString())
    return bytes(ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
        rejected_spans=rejected, error_message=message)).SerializeToString())
