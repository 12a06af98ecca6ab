"""POST /v1/market/bars and /v1/market/funding: market data as it happens, into the store.

A price recorder sends what `alphatrace market import` reads: JSON rows (an array of objects,
or `{"rows": [...]}`, with the columns of a bars or funding file), a CSV or Parquet file as the
raw body (its Content-Type says which), or files in a multipart form. Whatever the shape, the
rows reach the store through the market importer and its readers, unchanged: JSON rows are
written to a temporary Parquet file of text columns (row k is line k + 1, as a request's
position is everywhere else in the collector), uploads to temporary files named as sent (the
name may carry the symbol and interval, as with `market import`). So every format, check,
dedupe rule and quarantine reason is the importer's, and there is no second parser.

The import runs on the writer thread (`Writer.submit_call`): one round like any other, for
which the after-round hooks run (the live pipeline prices the open legs whose exit bar or
funding settlement arrived in it). Bad rows are quarantined with their reason and the good
rows kept; the answer counts them. Body limit and gzip/deflate as on POST /v1/events.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from alphatrace.errors import InputError
from alphatrace.market.importer import MarketImportReport, import_planned, plan
from alphatrace.market.names import interval_from_filename
from alphatrace.market.readers import MARKET_SUFFIXES
from alphatrace.server.auth import Principal, require
from alphatrace.server.body import parse_json, read_body
from alphatrace.server.ingest_routes import WRITE_ERRORS
from alphatrace.server.models import Problem
from alphatrace.store import Store

router = APIRouter(tags=["market"])

Table = Literal["bars", "funding"]
# Content-Type (without parameters) of a raw body -> the suffix its temporary file gets.
RAW_TYPES = {
    "text/csv": ".csv", "application/csv": ".csv", "text/plain": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/vnd.apache.parquet": ".parquet", "application/parquet": ".parquet",
    "application/x-parquet": ".parquet",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    """One file of a request: where it was written, and what quarantine calls it."""

    path: Path
    source: str
    json_rows: bool = False  # line k is JSON row k - 1


# -- the body into files (pure but for the writes into `folder`) ---------------------------

def cell(v: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold: the readers parse and check it."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(",", ":"))


def json_rows(doc: Any) -> list[dict[str, Any]]:
    """The rows of a JSON body: an array of objects, or an object with such `rows`."""
    if isinstance(doc, dict):
        if "rows" not in doc:
            raise HTTPException(400, 'body is an object without "rows": send [...] or {"rows": [...]}')
        doc = doc["rows"]
    if not isinstance(doc, list):
        raise HTTPException(400, 'body must be a JSON array of rows or {"rows": [...]}')
    for i, r in enumerate(doc):
        if not isinstance(r, dict):
            raise HTTPException(400, f"row {i} is not a JSON object")
    return doc


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Text columns, in the order the keys first appear; a key a row lacks is null there."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({n: pa.array([cell(r.get(n)) for r in rows], pa.string()) for n in names})


def interval_token(interval: str | None) -> str:
    """`_1h` for the file name (where the importer reads a bar interval), '' for none."""
    if interval is None:
        return ""
    if interval_from_filename(f"x_{interval}") is None:
        raise HTTPException(400, f"interval {interval!r} is not a bar interval such as 1m, 15m, 1h, 1d")
    return f"_{interval}"


def safe_name(name: str, interval: str | None) -> str:
    """The base name of an uploaded file, reduced to safe characters, with the interval token
    before its suffix; 415 when its suffix is not one `market import` reads."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name)
    low = base.lower()
    suffix = next((s for s in sorted(MARKET_SUFFIXES, key=len, reverse=True) if low.endswith(s)), None)
    if suffix is None:
        raise HTTPException(
            415, f"file {name!r}: unknown file type (expected {', '.join(MARKET_SUFFIXES)})")
    stem = base[: -len(suffix)].lstrip(".") or "upload"
    return stem + interval_token(interval) + base[-len(suffix):]


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def multipart_files(request: Request, body: bytes) -> list[tuple[str, bytes]]:
    """(file name, content) of every file part of a multipart/form-data body already read."""

    async def stream() -> Any:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_part_size=len(body) + 1).parse()
    except MultiPartException as e:
        raise HTTPException(400, f"multipart body: {e.message}") from None
    out = []
    for _, v in form.multi_items():
        if isinstance(v, UploadFile):
            out.append((v.filename or "", await v.read()))
            await v.close()
    if not out:
        raise HTTPException(400, "multipart body without a file part")
    return out


