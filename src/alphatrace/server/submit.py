"""Events to the single writer, from any front end (HTTP routes, OTLP/gRPC): statuses back.

`Busy` (too many events waiting) propagates: each front end answers it its own way (HTTP 503
with Retry-After, gRPC UNAVAILABLE), both of which clients retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import duckdb

from alphatrace.server.quarantine import Bad, record
from alphatrace.server.writer import Writer
from alphatrace.store import Store
from alphatrace.store.ingest import EventResult

log = logging.getLogger("alphatrace.server")
# Errors that a value in the events causes (DuckDB's conversion / range / input errors, and
# what encoding or Arrow raise on a value); a batch failing with one is split to find it.
DATA_ERRORS: tuple[type[Exception], ...] = (
    duckdb.DataError, duckdb.InvalidInputException, ValueError, TypeError, OverflowError)


async def store_events(
    writer: Writer, events: list[Any], source: str, lines: list[int] | None = None
) -> list[EventResult]:
    """Hand events to the single writer and wait for their statuses.

    The wait is shielded: a client that disconnects does not cancel the write (its retry will
    then see `duplicate`), so nothing it sent is half-stored or lost.

    Ingest answers each event, but a value it does not foresee can make the whole call raise
    with a data error (a count DuckDB cannot convert): then the batch is split in halves until
    the events that raise are alone, and each of those is rejected with the error as its reason
    and kept in quarantine (`lines`: the events' 1-based positions in the request, default
    1..n). The others are stored as usual, and the request never fails for one event. Any other
    failure (I/O, out of memory, a closed store) is the server's, not the data's: it propagates
    (500), so the client retries instead of being told its events are bad.
    """
    lines = lines if lines is not None else list(range(1, len(events) + 1))
    try:
        return await asyncio.shield(asyncio.wrap_future(writer.submit_events(events, source)))
    except DATA_ERRORS as e:
        if len(events) > 1:
            half = len(events) // 2
            left = await store_events(writer, events[:half], source, lines[:half])
            right = await store_events(writer, events[half:], source, lines[half:])
            for r in right:
                r.index += half
            return left + right
        return [await _reject_unstorable(writer, events[0], source, lines[0], e)]


_COLUMN = re.compile(r"column \"?(\w+)")


async def _reject_unstorable(
    writer: Writer, event: Any, source: str, line: int, e: Exception
) -> EventResult:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    column = _COLUMN.search(str(e))
    field = column.group(1) if column else None
    kind = event.get("type") if isinstance(event, dict) else None
    log.warning("%s: an event could not be stored and is quarantined: %s", source, text)
    bad = Bad(line=line, kind=kind if isinstance(kind, str) else None, field=field,
              reason=f"cannot be stored: {text}",
              raw=json.dumps(event, separators=(",", ":"), default=str))
    await quarantine_bad(writer, source, [bad])
    return EventResult(0, "rejected", kind=bad.kind, field=field, reason=bad.reason)


async def quarantine_bad(writer: Writer, source: str, bad: list[Bad]) -> None:
    """Record `bad` in quarantine, on the writer thread (the store's only writer), and count
    them as rejected (ingest never answered for them, so the writer has not)."""
    if not bad:
        return

    def run(store: Store) -> int:
        new = record(store, source, bad)
        writer.observer.rejected(source, [b.kind for b in bad])
        return new

    await asyncio.shield(asyncio.wrap_future(writer.submit_call(run)))
