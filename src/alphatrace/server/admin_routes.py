"""Key management over HTTP (admin scope): while the collector runs it holds the store, so
`alphatrace keys ...` cannot open it; these routes do the same through the writer thread."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from alphatrace.errors import InputError, NotFoundError
from alphatrace.server import keys
from alphatrace.server.auth import KeyRing, Principal, require
from alphatrace.server.ingest_routes import AUTH_ERRORS
from alphatrace.server.models import KeyCreate, KeyCreated, KeyInfo, KeyRevoked, Problem
from alphatrace.server.serialize import value
from alphatrace.server.writer import Writer
from alphatrace.store import Store

router = APIRouter(tags=["admin"])


async def _write(request: Request, fn: Any) -> Any:
    """Run a key change on the writer thread, then reload the in-memory key ring."""
    writer: Writer = request.app.state.writer
    ring: KeyRing = request.app.state.keyring

    def change(store: Store) -> Any:
        out = fn(store)
        ring.replace(keys.active_keys(store.con))
        return out

    try:
        return await asyncio.wrap_future(writer.submit_call(change))
    except NotFoundError as e:
        raise HTTPException(404, str(e)) from None
    except InputError as e:
        raise HTTPException(409, str(e)) from None


@router.post(
    "/v1/keys",
    summary="Create an API key (shown once)",
    status_code=201,
    response_model=KeyCreated,
    responses={**AUTH_ERRORS, 400: {"model": Problem, "description": "body is not JSON"},
               409: {"model": Problem, "description": "name taken"}},
)
async def create_key(body: KeyCreate, request: Request,
                     who: Principal = Depends(require("admin"))) -> Any:
    return await _write(request, lambda s: keys.create_key(s, body.name, body.scope))


@router.get("/v1/keys", summary="List API keys (never the keys themselves)",
            response_model=list[KeyInfo], responses={**AUTH_ERRORS})
def list_keys(request: Request, who: Principal = Depends(require("admin"))) -> Any:
    writer: Writer = request.app.state.writer
    with writer.reader() as con:
        return [{k: value(v) for k, v in r.items()} for r in keys.list_keys(con)]


@router.delete(
    "/v1/keys/{name}",
    summary="Revoke an API key",
    response_model=KeyRevoked,
    responses={**AUTH_ERRORS, 404: {"model": Problem, "description": "no such key"},
               409: {"model": Problem, "description": "that is the key making the request"}},
)
async def revoke_key(name: str, request: Request,
                     who: Principal = Depends(require("admin"))) -> Any:
    if name == who.name:  # an admin cannot lock itself out by accident
        raise HTTPException(409, "cannot revoke the key making this request")
    return await _write(request, lambda s: keys.revoke_key(s, name))