async def write_uploads(
    request: Request, body: bytes, table: Table, folder: Path,
    interval: str | None, filename: str | None,
) -> list[Upload]:
    """The request's rows or files as files in `folder`, in the order sent."""
    kind = media_type(request)
    label = f"<http:{table}>"
    if kind == "application/json" or kind.endswith("+json"):
        rows = json_rows(parse_json(body))
        if not rows:
            return []
        path = folder / f"rows{interval_token(interval)}.parquet"
        pq.write_table(rows_table(rows), path)
        return [Upload(path, label, json_rows=True)]
    if kind == "multipart/form-data":
        files = [(safe_name(n or "upload.csv", interval), data)
                 for n, data in await multipart_files(request, body)]
    elif kind in RAW_TYPES:
        name = filename or f"upload{RAW_TYPES[kind]}"
        files = [(safe_name(name, interval), body)]
    else:
        raise HTTPException(
            415, f"Content-Type {kind or '(none)'} is not accepted: send application/json rows, "
                 f"a CSV ({', '.join(t for t, s in RAW_TYPES.items() if s != '.parquet')}) or "
                 "Parquet (application/vnd.apache.parquet) body, or multipart/form-data files")
    out = []
    for i, (name, data) in enumerate(files):
        sub = folder / str(i)  # two parts with the same name stay two files
        sub.mkdir()
        (sub / name).write_bytes(data)
        out.append(Upload(sub / name, f"{label}/{name}"))
    return out


# -- the import (on the writer thread) ------------------------------------------------------

def import_uploads(
    store: Store, uploads: list[Upload], table: Table, symbol: str | None
) -> MarketImportReport:
    """Plan every file first (all-or-nothing on an unusable one), check that its rows belong to
    this route, then import them: what `market import` does with the same files."""
    items = plan(store.con, [str(u.path) for u in uploads], symbol)
    items = [replace(it, source=u.source) for it, u in zip(items, uploads, strict=True)]
    for it in items:
        if it.layout.fmt.table_kind != table:
            other = it.layout.fmt.table_kind
            raise InputError(f"{it.name}: these are {other} rows: POST them to /v1/market/{other}")
    return import_planned(store, items)


def http_message(message: str, uploads: list[Upload]) -> str:
    """An importer error in the request's terms: its names, not temporary paths; query
    parameters, not CLI options."""
    for u in uploads:
        message = message.replace(str(u.path), u.source)
    message = message.replace("pass --symbol", "add ?symbol=SYMBOL").replace("--symbol ", "symbol ")
    return re.sub(r"put it in the file name \(e\.g\. ([^)]*)\)",
                  r"add ?interval=1h (or name the file like \1)", message)


def report_doc(report: MarketImportReport, table: Table, uploads: list[Upload]) -> dict[str, Any]:
    """The answer: accepted (new + updated keys), duplicates (already stored with the same
    values, or repeated in the request), quarantined, and each bad row's reason."""
    new = report.bars if table == "bars" else report.funding
    by_source = {u.source: u for u in uploads}
    problems = []
    for p in report.problems:
        doc = {"source": p["path"], "line": p["line"], "field": p["field"], "reason": p["reason"]}
        up = by_source.get(p["path"])
        if up is not None and up.json_rows:
            doc["index"] = p["line"] - 1
        problems.append(doc)
    return {
        "accepted": new + report.updated, "new": new, "updated": report.updated,
        "duplicates": report.unchanged, "quarantined": report.quarantined,
        "symbols": report.symbols, "files": report.files, "problems": problems,
    }


async def receive(
    request: Request, table: Table, symbol: str | None, interval: str | None,
    filename: str | None,
) -> Response:
    body = await read_body(request, request.app.state.max_body)
    folder = Path(tempfile.mkdtemp(prefix="alphatrace-market-"))
    try:
        uploads = await write_uploads(request, body, table, folder, interval, filename)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if not uploads:
        shutil.rmtree(folder, ignore_errors=True)
        report = MarketImportReport()
    else:
        def run(store: Store) -> MarketImportReport:
            try:  # the writer thread owns the files now: a client gone does not remove them
                return import_uploads(store, uploads, table, symbol)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        fut = request.app.state.writer.submit_call(run)
        try:
            report = await asyncio.shield(asyncio.wrap_future(fut))
        except InputError as e:
            raise HTTPException(400, http_message(str(e), uploads)) from None
        except duckdb.Error as e:  # a value the readers could not take at all
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise HTTPException(400, http_message(f"cannot import: {first}", uploads)) from None
    doc = report_doc(report, table, uploads)
    return Response(json.dumps(doc, separators=(",", ":")),
                    status_code=207 if doc["quarantined"] else 200, media_type="application/json")


