"""Hand-built market data and events for the ledger tests (SQL inserts, no importer)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from alphatrace.ledger import policy as rpolicy
from alphatrace.ledger.reconcile import ReconcileReport, reconcile
from alphatrace.policy import parse_policy_text
from alphatrace.store import Store

T0 = dt.datetime(2024, 1, 1)
_ids = itertools.count(1)


def at(hours: float = 0.0, minutes: float = 0.0) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours, minutes=minutes)


def add_bars(store: Store, symbol: str, opens: Sequence[float | None], *,
             interval_s: int = 3600, start: dt.datetime = T0) -> None:
    """Bar i opens at start + i·interval with opens[i]; None leaves a hole (missing bar)."""
    rows = [(symbol, interval_s, start + dt.timedelta(seconds=i * interval_s), o)
            for i, o in enumerate(opens) if o is not None]
    store.con.executemany(
        "INSERT INTO bars (symbol, interval_s, ts, open) VALUES (?, ?, ?, ?)", rows)


def add_ticks(store: Store, symbol: str, ticks: Iterable[tuple[dt.datetime, float]],
              interval_s: int = 0) -> None:
    data = [(symbol, interval_s, t, p) for t, p in ticks]
    if data:
        store.con.executemany(
            "INSERT INTO bars (symbol, interval_s, ts, open) VALUES (?, ?, ?, ?)", data)


def add_funding(store: Store, symbol: str,
                rows: Iterable[tuple[dt.datetime, float, float | None]]) -> None:
    data = [(symbol, t, r, m) for t, r, m in rows]
    if data:
        store.con.executemany(
            "INSERT INTO funding (symbol, ts, funding_rate, mark_price) VALUES (?, ?, ?, ?)", data)


def add_alpha(store: Store, run_id: str, symbol: str, direction: str,
              ts: dt.datetime | None, *, agent: str = "A", size_usd: float | None = None,
              horizon_s: float | None = None, strategy: str | None = None,
              score: float | None = None, event_id: str | None = None) -> str:
    eid = event_id or f"a{next(_ids)}"
    store.con.execute(
        "INSERT INTO alpha (event_id, run_id, agent, ts, symbol, direction, score_final, "
        "size_usd, horizon_s, strategy, file_id, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        [eid, run_id, agent, ts, symbol, direction, score, size_usd, horizon_s, strategy,
         next(_ids)])
    return eid


def add_telemetry(store: Store, run_id: str, *, agent: str = "A", **fields: Any) -> None:
    cols = ["event_id", "run_id", "agent", "file_id", "line", *fields]
    vals = [f"t{next(_ids)}", run_id, agent, 1, next(_ids), *fields.values()]
    store.con.execute(f"INSERT INTO telemetry ({', '.join(cols)}) VALUES "
                      f"({', '.join('?' for _ in cols)})", vals)


def add_pnl(store: Store, run_id: str, bps: float, *, symbol: str | None = None,
            revision: int = 0, ts: dt.datetime | None = None, file_id: int = 1,
            line: int | None = None, agent: str | None = None) -> None:
    store.con.execute(
        "INSERT INTO pnl (event_id, run_id, realized_pnl_bps, ts, agent, symbol, revision, "
        "file_id, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [f"p{next(_ids)}", run_id, bps, ts, agent, symbol, revision, file_id,
         line if line is not None else next(_ids)])


def policy(text: str | None = None) -> rpolicy.ReconcileConfig:
    return rpolicy.load(None if text is None else parse_policy_text(text, "test.yaml"))


def run_reconcile(store: Store, text: str | None = None, full: bool = False) -> ReconcileReport:
    return reconcile(store, policy(text), full=full)


def row(store: Store, sql: str, params: list[Any]) -> dict[str, Any]:
    cur = store.con.execute(sql, params)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0], strict=True))


def leg(store: Store, event_id: str) -> dict[str, Any]:
    return row(store, "SELECT * FROM legs WHERE event_id = ?", [event_id])


def run(store: Store, run_id: str) -> dict[str, Any]:
    return row(store, "SELECT * FROM ledger WHERE run_id = ?", [run_id])


F = 5 / 1e4  # the default fee rate, 5 bps a side


def long_bps(entry: float, exit_: float, f: float = F) -> float:
    """docs/architecture.md §Reconciliation LONG price leg, written out independently of the SQL."""
    return ((exit_ * (1 - f)) / (entry * (1 + f)) - 1) * 1e4


def short_bps(entry: float, exit_: float, f: float = F) -> float:
    return (1 - (exit_ * (1 + f)) / (entry * (1 - f))) * 1e4


def import_bars(store: Store, symbol: str, rows: Sequence[tuple[dt.datetime, float]],
                label: str) -> Any:
    """`rows` (ts, open; high = low = close = open) through `market import`, as a CSV file
    named for the interval (`label`: '1h', '15m'): how a live feed or a correction arrives."""
    import tempfile
    from pathlib import Path

    from alphatrace.market.importer import import_files

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{symbol}_{label}.csv"
        path.write_text("ts,open,high,low,close\n" + "".join(
            f"{ts.isoformat()},{o!r},{o!r},{o!r},{o!r}\n" for ts, o in rows))
        return import_files(store, [path])
