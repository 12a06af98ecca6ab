"""The agent document: its summary, the series behind its charts, the decisions about it, its
change points and the runs worth opening.

Series are bucketed by run position so a chart never carries more than `points` points,
however many runs the agent has: bucket b holds runs (seq−1)·points // n = b (so with n ≤
points every run is its own point). Cumulative values are those after the bucket's last run;
latency, tokens and cost are the shared metrics (`mean_latency_ms`, `tokens_per_run`,
`cost_per_run`) over the bucket's runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from alphatrace import metrics
from alphatrace.errors import NotFoundError
from alphatrace.forensics.config import SERIES
from alphatrace.governance import journal
from alphatrace.governance.runs import needed_columns
from alphatrace.ledger.query import AGENT_METRICS
from alphatrace.server.dashboard.source import Pending, Source, epoch_ms, jsonable

USAGE = ["mean_latency_ms", "tokens_per_run", "cost_per_run"]
MARKED = ("promote", "kill", "revive")
RUN_COLUMNS = ("run_id", "ts", "symbols", "direction", "status", "realized_pnl_bps", "net_usd",
               "cost_usd", "latency_ms", "errors")
RECENT_RUNS = 15
WORST_RUNS = 10
SERIES_COLUMNS = ("realized_pnl_bps", "pnl_usd", "net_usd", "latency_ms", "tokens_in",
                  "tokens_out", "cost_usd")
ROWS = "_agent_rows"  # the agent's runs, registered per call on the request's own cursor


def agent_rows(con: duckdb.DuckDBPyConnection, agent: str) -> pa.Table:
    """The agent's runs in (ts, run_id) order, with `_pos` (0-based position in that order)
    and only the columns the metrics and series read: one sorted scan of the ledger for all of
    them (text columns other than run_id stay out: at 250,000 runs they double its cost)."""
    cols = dict.fromkeys([*needed_columns(con, list(AGENT_METRICS)), *SERIES_COLUMNS,
                          "run_id", "ts"])
    for text in ("agent", "strategy"):
        cols.pop(text, None)
    tbl = con.sql(f"SELECT {', '.join(cols)} FROM ledger WHERE agent = ? ORDER BY ts, run_id",
                  params=[agent]).to_arrow_table()
    return tbl.append_column("_pos", pa.array(np.arange(tbl.num_rows, dtype=np.int64)))


def run_series(con: duckdb.DuckDBPyConnection, rows: str, points: int) -> dict[str, list[Any]]:
    """Bucketed per-run series of `rows` (from `agent_rows`), oldest first (see the module
    docstring). Timed runs come first in that order (NULLS LAST), so a run's position is its
    sequence number; a bucket's cumulative value is the running sum of the bucket sums: a
    window over a thousand buckets, not over every run."""
    sql = f"""
WITH b AS (
  SELECT _pos * {int(points)} // (SELECT count(*) FROM {rows} WHERE ts IS NOT NULL) AS _b,
         count(*) AS n, arg_max(run_id, _pos) AS run_id, epoch_ms(max(ts)) AS t,
         sum(coalesce(realized_pnl_bps, 0)) AS _bps, sum(coalesce(pnl_usd, 0)) AS _usd,
         sum(coalesce(net_usd, 0)) AS _net, {metrics.select_list(USAGE)}
  FROM {rows} WHERE ts IS NOT NULL GROUP BY _b)
SELECT n, run_id, t, sum(_bps) OVER w AS cum_pnl_bps, sum(_usd) OVER w AS cum_pnl_usd,
       sum(_net) OVER w AS cum_net_usd, {", ".join(f'"{m}"' for m in USAGE)}
FROM b WINDOW w AS (ORDER BY _b ROWS UNBOUNDED PRECEDING) ORDER BY _b"""
    cols = con.sql(sql).to_arrow_table().to_pydict()
    return {k: list(v) for k, v in cols.items()}


def bucket_last(n: int, points: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Index of the last element of each bucket, with the same bucketing as `run_series`."""
    if n == 0:
        return np.array([], dtype=np.int64)
    b = (np.arange(n, dtype=np.int64) * points) // n
    return np.flatnonzero(np.append(b[1:] != b[:-1], True)).astype(np.int64)


def confidence_series(path: pa.Table, points: int) -> dict[str, list[Any]]:
    """The multiplier after each bucket's last eligible run."""
    idx = pa.array(bucket_last(path.num_rows, points))
    ts = path.column("ts").take(idx).to_pylist()
    return {"t": [epoch_ms(t) for t in ts],
            "run_id": path.column("run_id").take(idx).to_pylist(),
            "multiplier": path.column("multiplier_after").take(idx).to_pylist()}


def _ts(v: Any) -> dt.datetime | None:
    if isinstance(v, dt.datetime) or v is None:
        return v
    return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).replace(tzinfo=None)


