"""The relations forensics reads, as SQL over the store (one query per relation, no row loops).

Every relation honours the same filters (agent, strategy, since) and leaves out runs in
`run_exclusions`, so forensics and gates see the same population.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace import metrics
from alphatrace.engines.duckdb import DUCKDB
from alphatrace.forensics.causes import History, LegPath
from alphatrace.forensics.exclusions import INCLUDED_SQL
from alphatrace.market.symbols import symbol_map_sql
from alphatrace.sql import filters


@dataclass(frozen=True)
class Filters:
    agent: str | None = None
    strategy: str | None = None
    since: dt.datetime | None = None

    def where(self, extra: list[str] | None = None) -> tuple[str, list[Any]]:
        conds, params = filters(("agent = ?", self.agent), ("strategy = ?", self.strategy),
                                ("ts >= ?", self.since))
        return " AND ".join([INCLUDED_SQL, *conds, *(extra or [])]), params


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()[0][0])


# --- explain --------------------------------------------------------------------------------

def ledger_row(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    rows = con.sql("SELECT * FROM ledger WHERE run_id = ?", params=[run_id]).to_arrow_table().to_pylist()
    return rows[0] if rows else None


def known_run(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether any event stream has the run (it exists but the ledger was not rebuilt)."""
    return bool(con.execute(
        """SELECT (SELECT count(*) FROM alpha WHERE run_id = ?) + (SELECT count(*) FROM telemetry
           WHERE run_id = ?) + (SELECT count(*) FROM pnl WHERE run_id = ?)""",
        [run_id, run_id, run_id]).fetchall()[0][0])


