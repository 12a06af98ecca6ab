"""What is in a demo store, as plain rows: the report `alphatrace demo` ends with.

Read from the store rather than from the simulator, so the summary shows what ingest actually
kept (a lost or doubled event would show up here, not be hidden by the generator's counts).
"""

from __future__ import annotations

from typing import Any

import duckdb

from alphatrace.store import Store


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


MARKET_SQL = """
SELECT symbol, kind, interval_s, rows, first_ts, last_ts FROM (
  SELECT symbol, 'bars' AS kind, interval_s, count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts
  FROM bars GROUP BY symbol, interval_s
  UNION ALL
  SELECT symbol, 'funding', NULL, count(*), min(ts), max(ts) FROM funding GROUP BY symbol
) ORDER BY symbol, kind, interval_s
"""

EVENTS_SQL = """
SELECT kind, events, runs FROM (
  SELECT 'telemetry' AS kind, count(*) AS events, count(DISTINCT run_id) AS runs FROM telemetry
  UNION ALL SELECT 'alpha', count(*), count(DISTINCT run_id) FROM alpha
  UNION ALL SELECT 'pnl', count(*), count(DISTINCT run_id) FROM pnl
) ORDER BY CASE kind WHEN 'telemetry' THEN 1 WHEN 'alpha' THEN 2 ELSE 3 END
"""

# One row per (strategy, agent); pnl events carry no strategy, so they join through run_id.
AGENTS_SQL = """
WITH tel AS (
  SELECT agent, any_value(strategy) AS strategy, count(DISTINCT run_id) AS runs,
         count(*) AS llm_calls, string_agg(DISTINCT model, ', ' ORDER BY model) AS models,
         sum(tokens_in + tokens_out) AS tokens, round(sum(cost_usd), 4) AS cost_usd,
         count(DISTINCT run_id) FILTER (WHERE errors > 0) AS error_runs
  FROM telemetry GROUP BY agent
),
sig AS (
  SELECT agent, any_value(strategy) AS strategy, count(DISTINCT run_id) AS signals,
         count(*) AS legs
  FROM alpha GROUP BY agent
),
ext AS (
  SELECT a.agent, count(DISTINCT p.run_id) AS ext_pnl_runs
  FROM pnl p JOIN (SELECT DISTINCT run_id, agent FROM alpha) a USING (run_id) GROUP BY a.agent
)
SELECT coalesce(t.strategy, s.strategy) AS strategy, coalesce(t.agent, s.agent) AS agent,
       coalesce(t.runs, 0) AS runs, coalesce(s.signals, 0) AS signals,
       coalesce(s.legs, 0) AS legs, coalesce(t.llm_calls, 0) AS llm_calls, t.models,
       coalesce(t.tokens, 0) AS tokens, coalesce(t.cost_usd, 0) AS cost_usd,
       coalesce(t.error_runs, 0) AS error_runs,
       coalesce(e.ext_pnl_runs, 0) AS ext_pnl_runs
FROM tel t FULL JOIN sig s ON s.agent = t.agent
LEFT JOIN ext e ON e.agent = coalesce(t.agent, s.agent)
ORDER BY strategy, agent
"""

STRATEGIES_SQL = """
SELECT strategy, count(DISTINCT agent) AS agents, count(DISTINCT run_id) AS runs
FROM (SELECT strategy, agent, run_id FROM telemetry UNION ALL SELECT strategy, agent, run_id FROM alpha)
GROUP BY strategy ORDER BY strategy
"""

QUARANTINE_SQL = """
SELECT regexp_extract(path, '[^/\\\\]+$') AS file, line, kind, field, reason
FROM quarantine ORDER BY file, line
"""


def summarize(store: Store) -> dict[str, Any]:
    con = store.con
    return {
        "market": _rows(con, MARKET_SQL),
        "events": _rows(con, EVENTS_SQL),
        "strategies": _rows(con, STRATEGIES_SQL),
        "agents": _rows(con, AGENTS_SQL),
        "quarantine": _rows(con, QUARANTINE_SQL),
    }
