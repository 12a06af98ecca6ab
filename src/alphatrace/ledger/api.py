"""The ledger area of the Python API: `Ledger`, an object on a store whose methods
`alphatrace.Database` exposes (`db.reconcile`, `db.ledger`, `db.agents`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from alphatrace import metrics
from alphatrace.errors import StoreError
from alphatrace.ledger import policy as rpolicy
from alphatrace.ledger.query import SUMMARY_SQL, check_status, parse_since, where_sql
from alphatrace.ledger.reconcile import ReconcileReport, Step, reconcile
from alphatrace.policy import Policy
from alphatrace.store import Store
from alphatrace.store.connection import has_table
from alphatrace.utc import aware_table, utc_result

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

LEDGER_MIGRATION = 6


@dataclass
class LedgerResult:
    """Ledger rows ordered by (ts, run_id), Arrow-backed, plus the status summary of the
    selection (before any status filter)."""

    table: pa.Table
    summary: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        out = pl.from_arrow(self.table)
        assert isinstance(out, pl.DataFrame)
        return out

    def to_pylist(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()


def require_ledger_schema(con: duckdb.DuckDBPyConnection) -> None:
    """A store opened read-only is not migrated: refuse a pre-ledger one with a clear message."""
    if LEDGER_MIGRATION not in applied_versions(con):
        raise StoreError("this store predates the ledger tables; run `alphatrace reconcile` "
                         "(it upgrades the store) first")


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Migrations a store has, without creating anything (works read-only)."""
    if not has_table(con, "schema_migrations"):
        return set()
    return {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}


def ledger_rows(con: duckdb.DuckDBPyConnection, agent: str | None = None,
                strategy: str | None = None,
                since: str | dt.datetime | dt.date | float | None = None,
                status: str | None = None) -> LedgerResult:
    require_ledger_schema(con)
    st = check_status(status)
    since_ts = parse_since(since)
    where, params = where_sql(agent, strategy, since_ts, st)
    table = con.sql(f"SELECT * FROM ledger{where} ORDER BY ts NULLS LAST, run_id",
                    params=params or None).to_arrow_table()
    swhere, sparams = where_sql(agent, strategy, since_ts, None)
    cur = con.execute(SUMMARY_SQL + swhere, sparams)
    names = [d[0] for d in cur.description]
    row = cur.fetchall()[0]
    summary = {n: int(v or 0) for n, v in zip(names, row, strict=True)}
    return LedgerResult(table, summary)


def agent_summary(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """One dict per agent (sorted by agent): the summary metrics (metrics.SUMMARY) over its runs."""
    require_ledger_schema(con)
    t = metrics.compute(con, "SELECT * FROM ledger WHERE agent IS NOT NULL", ["agent"],
                        list(metrics.SUMMARY))
    return t.to_pylist()


class Ledger:
    """Reconcile the ledger and read it (docs/ledger.md)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def reconcile(self, policy: Policy | str | Path | None = None, *, full: bool = False,
                  step: Step | None = None) -> ReconcileReport:
        """Price new or changed signals and rebuild the ledger; see `alphatrace reconcile`.

        `policy`: a loaded Policy, a policy file, or None for the shipped default. `full`
        re-prices every leg (the result is the same; incremental is just faster).
        """
        return reconcile(self.store, rpolicy.load(policy), full=full, step=step)

    def ledger(self, agent: str | None = None, strategy: str | None = None,
               since: str | dt.datetime | dt.date | float | None = None,
               status: str | None = None) -> LedgerResult:
        """Ledger rows as Arrow (`.table`, `.to_pandas()`, `.to_polars()`), ordered by (ts, run_id);
        times are UTC-aware."""
        res = ledger_rows(self.store.con, agent, strategy, since, status)
        return LedgerResult(aware_table(res.table), res.summary)

    @utc_result
    def agents(self) -> list[dict[str, Any]]:
        """Per-agent summary (the metric registry, docs/architecture.md §Ledger; see `alphatrace agents`)."""
        return agent_summary(self.store.con)
