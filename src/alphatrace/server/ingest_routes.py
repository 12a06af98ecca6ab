"""POST /v1/events: a batch of mixed events in, one status per event out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from alphatrace.server.auth import Principal, require
from alphatrace.server.body import read_events
from alphatrace.server.models import EVENTS_BODY_SCHEMA, IngestResult, Problem
from alphatrace.server.submit import store_events
from alphatrace.store.ingest import EventResult

router = APIRouter(tags=["ingest"])

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no API key, or an unknown one"},
    403: {"model": Problem, "description": "the key lacks the scope this route needs"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    400: {"model": Problem, "description": "not JSON, or not an array of event objects"},
    413: {"model": Problem, "description": "body larger than 5 MB"},
    503: {"model": Problem, "description": "too many events waiting; retry after Retry-After"},
}


def result_doc(results: list[EventResult]) -> dict[str, Any]:
    out = []
    acc = dup = rej = 0
    for r in results:
        d: dict[str, Any] = {"index": r.index, "status": r.status}
        if r.event_id is not None:
            d["event_id"] = r.event_id
        if r.kind is not None:
            d["kind"] = r.kind
        if r.status == "rejected":
            rej += 1
            d["field"] = r.field
            d["reason"] = r.reason
        elif r.status == "accepted":
            acc += 1
        else:
            dup += 1
        out.append(d)
    return {"accepted": acc, "duplicates": dup, "rejected": rej, "results": out}


@router.post(
    "/v1/events",
    summary="Ingest a batch of events",
    response_model=IngestResult,
    responses={
        200: {"description": "every event stored or already stored (duplicate)"},
        207: {"model": IngestResult, "description": "some events rejected: see their reason"},
        **WRITE_ERRORS,
    },
    openapi_extra={"requestBody": EVENTS_BODY_SCHEMA},
)
async def post_events(
    request: Request, who: Principal = Depends(require("ingest"))
) -> Response:
    """Telemetry, alpha and pnl events, mixed. Each event is validated like a line of a file and
    answered `accepted`, `duplicate` (same event_id or content seen before) or `rejected` with
    the field and reason; rejected events are also kept in quarantine. 200 when nothing was
    rejected, 207 (multi-status) otherwise."""
    events = await read_events(request, request.app.state.max_body)
    writer = request.app.state.writer
    results = await store_events(writer, events, "<http>") if events else []
    # Off the event loop, as the parse: 500 statuses take milliseconds to encode.
    status, body = await asyncio.to_thread(encode_results, results)
    return Response(body, status_code=status, media_type="application/json")


def encode_results(results: list[EventResult]) -> tuple[int, bytes]:
    """The answer to a batch: 200 when nothing was rejected, 207 (multi-status) otherwise."""
    doc = result_doc(results)
    return (207 if doc["rejected"] else 200,
            json.dumps(doc, separators=(",", ":")).encode())
