"""The browser tests' store: the demo, plus an agent whose slow runs lose (a loss cluster with a
numeric predicate, so the scatter has a region to highlight) and hostile names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alphatrace.api import Database
from alphatrace.demo.pipeline import run_demo
from alphatrace.governance.api import Gates
from alphatrace.server.keys import create_key
from alphatrace.store.ingest import ingest_events
from tests.dashboard.util import EVIL_AGENT, EVIL_RUN, EVIL_STRATEGY, EVIL_SYMBOL

SLOW_AGENT = "SlowLoserAgent"
SLOW_RUNS = 240


def slow_loser_events() -> list[dict[str, Any]]:
    """Every 4th run is slow (2.5–3.4 s) and loses 80–89 bps; the rest are fast and win."""
    t0 = dt.datetime(2025, 6, 10, tzinfo=dt.UTC)
    out: list[dict[str, Any]] = []
    for i in range(SLOW_RUNS):
        ts = (t0 + dt.timedelta(hours=14 * i)).isoformat().replace("+00:00", "Z")
        slow = i % 4 == 0
        rid = f"slow-{i:04d}"
        out += [
            {"type": "telemetry", "run_id": rid, "agent": SLOW_AGENT, "strategy": "LATENCY",
             "ts": ts, "latency_ms": 2500 + (i * 37) % 900 if slow else 200 + (i * 53) % 600,
             "tokens_in": 1000 + (i * 71) % 1000, "tokens_out": 200 + (i * 13) % 100,
             "cost_usd": 0.002 + ((i * 17) % 10) / 1000, "model": "gpt-4o-mini"},
            {"type": "alpha", "run_id": rid, "agent": SLOW_AGENT, "strategy": "LATENCY", "ts": ts,
             "symbol": "BTC", "direction": "LONG" if i % 2 else "SHORT", "horizon": "8h"},
            {"type": "pnl", "run_id": rid, "agent": SLOW_AGENT, "symbol": "BTC", "ts": ts,
             "realized_pnl_bps": -80.0 - (i % 10) if slow else 15.0 + (i % 7)},
        ]
    return out


def hostile_events() -> list[dict[str, Any]]:
    return [
        {"type": "telemetry", "run_id": EVIL_RUN, "agent": EVIL_AGENT, "strategy": EVIL_STRATEGY,
         "ts": "2025-07-01T12:00:00Z", "latency_ms": 321, "tokens_in": 5, "tokens_out": 5,
         "cost_usd": 0.001, "model": "<b>model</b>"},
        {"type": "alpha", "run_id": EVIL_RUN, "agent": EVIL_AGENT, "strategy": EVIL_STRATEGY,
         "ts": "2025-07-01T12:00:00Z", "symbol": EVIL_SYMBOL, "direction": "LONG",
         "note": "</script><script>alert(5)</script>"},
        {"type": "pnl", "run_id": EVIL_RUN, "agent": EVIL_AGENT, "ts": "2025-07-01T20:00:00Z",
         "realized_pnl_bps": 12.5},
    ]


def build(db: Path) -> str:
    """Build the store; returns a read key."""
    run_demo(db)
    with Database(db) as d:
        ingest_events(d.store, slow_loser_events() + hostile_events())
        d.reconcile()
        Gates(d.store).evaluate(once=True)
        return str(create_key(d.store, "browser", "read")["key"])
