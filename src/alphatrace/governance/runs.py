"""Which runs governance reads, as SQL relations over the ledger.

A run counts from its knowledge time (`ledger.known_ts`, when its PnL became known), never
from its signal time: at time T a subject's runs are those with realized PnL, `known_ts <= T`
and (by default) no exclusion from forensics. Everything downstream orders runs by
(known_ts, ts, run_id) — ORDER — so ties are broken the same way on every machine and whatever
order the events were ingested in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import duckdb

from alphatrace import metrics
from alphatrace.forensics.exclusions import included_sql
from alphatrace.governance.policy import SCOPES, GovernancePolicy
from alphatrace.parse import parse_since
from alphatrace.sql import ts_literal
from alphatrace.store.connection import has_table, one, table_columns

# Columns every governance relation carries, whatever the metrics read.
BASE_COLUMNS = ("run_id", "agent", "strategy", "ts", "known_ts", "realized_pnl_bps", "net_usd",
                "pnl_usd")
# The order of runs everywhere in governance: when their PnL became known, then signal time.
ORDER = "known_ts, ts, run_id"
# A run's knowledge time as governance reads it: a row without one (written before migration
# 0012, or by something other than reconcile) counts from its signal time.
KNOWN_TS = "coalesce(known_ts, ts)"


def ledger_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return table_columns(con, "ledger")


def needed_columns(con: duckdb.DuckDBPyConnection, metric_names: list[str]) -> list[str]:
    """Ledger columns the chosen metrics read (found by name in their SQL), plus the base ones."""
    return columns_for(ledger_columns(con), metric_names)


def columns_for(available: Sequence[str], metric_names: list[str]) -> list[str]:
    """Of the ledger columns `available`, those the chosen metrics read (found by name in
    their SQL), plus the base ones and known_ts (whichever engine holds the ledger)."""
    text = " ".join(metrics.get(n).sql for n in metric_names)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    out = [c for c in available if c in BASE_COLUMNS or c in words]
    return out if "known_ts" in out else [*out, "known_ts"]


def ledger_sql(con: duckdb.DuckDBPyConnection, since: dt.datetime | None = None,
               columns: Sequence[str] | None = None) -> str:
    """The ledger as governance reads it. A store not yet migrated to 0012 (opened read-only)
    has no known_ts, and a row with realized PnL but no known_ts was written by something
    other than reconcile (which sets it on every realized row): those runs count from their
    signal time, as they did before knowledge time.

    `since`: only the runs known at or after it. The bound is put on the stored columns (not
    on the coalesced `known_ts`), so DuckDB skips the row groups whose min/max rule them out:
    a read of the newest runs costs what they are, not what the ledger is.

    `columns`: only these ledger columns (and known_ts), not `*`: DuckDB binds every column a
    `*` names in each branch before it drops the unused ones. At 1M runs a live pass's window
    read over 10 of the ledger's 35 columns took 0.8-1.5 ms less, `data_as_of` half
    (bench/RESULTS.md, "#14's 1M round: the window read names its columns")."""
    stored = ledger_columns(con)
    if columns is None:
        star, star_ts = "*", "* REPLACE ({} AS known_ts)"
    else:
        named = [c for c in dict.fromkeys(columns) if c != "known_ts" and c in stored]
        star = ", ".join([*named, "known_ts"])
        star_ts = ", ".join([*named, "{} AS known_ts"])
    if "known_ts" in stored:
        if since is None:
            return f"(SELECT {star_ts.format(KNOWN_TS)} FROM ledger)"
        t = ts_literal(since)
        return (f"(SELECT {star} FROM ledger WHERE known_ts >= {t} UNION ALL "
                f"SELECT {star_ts.format('ts')} FROM ledger "
                f"WHERE known_ts IS NULL AND ts >= {t})")
    legacy = "*, ts AS known_ts" if columns is None else star_ts.format("ts")
    if since is None:
        return f"(SELECT {legacy} FROM ledger)"
    return f"(SELECT {legacy} FROM ledger WHERE ts >= {ts_literal(since)})"


def eligible_sql(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, columns: list[str],
                 as_of: dt.datetime | None, since: dt.datetime | None = None
                 ) -> tuple[str, list[object]]:
    """Runs governance counts at `as_of` (None: all): realized, timed, known by `as_of`, not
    excluded. The one definition of which runs a subject's window may hold at a time.
    `since`: only those known at or after it (see `ledger_sql`)."""
    cols = ", ".join(f"l.{c}" for c in columns)
    params: list[object] = [] if as_of is None else [as_of]
    exclude = gp.eligibility.exclude_flagged and has_table(con, "run_exclusions")
    where = eligible_where("l", None if as_of is None else "?", exclude)
    read = [*columns, *ELIGIBLE_READS, *(["run_id"] if exclude else [])]
    return f"SELECT {cols} FROM {ledger_sql(con, since, read)} l WHERE {where}", params


# The ledger columns `eligible_where` reads (`run_id` too when it excludes).
ELIGIBLE_READS = ("realized_pnl_bps", "ts", "known_ts")


def eligible_where(alias: str, as_of: str | None, exclude: bool) -> str:
    """The condition on ledger rows `alias` (known_ts already coalesced with ts) that makes a
    run count: realized, timed, known by `as_of` (SQL text: a `?` or a literal; None: no bound)
    and, with `exclude`, not in `run_exclusions`. SQL both engines read."""
    where = [f"{alias}.realized_pnl_bps IS NOT NULL", f"{alias}.ts IS NOT NULL",
             f"{alias}.known_ts IS NOT NULL"]
    if as_of is not None:
        where.append(f"{alias}.known_ts <= {as_of}")
    if exclude:
        where.append(included_sql(alias))
    return " AND ".join(where)


def subjects_sql(base: str, scopes: list[str]) -> str:
    """Each run once per subject it belongs to: its agent and its strategy class. `base` is
    named once (a CTE), so its parameters are bound once."""
    parts = [f"SELECT '{scope}' AS scope, {scope} AS subject, b.* FROM _base b "
             f"WHERE {scope} IS NOT NULL" for scope in SCOPES if scope in scopes]
    if not parts:
        parts = ["SELECT NULL::VARCHAR AS scope, NULL::VARCHAR AS subject, b.* FROM _base b "
                 "WHERE false"]
    return f"WITH _base AS ({base}) " + " UNION ALL ".join(parts)


def data_as_of(con: duckdb.DuckDBPyConnection, at_least: dt.datetime | None = None
               ) -> dt.datetime | None:
    """The newest knowledge time in the ledger: the default as-of, derived from data, not the
    clock. `at_least`: a time it is probably not before (a live pass gives the last
    catch-up's): the runs known at or after it are read first (`ledger_sql`'s `since`, whose
    bound DuckDB's min/max filters use: a live pass at 1M runs read the whole ledger for
    this), and the whole ledger only when there is none. When there is one, the newest of
    them is the newest of all, so the answer does not depend on `at_least`."""
    if at_least is not None:
        v = one(con, f"SELECT max(known_ts) FROM {ledger_sql(con, at_least, ['known_ts'])}")[0]
        if isinstance(v, dt.datetime):
            return v
    v = one(con, f"SELECT max(known_ts) FROM {ledger_sql(con, None, ['known_ts'])}")[0]
    return v if isinstance(v, dt.datetime) else None


def parse_as_of(text: str | dt.datetime | None) -> dt.datetime | None:
    """`--as-of` (any form `alphatrace.parse.parse_time` reads) as naive UTC."""
    return parse_since(text, name="--as-of")
