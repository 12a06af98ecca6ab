"""Hand-built rows inserted straight into a store, as the areas would write them: the ledger
rows of the governance, forensics, notify and server tests, and the alpha, bars and legs rows
forensics reads. One builder, so every test means the same by pnl_usd, net_usd and known_ts.

Times are naive UTC. `run`, `series` and `h` count hours from `start`, default `T0`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

T0 = dt.datetime(2024, 1, 1)
SIZE_USD = 10_000.0  # the default position: 1 bps of PnL is 1 USD

# Every ledger column a full row carries unless given (`full_row`).
FULL_ROW: dict[str, Any] = {
    "agent": "A", "strategy": "S", "symbols": "BTCUSDT", "direction": "LONG", "score_final": 1.0,
    "regime": None, "latency_ms": 500.0, "tokens_in": 1000, "tokens_out": 200, "cost_usd": 0.01,
    "errors": 0, "model": "m", "entry_price": None, "exit_price": None, "gross_bps": None,
    "fee_bps": None, "funding_bps": None, "paper_pnl_bps": None, "realized_pnl_bps": None,
    "pnl_source": None, "size_usd": SIZE_USD, "pnl_usd": None, "net_usd": None, "net_bps": None,
    "execution_gap_bps": None, "status": "realized", "policy_hash": "h",
}


def h(hours: float, start: dt.datetime = T0) -> dt.datetime:
    """`start` plus `hours`: the tests' times."""
    return start + dt.timedelta(hours=hours)


def ledger_row(run_id: str, ts: dt.datetime, **columns: Any) -> dict[str, Any]:
    """A ledger row with the given columns. Unless given: pnl_usd is realized_pnl_bps at
    size_usd (default 10,000 USD) and net_usd is pnl_usd minus cost_usd, as the ledger
    computes them; both stay NULL without a PnL."""
    row = {"run_id": run_id, "ts": ts, **columns}
    pnl = row.get("realized_pnl_bps")
    if pnl is not None and row.get("pnl_usd") is None:
        row["pnl_usd"] = pnl * ((row.get("size_usd") or SIZE_USD) / 1e4)
    if row.get("pnl_usd") is not None and row.get("net_usd") is None:
        row["net_usd"] = row["pnl_usd"] - (row.get("cost_usd") or 0.0)
    return row


def full_row(run_id: str, ts: dt.datetime, **columns: Any) -> dict[str, Any]:
    """A ledger row with every column (`FULL_ROW` unless given): what forensics reads."""
    return ledger_row(run_id, ts, **{**FULL_ROW, **columns})


def run(run_id: str, agent: str | None, pnl: float | None, *, hour: float = 0.0,
        start: dt.datetime = T0, strategy: str | None = "S", errors: int = 0,
        latency_ms: float | None = 100.0, ts: dt.datetime | None = None, cost_usd: float = 0.0,
        known: dt.datetime | None = None, lag_h: float = 0.0) -> dict[str, Any]:
    """One run with the columns governance reads, at `ts` or `hour` hours after `start`;
    realized when it has a PnL (net_bps = pnl - cost, the default size), else open. Its PnL
    is known at `known`, else `lag_h` hours after its ts (default: at its ts); open runs never."""
    when = ts if ts is not None else h(hour, start)
    if known is None:
        known = when + dt.timedelta(hours=lag_h)
    return ledger_row(
        run_id, when, agent=agent, strategy=strategy,
        known_ts=known if pnl is not None else None, realized_pnl_bps=pnl, errors=errors,
        latency_ms=latency_ms, cost_usd=cost_usd,
        net_bps=None if pnl is None else pnl - cost_usd * 1e4 / SIZE_USD,
        status="realized" if pnl is not None else "open")


def series(agent: str, pnls: Iterable[float | None], *, strategy: str | None = "S",
           start_hour: float = 0.0, prefix: str | None = None, **kw: Any) -> list[dict[str, Any]]:
    """Runs of one agent an hour apart: run ids <prefix>0000, <prefix>0001, ..."""
    p = prefix if prefix is not None else agent
    return [run(f"{p}{i:04d}", agent, v, hour=start_hour + i, strategy=strategy, **kw)
            for i, v in enumerate(pnls)]


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` by column name. A column the table lacks (a store migrated only so far)
    is left out; the table's types apply."""
    if not rows:
        return
    have = {str(r[0]) for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]).fetchall()}
    cols = [c for c in dict.fromkeys(k for r in rows for k in r) if c in have]
    tbl = pa.table({c: pa.array([r.get(c) for r in rows]) for c in cols})
    con.register("_test_rows", tbl)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _test_rows")
    finally:
        con.unregister("_test_rows")


def insert(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Ledger rows (`ledger_row`, `full_row`, `run`, `series`) into `ledger`."""
    insert_rows(con, "ledger", rows)


def insert_bars(con: duckdb.DuckDBPyConnection, symbol: str, start: dt.datetime, opens: list[float],
                interval_s: int = 3600) -> None:
    insert_rows(con, "bars", [
        {"symbol": symbol, "interval_s": interval_s, "ts": start + dt.timedelta(seconds=interval_s * i),
         "open": float(o), "high": float(o), "low": float(o), "close": float(o), "volume": 1.0}
        for i, o in enumerate(opens)])


def insert_alpha(con: duckdb.DuckDBPyConnection, run_id: str, ts: dt.datetime, symbol: str = "BTC",
                 direction: str = "LONG", regime: str | None = None, horizon_s: float | None = None,
                 agent: str = "A") -> None:
    insert_rows(con, "alpha", [{
        "event_id": f"e-{run_id}-{symbol}", "run_id": run_id, "agent": agent, "ts": ts,
        "symbol": symbol, "direction": direction, "score_final": 1.0, "regime": regime,
        "size_usd": 10_000.0, "horizon_s": horizon_s, "strategy": "S"}])


def exclude(con: duckdb.DuckDBPyConnection, run_ids: Iterable[str]) -> None:
    con.executemany("INSERT INTO run_exclusions VALUES (?, 'test', 'excluded in a test', NULL)",
                    [[r] for r in run_ids])


GOV_TABLES = ("ledger", "decisions", "governance_policies", "decision_head", "signed_heads",
              "run_exclusions", "gate_progress", "gate_seen", "ledger_changes")


def reset(con: duckdb.DuckDBPyConnection) -> None:
    for t in GOV_TABLES:
        con.execute(f"DELETE FROM {t}")
