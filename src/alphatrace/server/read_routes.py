"""Reads: GET /v1/runs/{run_id}, GET /v1/agents, GET /healthz. Parameterised SQL only.

Reads run on the request thread's own cursor, never on the writer's connection, so they see
committed data and never wait behind an ingest round.
"""

from __future__ import annotations

from typing import Any

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from alphatrace import __version__
from alphatrace.ledger.api import agent_summary
from alphatrace.metrics import SUMMARY
from alphatrace.server.auth import Principal, require
from alphatrace.server.ingest_routes import AUTH_ERRORS
from alphatrace.server.metrics import pending_notifications, pipeline_lag_s
from alphatrace.server.models import Agents, Health, Problem, RunDetail
from alphatrace.server.serialize import rows, value
from alphatrace.server.writer import Writer

router = APIRouter(tags=["read"])

EVENT_TABLES = ("telemetry", "alpha", "pnl")


def run_detail(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    ledger = rows(con.execute("SELECT * FROM ledger WHERE run_id = ?", [run_id]), ())
    events: list[dict[str, Any]] = []
    for t in EVENT_TABLES:
        for r in rows(con.execute(
            f"SELECT * EXCLUDE (file_id, line) FROM {t} WHERE run_id = ? ORDER BY ts, event_id",
            [run_id],
        )):
            events.append({"type": t, **r})
    if not ledger and not events:
        return None
    # Fixed-width timestamps: text order is time order; events without ts go last.
    events.sort(key=lambda e: (e.get("ts") is None, e.get("ts") or "", e["type"], e["event_id"]))
    return {"run_id": run_id, "ledger": ledger[0] if ledger else None, "events": events}


def agent_summaries(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per agent: what the collector has seen (events, runs, first/last time) and, for runs the
    ledger already holds, the same metrics as `alphatrace agents` (null before reconcile)."""
    seen = rows(con.execute(
        """SELECT agent, count(DISTINCT run_id) AS runs_seen, count(*) AS events,
                  min(ts) AS first_seen, max(ts) AS last_seen
           FROM (SELECT agent, run_id, ts FROM telemetry
                 UNION ALL SELECT agent, run_id, ts FROM alpha
                 UNION ALL SELECT agent, run_id, ts FROM pnl WHERE agent IS NOT NULL)
           GROUP BY agent ORDER BY agent"""
    ), ())
    by_agent = {r["agent"]: r for r in agent_summary(con)}
    empty = dict.fromkeys(SUMMARY)
    out = []
    for s in seen:
        m = by_agent.pop(s["agent"], empty)
        out.append({**s, **{k: value(m.get(k)) for k in SUMMARY}})
    for agent, m in sorted(by_agent.items()):  # in the ledger without stored events
        out.append({"agent": agent, "runs_seen": 0, "events": 0, "first_seen": None,
                    "last_seen": None, **{k: value(m.get(k)) for k in SUMMARY}})
    return out


@router.get(
    "/v1/runs/{run_id}",
    summary="A run: its ledger row and every event",
    response_model=RunDetail,
    responses={**AUTH_ERRORS, 404: {"model": Problem, "description": "no such run"}},
)
def get_run(run_id: str, request: Request, who: Principal = Depends(require("read"))) -> Any:
    writer: Writer = request.app.state.writer
    with writer.reader() as con:
        doc = run_detail(con, run_id)
    if doc is None:
        raise HTTPException(404, "no such run")
    return doc


@router.get(
    "/v1/agents",
    summary="Agents seen, with their ledger metrics",
    response_model=Agents,
    responses={**AUTH_ERRORS},
)
def get_agents(request: Request, who: Principal = Depends(require("read"))) -> Any:
    writer: Writer = request.app.state.writer
    with writer.reader() as con:
        return {"agents": agent_summaries(con)}


@router.get("/healthz", summary="Liveness (no key needed)", response_model=Health, tags=["health"])
async def healthz(request: Request) -> Any:
    writer: Writer = request.app.state.writer
    pipeline = getattr(request.app.state, "pipeline", None)
    lag = await run_in_threadpool(pipeline_lag_s, pipeline, writer.reader)
    pending = await run_in_threadpool(pending_notifications, writer.reader)
    return {"status": "ok", "version": __version__, "pending_events": writer.pending_events,
            "pipeline_lag_s": lag, "pending_notifications": pending,
            "pipeline": pipeline.health() if pipeline is not None else None}
