"""A small store whose every dashboard number can be worked out by hand.

Agent A (strategy S1): four realized runs an hour apart, size 10,000 (so USD = bps), cost $0.50
each. Agent B (strategy S2): two losing runs and one open run. A hostile agent name, strategy,
symbol and run_id ride along on a third agent with one realized run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb

from alphatrace.server.dashboard.source import Source
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events

T0 = dt.datetime(2025, 3, 1, 8, 0, 0)
EVIL_AGENT = "<script>alert(1)</script>"
EVIL_STRATEGY = '"><svg onload=alert(3)>'
EVIL_SYMBOL = "<img src=x onerror=alert(2)>"
EVIL_RUN = "x\"><script>alert(4)</script>"

# run_id, agent, strategy, hours after T0, pnl bps, cost, latency, tokens_in, tokens_out, errors, status
RUNS = [
    ("a1", "A", "S1", 0, 10.0, 0.5, 100.0, 10, 1, 0, "realized"),
    ("a2", "A", "S1", 1, -30.0, 0.5, 200.0, 20, 2, 0, "realized"),
    ("a3", "A", "S1", 2, -5.0, 0.5, 300.0, 30, 3, 1, "realized"),
    ("a4", "A", "S1", 3, 20.0, 0.5, 400.0, 40, 4, 0, "realized"),
    ("b1", "B", "S2", 0.5, -50.0, 1.0, 1000.0, 100, 10, 0, "realized"),
    ("b2", "B", "S2", 1.5, -50.0, 1.0, 1000.0, 100, 10, 0, "realized"),
    ("b3", "B", "S2", 2.5, None, 1.0, 1000.0, 100, 10, 0, "open"),
    (EVIL_RUN, EVIL_AGENT, EVIL_STRATEGY, 4, 5.0, 0.0, 50.0, 1, 1, 0, "realized"),
]


def fill_ledger(con: duckdb.DuckDBPyConnection) -> None:
    rows = []
    for rid, agent, strat, h, pnl, cost, lat, tin, tout, err, status in RUNS:
        usd = None if pnl is None else pnl  # size 10,000: 1 bps = $1
        gross = None if pnl is None else pnl + 10.0  # fees −10 bps, no funding
        rows.append((rid, agent, strat, T0 + dt.timedelta(hours=h), "BTCUSDT", "LONG", lat, tin,
                     tout, cost, err, gross, None if pnl is None else -10.0,
                     None if pnl is None else 0.0, pnl, pnl, 10_000.0, usd,
                     None if usd is None else usd - cost,
                     None if pnl is None else pnl - cost / 10_000 * 1e4, status))
    con.executemany(
        "INSERT INTO ledger (run_id, agent, strategy, ts, symbols, direction, latency_ms, "
        "tokens_in, tokens_out, cost_usd, errors, gross_bps, fee_bps, funding_bps, paper_pnl_bps, "
        "realized_pnl_bps, size_usd, pnl_usd, net_usd, net_bps, status) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def fill_events(store: Store) -> None:
    ingest_events(store, [
        {"type": "alpha", "run_id": EVIL_RUN, "agent": EVIL_AGENT, "strategy": EVIL_STRATEGY,
         "ts": "2025-03-01T12:00:00Z", "symbol": EVIL_SYMBOL, "direction": "LONG",
         "event_id": "evil-1", "note": "</script><script>alert(5)</script>"},
        {"type": "telemetry", "run_id": "a1", "agent": "A", "ts": "2025-03-01T08:00:00Z",
         "latency_ms": 100, "tokens_in": 10, "tokens_out": 1, "cost_usd": 0.5, "event_id": "a1-t"},
        {"type": "alpha", "run_id": "a1", "agent": "A", "ts": "2025-03-01T08:00:01Z",
         "symbol": "BTC", "direction": "LONG", "event_id": "a1-a"},
        {"type": "telemetry", "run_id": "e1", "agent": "A", "ts": "2025-03-01T13:00:00Z",
         "event_id": "e1-t"},
    ])


KILL_POLICY = """
gates:
  min_runs: 2
  window: {runs: 20}
  scope: [agent, strategy]
  rules:
    - {name: kill_losses, action: kill, when: "last_5_runs_pnl < -50"}
    - {name: promote_any, action: promote, when: "rolling_pnl_bps > 1000"}
"""


def evaluate(store: Store, policy_text: str | None, tmp: Path) -> list[dict[str, object]]:
    """Record one gate evaluation (with `policy_text`, else the shipped policy)."""
    from alphatrace.governance.api import Gates

    path = None
    if policy_text is not None:
        path = tmp / "policy.yaml"
        path.write_text(policy_text)
    return Gates(store).evaluate(path, once=True)


def make_store(path: Path | str) -> Store:
    store = Store(path)
    fill_ledger(store.con)
    fill_events(store)
    return store


def source(con: duckdb.DuckDBPyConnection) -> Source:
    """A Source over one connection that waits for every result (as the report does)."""

    @contextlib.contextmanager
    def connect() -> Iterator[duckdb.DuckDBPyConnection]:
        yield con

    return Source(connect, wait_s=None, side_wait_s=None)
