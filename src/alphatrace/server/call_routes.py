"""`POST /v1/call`: a method of `alphatrace.Database`, answered for a remote caller.

`alphatrace.connect("http://host:8700", key=...)` (`client/database.py`) sends each call here:
`{"method": "ledger", "args": [...], "kwargs": {...}}` in the tagged JSON of `client/wire.py`,
with the files it reads as uploads (`server/scratch.py`). Only the methods of `METHODS` run,
each needing its scope; arguments are plain values, never code. Writes run on the writer
thread (`Writer.submit_call`), in order with ingest, never beside a live pipeline pass
(`Writer.derived`), and followed by the after-round hooks (the live pipeline); reads run on
the request thread's own cursor. The answer is an Arrow IPC stream for a table (a
LedgerResult's summary in a header), JSON otherwise; a typed error comes back as
`{"error": {"type", "message"}}` and is raised again as the same class by the caller.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from alphatrace.client import wire
from alphatrace.client.files import safe_name
from alphatrace.errors import AlphatraceError, NotFoundError
from alphatrace.server import scratch
from alphatrace.server.auth import allows, bearer_principal, unauthorized
from alphatrace.server.cli_routes import ADMIN, INGEST, READ
from alphatrace.server.writer import Writer
from alphatrace.store import Store

router = APIRouter()


@dataclass(frozen=True)
class Method:
    scope: str
    write: bool  # changes the store: runs on the writer thread


_READ, _ADMIN = Method(READ, False), Method(ADMIN, True)
METHODS: dict[str, Method] = {
    "ledger": _READ, "agents": _READ, "aliases": _READ, "symbols": _READ, "resolve": _READ,
    "explain": _READ, "forensics": _READ, "exclusions": _READ, "confidence": _READ,
    "audit_verify": _READ, "audit_show": _READ, "gates.backtest": _READ,
    "ingest": Method(INGEST, True), "import_market": Method(INGEST, True),
    "reconcile": _ADMIN, "alias": _ADMIN, "apply_exclusions": _ADMIN, "revive": _ADMIN,
    "audit_sign": _ADMIN, "gates.evaluate": _ADMIN, "gates.evaluation": _ADMIN,
}
# Evaluations that record nothing (`record=False`) only read.
DRY = frozenset({"gates.evaluate", "gates.evaluation"})


def method_of(name: str, kwargs: dict[str, Any]) -> Method:
    m = METHODS[name]
    return _READ if name in DRY and kwargs.get("record", True) is False else m




def argument(v: Any, sc: scratch.Scratch) -> Any:
    """A wire argument as the method takes it: files by their scratch names (relative: the
    call runs inside the scratch folder), a policy document as a Policy, anchors as `Given`."""
    if isinstance(v, list):
        return [argument(x, sc) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1 and next(iter(v)) in ("$file", "$path"):
        ((tag, name),) = v.items()
        if not isinstance(name, str) or not safe_name(name):
            raise HTTPException(400, f"file name {name!r} is not a relative path")
        return name if tag == "$file" else Path(name)
    if len(v) == 1 and "$policy" in v:
        from alphatrace.policy import Policy

        doc = v["$policy"]
        return Policy(wire.decode(doc["data"]), str(doc["path"]))
    if len(v) == 1 and "$given" in v:
        return _given(v["$given"], sc)
    return wire.decode({k: argument(x, sc) if isinstance(x, dict | list) else x
                        for k, x in v.items()})


def _given(doc: dict[str, Any], sc: scratch.Scratch) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from alphatrace.governance.anchor_check import Given

    pub = doc.get("pubkey")
    heads = doc.get("heads_path")
    return Given(pubkey=Ed25519PublicKey.from_public_bytes(wire.decode(pub)) if pub else None,
                 heads_path=argument(heads, sc) if heads else None,
                 expect_head=doc.get("expect_head"), expect_seq=doc.get("expect_seq"))


def _bound(db: Any, name: str) -> Callable[..., Any]:
    target = db
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _answer(out: Any, files: dict[str, str]) -> Response:
    import pyarrow as pa

    from alphatrace.ledger.api import LedgerResult

    if isinstance(out, LedgerResult):
        return Response(wire.table_bytes(out.table), media_type=wire.ARROW, headers={
            wire.RESULT_HEADER: "ledger", wire.SUMMARY_HEADER: json.dumps(out.summary)})
    if isinstance(out, pa.Table):
        return Response(wire.table_bytes(out), media_type=wire.ARROW,
                        headers={wire.RESULT_HEADER: "table"})
    return JSONResponse({"result": wire.encode(out), "files": files})


def _error(e: AlphatraceError) -> Response:
    return JSONResponse({"error": wire.error_doc(e)},
                        status_code=404 if isinstance(e, NotFoundError) else 422)


@router.post("/v1/call", include_in_schema=False)
async def call(request: Request) -> Response:
    who = bearer_principal(request.app.state.keyring, request.headers.get("authorization"))
    if who is None:
        raise await scratch.refuse(request, unauthorized())
    sc = await scratch.receive(request)
    try:
        name = sc.call.get("method")
        args, kwargs = sc.call.get("args") or [], sc.call.get("kwargs") or {}
        if name not in METHODS:
            raise HTTPException(400, f"no method {name!r} on a remote Database; these are: "
                                     + ", ".join(sorted(METHODS)))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise HTTPException(400, "`args` must be a list and `kwargs` an object")
        args = [argument(a, sc) for a in args]
        kwargs = {k: argument(v, sc) for k, v in kwargs.items()}
        m = method_of(name, kwargs)
        if not allows(who, m.scope):
            raise HTTPException(403, f"Database.{name} needs a key with scope {m.scope} or "
                                     f"admin; key {who.name!r} has scope {who.scope}")
        writer: Writer = request.app.state.writer
        folder = sc.root if sc.digests or name == "audit_sign" else None

        def run(store: Store) -> Any:
            with writer.derived():
                return invoke(store)

        def invoke(store: Store) -> Any:
            from alphatrace.api import Database

            fn = _bound(Database(store), name)
            try:
                inspect.signature(fn).bind(*args, **kwargs)
            except TypeError as e:
                raise HTTPException(400, f"Database.{name}: {e}") from None
            if folder is None:
                return fn(*args, **kwargs)
            with scratch.inside(folder):
                return fn(*args, **kwargs)

        def read() -> Any:
            with writer.reader() as cur:
                return invoke(Store(writer.store.path, read_only=True, con=cur))

        try:
            if m.write:
                out = await asyncio.wrap_future(writer.submit_call(run))
            else:
                out = await run_in_threadpool(read)
        except AlphatraceError as e:
            return _error(e)
        return _answer(out, sc.changed())
    finally:
        sc.close()
