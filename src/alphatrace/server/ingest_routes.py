"""POST /v1/events: a batch of mixed events in, one status per event out."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from alphatrace.server.auth import Principal, require
from alphatrace.server.body import event_list, parse_json, read_body
from alphatrace.server.models import EVENTS_BODY_SCHEMA, IngestResult, Problem
from alphatrace.server.quarantine import Bad, record
from alphatrace.server.writer import Busy, Writer
from alphatrace.store.ingest import EventResult

log = logging.getLogger("alphatrace.server")
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


async def store_events(
    request: Request, events: list[Any], source: str, lines: list[int] | None = None
) -> list[EventResult]:
    """Hand events to the single writer and wait for their statuses.

    The wait is shielded: a client that disconnects does not cancel the write (its retry will
    then see `duplicate`), so nothing it sent is half-stored or lost.

    Ingest answers each event, but a value it does not foresee can make the whole call raise
    (a count DuckDB cannot convert): then the batch is split in halves until the events that
    raise are alone, and each of those is rejected with the error as its reason and kept in
    quarantine (`lines`: the events' 1-based positions in the request, default 1..n). The others
    are stored as usual, and the request never fails for one event.
    """
    lines = lines if lines is not None else list(range(1, len(events) + 1))
    try:
        return await _submit(request, events, source)
    except HTTPException:
        raise
    except Exception as e:
        if len(events) > 1:
            half = len(events) // 2
            left = await store_events(request, events[:half], source, lines[:half])
            right = await store_events(request, events[half:], source, lines[half:])
            for r in right:
                r.index += half
            return left + right
        return [await _reject_unstorable(request, events[0], source, lines[0], e)]


async def _submit(request: Request, events: list[Any], source: str) -> list[EventResult]:
    writer: Writer = request.app.state.writer
    try:
        fut = writer.submit_events(events, source)
    except Busy:
        raise HTTPException(503, "collector busy: retry later", headers={"Retry-After": "1"}) from None
    return await asyncio.shield(asyncio.wrap_future(fut))


_COLUMN = re.compile(r"column \"?(\w+)")


async def _reject_unstorable(
    request: Request, event: Any, source: str, line: int, e: Exception
) -> EventResult:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    column = _COLUMN.search(str(e))
    field = column.group(1) if column else None
    kind = event.get("type") if isinstance(event, dict) else None
    log.warning("%s: an event could not be stored and is quarantined: %s", source, text)
    bad = Bad(line=line, kind=kind if isinstance(kind, str) else None, field=field,
              reason=f"cannot be stored: {text}",
              raw=json.dumps(event, separators=(",", ":"), default=str))
    await quarantine_bad(request, source, [bad])
    return EventResult(0, "rejected", kind=bad.kind, field=field, reason=bad.reason)


async def quarantine_bad(request: Request, source: str, bad: list[Bad]) -> None:
    """Record `bad` in quarantine, on the writer thread (the store's only writer)."""
    if bad:
        writer: Writer = request.app.state.writer
        await asyncio.shield(asyncio.wrap_future(
            writer.submit_call(lambda store: record(store, source, bad))))


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
    events = event_list(parse_json(await read_body(request, request.app.state.max_body)))
    results = await store_events(request, events, "<http>") if events else []
    doc = result_doc(results)
    return Response(
        json.dumps(doc, separators=(",", ":")),
        status_code=207 if doc["rejected"] else 200,
        media_type="application/json",
    )
