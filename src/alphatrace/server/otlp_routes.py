"""POST /v1/otlp/v1/traces: the OTLP/HTTP traces endpoint (point an OTLP exporter here)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from alphatrace.server.auth import Principal, require
from alphatrace.server.body import parse_json, read_body
from alphatrace.server.ingest_routes import WRITE_ERRORS, store_events
from alphatrace.server.models import OTLP_BODY_SCHEMA
from alphatrace.server.otlp import decode_protobuf, request_events

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"


def _partial(rejected: int, message: str) -> dict[str, Any]:
    """ExportTraceServiceResponse: empty on full success, partialSuccess otherwise (OTLP spec)."""
    if not rejected:
        return {}
    return {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}


@router.post(
    "/v1/otlp/v1/traces",
    summary="Ingest OTLP traces",
    responses={
        200: {
            "description": "ExportTraceServiceResponse (partialSuccess lists rejected spans)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        415: {"description": "protobuf sent but opentelemetry-proto is not installed"},
        **WRITE_ERRORS,
    },
    openapi_extra={"requestBody": OTLP_BODY_SCHEMA},
)
async def post_traces(request: Request, who: Principal = Depends(require("ingest"))) -> Response:
    """Each span becomes a telemetry event of its run (see docs/collector.md for the mapping)."""
    body = await read_body(request, request.app.state.max_body)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    protobuf = ctype == PROTOBUF
    if protobuf:
        try:
            doc: Any = decode_protobuf(body)
        except ImportError:
            raise HTTPException(415, "OTLP protobuf needs opentelemetry-proto; send JSON") from None
        except Exception:  # protobuf's DecodeError and friends
            raise HTTPException(400, "body is not a valid OTLP protobuf message") from None
    else:
        doc = parse_json(body)
        if not isinstance(doc, dict):
            raise HTTPException(400, "body must be an OTLP ExportTraceServiceRequest object")
        spans = doc.get("resourceSpans")
        if spans is not None and (
            not isinstance(spans, list) or not all(isinstance(x, dict) for x in spans)
        ):
            raise HTTPException(400, '"resourceSpans" must be an array of objects')
    events, unmapped = request_events(doc, request.app.state.prices)
    results = await store_events(request, events, "<otlp>") if events else []
    bad = [r for r in results if r.status == "rejected"]
    rejected = unmapped + len(bad)
    message = ""
    if bad:
        message = f"{len(bad)} span(s) rejected, e.g. {bad[0].field}: {bad[0].reason}"
    elif unmapped:
        message = "spans without a valid traceId/spanId"
    doc_out = _partial(rejected, message)
    if protobuf:
        return Response(_protobuf_response(doc_out), media_type=PROTOBUF)
    return Response(json.dumps(doc_out), media_type="application/json")


def _protobuf_response(doc: dict[str, Any]) -> bytes:
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    return bytes(ParseDict(doc, ExportTraceServiceResponse()).SerializeToString())
