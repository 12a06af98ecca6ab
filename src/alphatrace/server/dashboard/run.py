"""The run document: `explain`'s dollar waterfall, causes and sentence, the ledger row, and
every raw event of the run exactly as the collector's `GET /v1/runs/{run_id}` returns them."""

from __future__ import annotations

from typing import Any

import duckdb

from alphatrace.errors import NotFoundError
from alphatrace.server.dashboard.source import Source, jsonable
from alphatrace.server.read_routes import run_detail

EXPLAIN_KEYS = ("waterfall", "causes", "because", "excluded")


def run(src: Source, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    detail = run_detail(con, run_id)
    if detail is None:
        raise NotFoundError(f"unknown run {run_id!r}")
    explain: dict[str, Any] | None = None
    note = None
    if detail["ledger"] is not None:
        try:
            doc = src.explain(con, run_id)
            explain = {k: doc.get(k) for k in EXPLAIN_KEYS}
        except NotFoundError as e:
            note = str(e)
    else:
        note = f"run {run_id!r} has events but no ledger row yet: run `alphatrace reconcile`"
    ledger = detail["ledger"]
    agent = ledger.get("agent") if ledger else next(
        (e.get("agent") for e in detail["events"] if e.get("agent")), None)
    return jsonable({"run_id": run_id, "agent": agent, "ledger": ledger, "explain": explain,
                     "note": note, "events": detail["events"]})