def changepoints(src: Source, version: Hashable, agent: str) -> tuple[str, list[dict[str, Any]]]:
    """(status, change points of this agent) from the shared forensics result."""
    try:
        doc = src.forensics(version, wait_s=src.side_wait_s)
    except Pending:
        return "computing", []
    except Exception as e:
        return f"failed: {e}", []
    out = []
    for c in doc.get("changepoints", []):
        if c["agent"] != agent:
            continue
        out.append({**c, "t": epoch_ms(_ts(c["ts"]))})
    return "ready", out


def listing(con: duckdb.DuckDBPyConnection, agent: str) -> dict[str, Any]:
    """Strategies, models, time span and the run lists, from the ledger (small results)."""
    cols = ", ".join(RUN_COLUMNS)

    def runs(order: str, limit: int) -> list[dict[str, Any]]:
        return con.sql(f"SELECT {cols} FROM ledger WHERE agent = ? ORDER BY {order} "
                       f"LIMIT {int(limit)}", params=[agent]).to_arrow_table().to_pylist()

    strategies, models, first, last = con.execute(
        """SELECT list(DISTINCT strategy ORDER BY strategy) FILTER (WHERE strategy IS NOT NULL),
                  list(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL),
                  min(ts), max(ts)
           FROM ledger WHERE agent = ?""", [agent]).fetchall()[0]
    return {"strategies": list(strategies or []), "models": list(models or []),
            "first_ts": first, "last_ts": last,
            "recent": runs("ts DESC NULLS LAST, run_id DESC", RECENT_RUNS),
            "worst": runs("net_usd ASC NULLS LAST, ts, run_id", WORST_RUNS)}


def _listing_on(cur: duckdb.DuckDBPyConnection, agent: str) -> dict[str, Any]:
    with closing(cur):
        return listing(cur, agent)


def decisions(con: duckdb.DuckDBPyConnection, agent: str) -> list[dict[str, Any]]:
    """Every record about the agent, newest first, with the run list shortened to a count."""
    recs = journal.read_records(con, agent, "agent")
    out = []
    for r in reversed(recs):
        run_ids = r.get("run_ids")
        out.append({k: r[k] for k in ("seq", "eval_id", "action", "rule", "fired", "blocked",
                                      "state", "cascade_from", "reason", "as_of", "metrics", "hash")}
                   | {"runs": len(run_ids) if isinstance(run_ids, list) else None})
    return out


# The listing runs on a cursor of its own while the request's thread sorts and summarises the
# runs: DuckDB releases the GIL, so with a core free a big agent's page costs the longer of
# the two rather than their sum.
_SIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alphatrace-agent-page")


def core(src: Source, con: duckdb.DuckDBPyConnection, version: Hashable, name: str,
         points: int) -> dict[str, Any]:
    """Everything on the page but the change points (kept per version)."""
    side = _SIDE.submit(_listing_on, con.cursor(), name)  # a cursor is made on its own connection
    rows = agent_rows(con, name)
    if not rows.num_rows:
        side.result()
        raise NotFoundError(f"no agent named {name!r} in the ledger")
    summary = metrics.compute_one(con, rows, list(AGENT_METRICS))
    con.register(ROWS, rows)
    try:
        series = run_series(con, ROWS, points)
    finally:
        con.unregister(ROWS)
    mult = src.multipliers(con, version, None).get(name)
    states = journal.lifecycle_states(con)
    history = decisions(con, name)
    marks = [{"t": epoch_ms(_ts(d["as_of"])), "action": d["action"], "rule": d["rule"],
              "seq": d["seq"], "as_of": d["as_of"]}
             for d in reversed(history) if d["action"] in MARKED and d["as_of"] is not None]
    path = src.confidence_path(con, version, name)
    info = side.result()
    return jsonable({
        "agent": name,
        "summary": {**summary, "strategies": info["strategies"], "models": info["models"],
                    "first_ts": info["first_ts"], "last_ts": info["last_ts"],
                    "state": states.get(("agent", name), "candidate"),
                    "multiplier": None if mult is None else mult["multiplier"],
                    "min_multiplier": None if mult is None else mult["min_multiplier"],
                    "warning": bool(mult["warning"]) if mult is not None else False},
        "points": points,
        "series": series,
        "confidence": confidence_series(path, points),
        "marks": marks,
        "changepoint_metrics": list(SERIES),
        "decisions": history,
        "runs": {"recent": info["recent"], "worst": info["worst"]},
    })


def agent(src: Source, con: duckdb.DuckDBPyConnection, name: str, points: int) -> dict[str, Any]:
    version = src.version(con)
    doc = src.cached(("agent", version, name, points), lambda: core(src, con, version, name, points))
    cp_status, cps = changepoints(src, version, name)
    return {**doc, "changepoints_status": cp_status, "changepoints": jsonable(cps)}
