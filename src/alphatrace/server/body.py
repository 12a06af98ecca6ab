"""Request bodies: read with a hard size limit, decode, parse, check the shape — nothing more.

Events themselves are validated by the store's ingest (the same vectorised checks as files), so
this module only answers the questions a batch as a whole can fail: too big, on the wire or once
decompressed (413), a Content-Encoding other than gzip/deflate (415), not JSON (400), not an
array of objects or `{"events": [...]}` (400).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

from alphatrace.server import encoding
from alphatrace.store.encode_events import object_pairs

MAX_BODY = 5 * 1024 * 1024


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body with its Content-Encoding undone; 413 as soon as it is known to exceed `limit`,
    before reading it all, and again if it inflates past `limit` (a gzip bomb stops there)."""
    return decoded(await read_raw(request, limit), request.headers.get("content-encoding"),
                   limit)


async def read_raw(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body as it came on the wire (`read_body` without the decoding); 413 as soon as it
    is known to exceed `limit`."""
    too_big = HTTPException(
        413, f"body larger than the {_mb(limit)} limit: split the batch",
        headers={"Connection": "close"},
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_big
        except ValueError:
            raise HTTPException(400, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone, or cut off by the body read timeout (server/guard.py): nobody reads this answer.
        raise HTTPException(408, "request body not received") from None
    return b"".join(chunks)


def decoded(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`encoding.decode` with its errors as HTTP answers."""
    try:
        return encoding.decode(body, content_encoding, limit)
    except encoding.TooLarge:
        raise HTTPException(
            413, f"decompressed body larger than the {_mb(limit)} limit: split the batch",
        ) from None
    except encoding.Unsupported as e:
        raise HTTPException(
            415, f"Content-Encoding {e} is not supported: send gzip, deflate or no encoding",
            headers={"Accept-Encoding": "gzip, deflate"},
        ) from None
    except encoding.Undecodable as e:
        raise HTTPException(400, str(e)) from None


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise HTTPException(400, "empty body: send a JSON array of events or {\"events\": [...]}")
    try:
        return json.loads(body, object_pairs_hook=object_pairs)
    except UnicodeDecodeError:
        raise HTTPException(400, "body is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as e:
        raise HTTPException(
            400, f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except RecursionError:
        raise HTTPException(400, "body is not valid JSON: nested too deeply") from None


async def read_events(request: Request, limit: int = MAX_BODY) -> list[dict[str, Any]]:
    """The events of a batch request (`read_raw`, then `decoded`, `parse_json`, `event_list`),
    decoded and parsed on a worker thread: a 500-event batch takes milliseconds to parse, and
    on the event loop every other request (a sizing answer) would wait for it."""
    raw = await read_raw(request, limit)
    enc = request.headers.get("content-encoding")
    return await asyncio.to_thread(lambda: event_list(parse_json(decoded(raw, enc, limit))))


def event_list(doc: Any) -> list[dict[str, Any]]:
    """The events of a batch: a JSON array of objects, or an object with such an `events`."""
    if isinstance(doc, dict):
        if "events" not in doc:
            raise HTTPException(400, 'body is an object without "events": send [...] or {"events": [...]}')
        doc = doc["events"]
        if not isinstance(doc, list):
            raise HTTPException(400, '"events" must be a JSON array of event objects')
    if not isinstance(doc, list):
        raise HTTPException(400, 'body must be a JSON array of events or {"events": [...]}')
    for i, e in enumerate(doc):
        if not isinstance(e, dict):
            raise HTTPException(400, f"event {i} is not a JSON object")
    return doc
