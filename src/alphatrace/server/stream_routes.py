"""GET /v1/decisions/stream: decision records as they are appended, as Server-Sent Events.

Each event is one record of the decision log (`event: decision`, `id:` its seq, `data:` the
record as JSON, as `alphatrace audit log --json` shows it). The log's seqs are contiguous and a
whole evaluation commits at once, so a client that sends back the last seq it saw (the
`Last-Event-ID` header, which browsers' EventSource sends on reconnect, or `?since=SEQ`)
gets every later record exactly once: the stream reads `seq > last` in seq order from the
store. A waiting stream wakes when the live state sees the decision head move
(server/live_state.py), and sends a comment line every `KEEPALIVE_S` so proxies keep it open.

Auth: scope `read` by `Authorization: Bearer`, or the dashboard's session cookie (a browser's
EventSource cannot send headers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from alphatrace.governance import journal
from alphatrace.server.auth import unauthorized
from alphatrace.server.dashboard.session import Sessions, access
from alphatrace.server.live_state import LiveState
from alphatrace.server.writer import Writer

router = APIRouter(tags=["governance"])

KEEPALIVE_S = 15.0
PAGE = 500  # records read per query: a client resuming from 0 on a long log gets them in pages
RETRY_MS = 1000
_NO_SESSIONS = Sessions()


def last_seen(header: str | None, since: int | None) -> int:
    """The seq a client saw last: `Last-Event-ID` wins over `?since=` (a browser reconnecting
    sends the header with the URL it first opened); 0 = from the start."""
    if header is not None and header.strip():
        try:
            value = int(header.strip())
        except ValueError:
            raise HTTPException(400, f"Last-Event-ID must be a decision seq, got {header!r}"
                                ) from None
    else:
        value = since if since is not None else 0
    if value < 0:
        raise HTTPException(400, f"the last seen seq must be ≥ 0, got {value}")
    return value


def frame(rec: dict[str, Any]) -> str:
    """One record as an SSE event."""
    data = json.dumps(rec, separators=(",", ":"), default=str, ensure_ascii=False)
    return f"id: {rec['seq']}\nevent: decision\ndata: {data}\n\n"


def _read(writer: Writer, after: int) -> list[dict[str, Any]]:
    with writer.reader() as con:
        return journal.read_records(con, since_seq=after + 1, limit=PAGE)


async def _events(request: Request, after: int) -> AsyncIterator[str]:
    live: LiveState = request.app.state.live
    writer: Writer = request.app.state.writer
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        woken = live.waiter()  # before reading: a head that moves meanwhile sets it
        try:
            recs = await run_in_threadpool(_read, writer, after)
            for rec in recs:
                yield frame(rec)
                after = int(rec["seq"])
            if recs:
                continue
            if await request.is_disconnected():
                return
            try:
                await asyncio.wait_for(woken.wait(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
        finally:
            live.forget(woken)


# Not in the OpenAPI document: a response that never ends is no operation a contract tester
# (schemathesis) can call and check; docs/collector.md describes it.
@router.get("/v1/decisions/stream", include_in_schema=False)
async def stream(request: Request, since: int | None = None) -> StreamingResponse:
    dash = getattr(request.app.state, "dashboard", None)
    acc = access(request, dash.sessions if dash is not None else _NO_SESSIONS)
    if acc.status == 401:
        raise unauthorized()
    if acc.status == 403:
        raise HTTPException(403, "forbidden")
    after = last_seen(request.headers.get("last-event-id"), since)
    return StreamingResponse(_events(request, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