def exclusion_of(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    rows = con.sql("SELECT rule, reason, policy_hash FROM run_exclusions WHERE run_id = ?",
                   params=[run_id]).to_arrow_table().to_pylist()
    return rows[0] if rows else None


def history_sql(row: dict[str, Any], n: int) -> tuple[str, list[Any]]:
    """(SQL, parameters) of the agent's `n` newest included runs before the run `row`, from
    `ledger` (SQL both engines run)."""
    before = ("(ts < ? OR (ts = ? AND run_id < ?))" if row.get("ts") is not None
              else "run_id <> ?")
    bparams: list[Any] = ([row["ts"], row["ts"], row["run_id"]] if row.get("ts") is not None
                          else [row["run_id"]])
    source = (f"SELECT * FROM ledger WHERE agent IS NOT DISTINCT FROM ? AND {INCLUDED_SQL} "
              f"AND {before} ORDER BY ts DESC, run_id DESC LIMIT {int(n)}")
    return source, [row.get("agent"), *bparams]


def history(con: duckdb.DuckDBPyConnection, row: dict[str, Any], n: int) -> History:
    """The agent's `n` newest included runs before this one, in (ts, run_id) order."""
    source, params = history_sql(row, n)
    m = metrics.compute(con, source, [], ["runs", "p90_latency_ms"], params).to_pylist()[0]
    dev = "abs(h.c - med.m)"
    c = con.execute(
        f"""WITH h AS (SELECT coalesce(cost_usd, 0) AS c FROM ({source})),
                 med AS (SELECT {DUCKDB.quantile("c", 0.5)} AS m FROM h)
            SELECT count(*), any_value(med.m), {DUCKDB.quantile(dev, 0.5)},
                   {DUCKDB.exact_mean(dev)}
            FROM h, med""", params).fetchall()[0]
    return History(runs=int(m["runs"]), p90_latency_ms=m["p90_latency_ms"],
                   cost_runs=int(c[0]), cost_median=c[1], cost_mad=c[2], cost_mean_ad=c[3])


def _finest_interval(con: duckdb.DuckDBPyConnection, symbol: str) -> int | None:
    r = con.execute("SELECT min(interval_s) FROM bars WHERE symbol = ? AND interval_s > 0",
                    [symbol]).fetchall()
    return None if r[0][0] is None else int(r[0][0])


def _path(con: duckdb.DuckDBPyConnection, symbol: str, start: Any, end: Any | None,
          horizon_s: float | None, lookback_s: float,
          interval_s: int | None = None) -> tuple[Any, Any, list[float], list[float]]:
    """Bar opens from the entry bar (first open ≥ start) to the exit bar, plus the lookback."""
    iv = interval_s or _finest_interval(con, symbol)
    if iv is None or start is None:
        return start, end, [], []
    b = "SELECT ts, open FROM bars WHERE symbol = ? AND interval_s = ?"
    t0 = con.execute(f"SELECT min(ts) FROM ({b}) WHERE ts >= ?", [symbol, iv, start]).fetchall()[0][0]
    if t0 is None:
        return start, end, [], []
    t1 = end
    if t1 is None:
        target = t0 + dt.timedelta(seconds=float(horizon_s or 0))
        t1 = con.execute(f"SELECT min(ts) FROM ({b}) WHERE ts >= ?", [symbol, iv, target]).fetchall()[0][0]
        if t1 is None:
            t1 = target  # still open: judge the bars seen so far
    path = [r[0] for r in con.execute(
        f"SELECT open FROM ({b}) WHERE ts >= ? AND ts <= ? ORDER BY ts", [symbol, iv, t0, t1]).fetchall()]
    lb = [r[0] for r in con.execute(
        f"SELECT open FROM ({b}) WHERE ts >= ? AND ts < ? ORDER BY ts",
        [symbol, iv, t0 - dt.timedelta(seconds=lookback_s), t0]).fetchall()]
    return t0, t1, path, lb


def leg_paths(con: duckdb.DuckDBPyConnection, run_id: str, default_horizon_s: float,
              lookback_s: float) -> list[LegPath]:
    """Each directional leg's holding window and price path.

    Reconciled legs (the `legs` table) give the market symbol, bar interval and entry/exit
    times; a run not reconciled yet falls back to its alpha events: the first bar at or after
    the signal, to the first bar a horizon later (docs/architecture.md §Reconciliation).
    """
    out: list[LegPath] = []
    if _exists(con, "legs"):
        rows = con.execute(
            """SELECT market_symbol, regime, ts, entry_ts, exit_ts, horizon_s, interval_s
               FROM legs WHERE run_id = ? AND direction <> 'FLAT' AND market_symbol IS NOT NULL
               ORDER BY ts, market_symbol""", [run_id]).fetchall()
        for sym, regime, ts, t0, t1, hz, iv in rows:
            a, b, path, lb = _path(con, sym, t0 or ts, t1, hz or default_horizon_s, lookback_s, iv)
            out.append(LegPath(sym, regime, a, b, path, lb, "legs"))
        if rows:
            return out
    rows = con.execute(
        f"""SELECT coalesce(m.symbol, a.symbol), a.regime, a.ts, coalesce(a.horizon_s, ?)
            FROM alpha a LEFT JOIN ({symbol_map_sql()}) m ON m.alias = a.symbol
            WHERE a.run_id = ? AND a.direction <> 'FLAT'
            ORDER BY a.ts, a.symbol""", [default_horizon_s, run_id]).fetchall()
    for sym, regime, ts, hz in rows:
        a, b, path, lb = _path(con, sym, ts, None, hz, lookback_s)
        out.append(LegPath(sym, regime, a, b, path, lb))
    return out


# --- clusters -------------------------------------------------------------------------------

BASE_COLUMNS = {
    "latency_ms": "latency_ms", "tokens_in": "tokens_in", "tokens_out": "tokens_out",
    "cost_usd": "cost_usd", "errors": "errors", "score_final": "score_final",
    "symbols": "symbols", "direction": "direction", "regime": "regime", "model": "model",
    "agent": "agent", "strategy": "strategy", "hour": "CAST(hour(ts) AS BIGINT)",
}


_ATTR_EVENTS = """ev AS (SELECT run_id, attrs FROM alpha WHERE attrs IS NOT NULL
            UNION ALL SELECT run_id, attrs FROM telemetry WHERE attrs IS NOT NULL)"""


def attr_key_counts(con: duckdb.DuckDBPyConnection, f: Filters,
                    target: str) -> list[tuple[str | None, str | None, str, int]]:
    """(agent, strategy, key, runs): how many of the (agent, strategy)'s included runs with a
    `target` value carry `key` as a number in an alpha or telemetry event's attrs. A run has
    one agent and one strategy, so a population's count of a key is the sum of its rows
    (`top_attr_keys`): one query serves the store, every agent and every strategy class."""
    where, params = f.where([f"{target} IS NOT NULL"])
    rows = con.execute(
        f"""WITH runs AS (SELECT run_id, agent, strategy FROM ledger WHERE {where}),
                 {_ATTR_EVENTS},
                 kv AS (SELECT runs.run_id, runs.agent, runs.strategy, ev.attrs,
                               unnest(json_keys(ev.attrs)) AS k
                        FROM ev JOIN runs USING (run_id))
            SELECT agent, strategy, k, count(DISTINCT run_id) FROM kv
            WHERE json_type(attrs, '$."' || replace(k, '"', '\\"') || '"')
                  IN ('BIGINT', 'UBIGINT', 'DOUBLE')
            GROUP BY agent, strategy, k""", params).fetchall()
    return [(r[0], r[1], str(r[2]), int(r[3])) for r in rows]


def top_attr_keys(counts: list[tuple[str, int]], limit: int) -> list[str]:
    """The `limit` keys carried by the most runs, ties by key, from (key, runs) terms of
    `attr_key_counts` (a key's terms are added)."""
    total: dict[str, int] = {}
    for k, n in counts:
        total[k] = total.get(k, 0) + n
    return sorted(total, key=lambda k: (-total[k], k))[:max(limit, 0)]


def numeric_attr_keys(con: duckdb.DuckDBPyConnection, f: Filters, target: str,
                      limit: int) -> list[str]:
    """The numeric attrs of the runs `f` selects that have a `target` value (the runs the
    search has), the most widespread first."""
    if limit <= 0:
        return []
    return top_attr_keys([(k, n) for _, _, k, n in attr_key_counts(con, f, target)], limit)


def attr_column(i: int) -> str:
    """The name of `cluster_frame`'s column of its `attr_keys[i]`."""
    return f"attr_{i}"


def cluster_frame(con: duckdb.DuckDBPyConnection, f: Filters, target: str,
                  features: list[str], attr_keys: list[str],
                  subjects: tuple[list[str], list[str]] | None = None) -> pa.Table:
    """One row per included run with a `target` value, in (ts, run_id) order: run_id, ts, y,
    the base features, `_agent` and `_strategy` (to split it into populations), and the
    `attr_column(i)` columns (the mean of the run's numeric values of `attr_keys[i]`).
    `subjects` (agents, strategies) keeps only their runs."""
    extra = [f"{target} IS NOT NULL"]
    if subjects is not None:
        extra.append("(list_contains(CAST(? AS VARCHAR[]), agent) OR list_contains(CAST(? AS VARCHAR[]), strategy))")
    where, params = f.where(extra)
    if subjects is not None:
        params = [*params, list(subjects[0]), list(subjects[1])]
    cols = ", ".join(f"{BASE_COLUMNS[c]} AS \"{c}\"" for c in features)
    sel = (f"run_id, ts, {target} AS y" + (f", {cols}" if cols else "")
           + ", agent AS _agent, strategy AS _strategy")
    if not attr_keys:
        return con.sql(f"SELECT {sel} FROM ledger WHERE {where} ORDER BY ts, run_id",
                       params=params).to_arrow_table()
    # exact means: the same bits whatever order the events come in (an export read on Spark)
    aggs = ", ".join(f"{DUCKDB.exact_sum('v', 'k = ?')} / count(v) FILTER (WHERE k = ?) "
                     f"AS {attr_column(i)}" for i in range(len(attr_keys)))
    q = f"""
WITH runs AS (SELECT {sel} FROM ledger WHERE {where}),
     {_ATTR_EVENTS},
     kv AS (SELECT run_id, k, TRY_CAST(json_extract_string(attrs, '$."' || replace(k, '"', '\\"') || '"') AS DOUBLE) AS v
            FROM (SELECT ev.run_id, ev.attrs, unnest(json_keys(ev.attrs)) AS k
                  FROM ev WHERE ev.run_id IN (SELECT run_id FROM runs))),
     wide AS (SELECT run_id, {aggs} FROM kv GROUP BY run_id)
SELECT runs.*, {", ".join(f"wide.{attr_column(i)}" for i in range(len(attr_keys)))}
FROM runs LEFT JOIN wide USING (run_id) ORDER BY runs.ts, runs.run_id"""
    keys = [k for k in attr_keys for _ in (0, 1)]  # each key twice: sum and count
    return con.sql(q, params=[*params, *keys]).to_arrow_table()


# --- change points --------------------------------------------------------------------------

# The per-run series the change points search: each is the per-run value its metric averages.
SERIES_SQL = {
    name: per_run
    for name in ("cost_per_run", "tokens_per_run", "mean_latency_ms", "error_rate", "mean_pnl_bps")
    if (per_run := metrics.METRICS[name].per_run) is not None
}


def numbered_sql(f: Filters) -> tuple[str, list[Any]]:
    """Included runs with their 1-based position in their agent's (ts, run_id) order."""
    where, params = f.where()
    return (f"""SELECT *, row_number() OVER (PARTITION BY agent ORDER BY ts, run_id) AS run_index
                FROM ledger WHERE {where}""", params)


def series_frame(con: duckdb.DuckDBPyConnection, f: Filters, names: list[str]) -> pa.Table:
    src, params = numbered_sql(f)
    cols = ", ".join(f"CAST({SERIES_SQL[n]} AS DOUBLE) AS \"{n}\"" for n in names)
    return con.sql(f"SELECT agent, run_id, ts, run_index, {cols} FROM ({src}) "
                   "ORDER BY agent, run_index", params=params).to_arrow_table()


def segment_metric(con: duckdb.DuckDBPyConnection, f: Filters, agent: str, metric: str,
                   lo: int, hi: int) -> float | None:
    """`metric` (from the registry) over the agent's runs with lo ≤ run_index < hi."""
    src, params = numbered_sql(f)
    source = f"SELECT * FROM ({src}) WHERE agent = ? AND run_index >= ? AND run_index < ?"
    out = metrics.compute(con, source, [], [metric], [*params, agent, lo, hi]).to_pylist()[0]
    v = out[metric]
    return None if v is None else float(v)
