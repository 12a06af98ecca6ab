"""Hand-built rows for the forensics tables (ledger, alpha, bars, legs), inserted directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.forensics.api import ForensicsAPI
from alphatrace.store import Store

T0 = dt.datetime(2024, 3, 1)


class DB(ForensicsAPI):
    def __init__(self, store: Store) -> None:
        self.store = store


LEDGER_DEFAULTS: dict[str, Any] = {
    "agent": "A", "strategy": "S", "symbols": "BTCUSDT", "direction": "LONG", "score_final": 1.0,
    "regime": None, "latency_ms": 500.0, "tokens_in": 1000, "tokens_out": 200, "cost_usd": 0.01,
    "errors": 0, "model": "m", "entry_price": None, "exit_price": None, "gross_bps": None,
    "fee_bps": None, "funding_bps": None, "paper_pnl_bps": None, "realized_pnl_bps": None,
    "pnl_source": None, "size_usd": 10_000.0, "pnl_usd": None, "net_usd": None, "net_bps": None,
    "execution_gap_bps": None, "status": "realized", "policy_hash": "h",
}


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    t = pa.Table.from_pylist(rows)
    con.register("_rows", t)
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _rows")
    con.unregister("_rows")


def ledger_row(run_id: str, ts: dt.datetime, **kw: Any) -> dict[str, Any]:
    row = {"run_id": run_id, "ts": ts, **LEDGER_DEFAULTS, **kw}
    if row["realized_pnl_bps"] is not None and kw.get("pnl_usd") is None:
        row["pnl_usd"] = row["realized_pnl_bps"] * row["size_usd"] / 1e4
    if row["pnl_usd"] is not None and kw.get("net_usd") is None:
        row["net_usd"] = row["pnl_usd"] - (row["cost_usd"] or 0.0)
    return row


def insert_ledger(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
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
