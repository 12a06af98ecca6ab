"""POST /v1/traces (and /v1/otlp/v1/traces): the OTLP/HTTP traces endpoint.

Served at the root so that `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8700` works (exporters
append `/v1/traces` to it), and under `/v1/otlp` as before. Protobuf (the exporters' default)
and JSON, plain or gzip/deflate. Spans are accepted or rejected one by one: the answer is an
ExportTraceServiceResponse whose `partial_success` counts the rejected spans and says why
(OTLP spec); the rejected spans are kept in quarantine with their reason.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from google.protobuf.message import DecodeError

from alphatrace.server.auth import Principal, require
from alphatrace.server.body import decoded, parse_json, read_raw
from alphatrace.server.ingest_routes import WRITE_ERRORS
from alphatrace.server.models import OTLP_BODY_SCHEMA
from alphatrace.server.otlp import Mapped, request_events
from alphatrace.server.otlp_export import export, partial_json, partial_message
from alphatrace.server.otlp_proto import decode_protobuf, message_events

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"  # the OTLP spec's; `application/protobuf` is read too

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
    """Each span becomes a telemetry event of its run (see docs/collector.md for the mapping).
    Decompression, decoding and mapping run on a worker thread, as the JSON collector's parsing does
    (`body.read_events`): a 512-span export takes milliseconds of Python, during which every
    other request on the event loop (a sizing answer) would wait."""
    state = request.app.state
    raw = await read_raw(request, state.max_body)
    enc = request.headers.get("content-encoding")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    protobuf = ctype in (PROTOBUF, "application/protobuf")
    mapped = await asyncio.to_thread(
        lambda: map_body(decoded(raw, enc, state.max_body), protobuf, state.prices))
    rejected, message = await export(state.writer, state.trace_hold, mapped)
    if protobuf:
        return Response(partial_message(rejected, message).SerializeToString(),
                        media_type=ctype)
    return Response(json.dumps(partial_json(rejected, message)), media_type="application/json")


def map_body(body: bytes, protobuf: bool, prices: Any) -> Mapped:
    """The request's spans as events (`otlp_proto.message_events`, `otlp.request_events`)."""
    return (message_events(decode_protobuf_body(body), prices) if protobuf
            else request_events(decode_json_body(body), prices))


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