TIME = {"type": ["string", "number"], "description": "ISO 8601 (UTC when no offset) or epoch s/ms"}
NUMBER = {"type": ["number", "string"]}
# The canonical spellings; every spelling `market import` knows is accepted (docs/market.md).
ROW_SCHEMA: dict[Table, dict[str, Any]] = {
    "bars": {
        "type": "object",
        "properties": {"symbol": {"type": "string"}, "ts": TIME, "open": NUMBER, "high": NUMBER,
                       "low": NUMBER, "close": NUMBER, "volume": NUMBER, "price": NUMBER},
        "anyOf": [{"required": ["ts", "open", "high", "low", "close"]},
                  {"required": ["ts", "price"]}],  # ticks
    },
    "funding": {
        "type": "object",
        "properties": {"symbol": {"type": "string"}, "ts": TIME, "funding_rate": NUMBER,
                       "mark_price": NUMBER},
        "required": ["ts", "funding_rate"],
    },
}
COLUMNS = {"bars": "symbol, ts, open, high, low, close[, volume] (or ticks: symbol, ts, price)",
           "funding": "symbol, ts, funding_rate[, mark_price]"}


def body_doc(table: Table) -> dict[str, Any]:
    """The route's request body in the OpenAPI document."""
    row = ROW_SCHEMA[table]
    return {"requestBody": {
        "description": (
            f"JSON rows (an array of objects or {{\"rows\": [...]}}) with the columns {COLUMNS[table]}"
            " in any spelling `alphatrace market import` knows; or a CSV (text/csv, "
            "text/tab-separated-values) or Parquet (application/vnd.apache.parquet) file as the "
            "raw body; or files in multipart/form-data. At most 5 MB, gzip/deflate allowed."),
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"type": "array", "items": row},
                {"type": "object", "required": ["rows"],
                 "properties": {"rows": {"type": "array", "items": row}}},
            ]}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        },
    }}


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "every row stored, or already stored (duplicates)"},
    207: {"description": "some rows quarantined: see `problems`"},
    **WRITE_ERRORS,
    400: {"model": Problem, "description": "not a market file or rows this route takes"},
    415: {"model": Problem, "description": "a Content-Type or file type not accepted"},
}
SymbolQ = Query(None, pattern=r"^\S+$",
                description="Symbol of rows without a symbol column (default: from the file name).")
IntervalQ = Query(None, pattern=r"^[1-9][0-9]{0,5}[smhdwHDW]$",
                  description="Bar interval (1m, 1h, 1d, 3600s) when the rows cannot show it.")
FilenameQ = Query(None, pattern=r"^.*\.((csv|tsv|txt)(\.gz)?|parquet|pq)$",
                  description="Name of a raw-body file (it may carry symbol and interval).")


@router.post("/v1/market/bars", summary="Ingest bars (JSON rows, CSV or Parquet)",
             responses=RESPONSES, openapi_extra=body_doc("bars"))
async def post_bars(
    request: Request, symbol: str | None = SymbolQ, interval: str | None = IntervalQ,
    filename: str | None = FilenameQ, who: Principal = Depends(require("ingest")),
) -> Response:
    """Bars (or ticks) into `bars`, as `alphatrace market import` would import the same file;
    an open leg whose exit bar is among them is priced in this round."""
    return await receive(request, "bars", symbol, interval, filename)


@router.post("/v1/market/funding", summary="Ingest funding rates (JSON rows, CSV or Parquet)",
             responses=RESPONSES, openapi_extra=body_doc("funding"))
async def post_funding(
    request: Request, symbol: str | None = SymbolQ, interval: str | None = IntervalQ,
    filename: str | None = FilenameQ, who: Principal = Depends(require("ingest")),
) -> Response:
    """Funding settlements into `funding`, as `alphatrace market import` would import them."""
    return await receive(request, "funding", symbol, interval, filename)
