"""Hand-built ledgers for governance tests: rows go straight into `ledger`, as the ledger area
would write them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

T0 = dt.datetime(2024, 1, 1)

_TYPES = {
    "run_id": pa.string(), "agent": pa.string(), "strategy": pa.string(),
    "ts": pa.timestamp("us"), "known_ts": pa.timestamp("us"), "realized_pnl_bps": pa.float64(), "errors": pa.int64(),
    "latency_ms": pa.float64(), "cost_usd": pa.float64(), "pnl_usd": pa.float64(),
    "net_usd": pa.float64(), "net_bps": pa.float64(), "status": pa.string(),
}


def run(run_id: str, agent: str | None, pnl: float | None, *, hour: float = 0.0,
        strategy: str | None = "S", errors: int = 0, latency_ms: float | None = 100.0,
        ts: dt.datetime | None = None, cost_usd: float = 0.0, known: dt.datetime | None = None,
        lag_h: float = 0.0) -> dict[str, Any]:
    """One ledger row; pnl_usd follows the default 10,000 USD size (1 bps = 1 USD). Its PnL is
    known at `known`, else `lag_h` hours after its ts (default: at its ts); open runs never."""
    when = ts if ts is not None else T0 + dt.timedelta(hours=hour)
    if known is None:
        known = when + dt.timedelta(hours=lag_h)
    usd = None if pnl is None else pnl * 1.0
    return {"run_id": run_id, "agent": agent, "strategy": strategy, "ts": when,
            "known_ts": known if pnl is not None else None,
            "realized_pnl_bps": pnl, "errors": errors, "latency_ms": latency_ms,
            "cost_usd": cost_usd, "pnl_usd": usd,
            "net_usd": None if usd is None else usd - cost_usd,
            "net_bps": None if pnl is None else pnl - cost_usd,
            "status": "realized" if pnl is not None else "open"}


def series(agent: str, pnls: Iterable[float | None], *, strategy: str | None = "S",
           start_hour: float = 0.0, prefix: str | None = None, **kw: Any) -> list[dict[str, Any]]:
    """Runs of one agent an hour apart: run ids <prefix>0000, <prefix>0001, ..."""
    p = prefix if prefix is not None else agent
    return [run(f"{p}{i:04d}", agent, v, hour=start_hour + i, strategy=strategy, **kw)
            for i, v in enumerate(pnls)]


def insert(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    have = {str(r[0]) for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'ledger'").fetchall()}
    tbl = pa.table({k: pa.array([r[k] for r in rows], t) for k, t in _TYPES.items() if k in have})
    con.register("_test_rows", tbl)
    try:
        con.execute("INSERT INTO ledger BY NAME SELECT * FROM _test_rows")
    finally:
        con.unregister("_test_rows")


def exclude(con: duckdb.DuckDBPyConnection, run_ids: Iterable[str]) -> None:
    con.executemany("INSERT INTO run_exclusions VALUES (?, 'test', 'excluded in a test', NULL)",
                    [[r] for r in run_ids])


GOV_TABLES = ("ledger", "decisions", "governance_policies", "decision_head", "signed_heads",
              "run_exclusions", "gate_progress")


def reset(con: duckdb.DuckDBPyConnection) -> None:
    for t in GOV_TABLES:
        con.execute(f"DELETE FROM {t}")


def h(hours: float) -> dt.datetime:
    """T0 plus `hours`: the tests' times."""
    return T0 + dt.timedelta(hours=hours)
