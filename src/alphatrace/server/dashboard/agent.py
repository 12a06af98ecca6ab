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
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace import metrics
from alphatrace.arrays import floats
from alphatrace.errors import NotFoundError
from alphatrace.forensics.config import SERIES
from alphatrace.governance import confidence, journal
from alphatrace.governance.runs import ledger_columns, needed_columns
from alphatrace.server.dashboard.source import Pending, Source, epoch_ms, jsonable
from alphatrace.store.connection import cursor_on

USAGE = ["mean_latency_ms", "tokens_per_run", "cost_per_run"]
MARKED = ("promote", "kill", "revive")
RUN_COLUMNS = ("run_id", "ts", "symbols", "direction", "status", "realized_pnl_bps", "net_usd",
               "cost_usd", "latency_ms", "errors")
RECENT_RUNS = 15
WORST_RUNS = 10
SERIES_COLUMNS = ("realized_pnl_bps", "pnl_usd", "net_usd", "latency_ms", "tokens_in",
                  "tokens_out", "cost_usd")
T = TypeVar("T")
ROWS = "_agent_rows"  # the agent's runs, registered on the series' own cursor


def agent_rows(con: duckdb.DuckDBPyConnection, agent: str) -> pa.Table:
    """The agent's runs in (ts, run_id) order, with `_pos` (0-based position in that order)
    and only the columns the metrics and series read: one sorted scan of the ledger for all of
    them (text columns other than run_id stay out: at 250,000 runs they double its cost)."""
    cols = dict.fromkeys([*needed_columns(con, list(metrics.SUMMARY)), *SERIES_COLUMNS,
                          "run_id", "ts"])
    for text in ("agent", "strategy"):
        cols.pop(text, None)
    have = set(ledger_columns(con))  # a store not yet migrated to 0012 has no known_ts
    cols = {c: None for c in cols if c in have}
    tbl = by_ts_then_run_id(con.sql(
        f"SELECT {', '.join(cols)} FROM ledger WHERE agent = ? ORDER BY ts",
        params=[agent]).to_arrow_table())
    return tbl.append_column("_pos", pa.array(np.arange(tbl.num_rows, dtype=np.int64)))


def by_ts_then_run_id(tbl: pa.Table) -> pa.Table:
    """`tbl` (sorted by ts, NULLs last) with runs that share a timestamp put in run_id order.

    Sorting by ts alone in DuckDB costs a quarter less than by (ts, run_id), which compares
    strings; runs sharing a timestamp are rare, and only when there are any is the table
    sorted again on both keys."""
    ts = tbl.column("ts")
    if tbl.num_rows < 2:
        return tbl
    if ts.null_count <= 1:  # one NULL is last already
        t = ts.cast(pa.int64()).fill_null(np.iinfo(np.int64).max).to_numpy()
        if bool(np.all(t[1:] != t[:-1])):
            return tbl
    idx = pc.sort_indices(tbl, sort_keys=[("ts", "ascending", "at_end"),
                                          ("run_id", "ascending", "at_end")])
    return tbl.take(idx)


def run_series(con: duckdb.DuckDBPyConnection, rows: str, points: int) -> dict[str, list[Any]]:
    """Bucketed per-run series of `rows` (from `agent_rows`), oldest first (see the module
    docstring). Timed runs come first in that order (NULLS LAST), so a run's position is its
    sequence number; a bucket's cumulative value is the running sum of the bucket sums: a
    window over a thousand buckets, not over every run."""
    sql = f"""
WITH b AS (
  SELECT _pos * {int(points)} // (SELECT count(*) FROM {rows} WHERE ts IS NOT NULL) AS _b,
         count(*) AS n, arg_max(run_id, _pos) AS run_id, epoch_ms(max(ts)) AS t,
         fsum(coalesce(realized_pnl_bps, 0)) AS _bps, fsum(coalesce(pnl_usd, 0)) AS _usd,
         fsum(coalesce(net_usd, 0)) AS _net, {metrics.select_list(USAGE)}
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


def span(con: duckdb.DuckDBPyConnection, agent: str) -> dict[str, Any]:
    """Strategies, models and time span (the text columns `agent_rows` leaves out)."""
    strategies, models, first, last = con.execute(
        """SELECT list(DISTINCT strategy ORDER BY strategy) FILTER (WHERE strategy IS NOT NULL),
                  list(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL),
                  min(ts), max(ts)
           FROM ledger WHERE agent = ?""", [agent]).fetchall()[0]
    return {"strategies": list(strategies or []), "models": list(models or []),
            "first_ts": first, "last_ts": last}


def recent_positions(rows: pa.Table, k: int) -> list[int]:
    """Positions in `rows` of the newest `k` runs (ts DESC NULLS LAST, run_id DESC): the
    timed runs backwards, then the untimed ones (last in `rows`, by run_id) backwards."""
    timed = rows.num_rows - rows.column("ts").null_count
    return [*range(timed - 1, max(-1, timed - 1 - k), -1),
            *range(rows.num_rows - 1, timed - 1, -1)][:k]


def worst_positions(rows: pa.Table, k: int) -> list[int]:
    """Positions in `rows` of the `k` runs with the lowest net_usd (NULLs last, ties in
    (ts, run_id) order, which is `rows`' own): the k-th lowest value found by partition, then
    a stable sort of only the runs at or below it."""
    net = floats(rows.column("net_usd"))
    known = np.flatnonzero(~np.isnan(net))
    if len(known) > k:
        kth = np.partition(net[known], k - 1)[k - 1]
        known = known[net[known] <= kth]
    best = known[np.argsort(net[known], kind="stable")][:k]
    rest = np.flatnonzero(np.isnan(net))[:max(0, k - len(best))]
    return [int(i) for i in (*best, *rest)]


def runs_at(con: duckdb.DuckDBPyConnection, agent: str, rows: pa.Table,
            lists: dict[str, list[int]]) -> dict[str, list[dict[str, Any]]]:
    """The run-table rows (`RUN_COLUMNS`) at each list of positions, in one ledger read."""
    ids = {name: rows.column("run_id").take(pa.array(pos, pa.int64())).to_pylist()
           for name, pos in lists.items()}
    wanted = sorted({i for some in ids.values() for i in some})
    got = con.sql(f"SELECT {', '.join(RUN_COLUMNS)} FROM ledger WHERE agent = ? AND "
                  "run_id IN (SELECT unnest(?::VARCHAR[]))", params=[agent, wanted])
    by_id = {r["run_id"]: r for r in got.to_arrow_table().to_pylist()}
    return {name: [by_id[i] for i in some] for name, some in ids.items()}


def _on(cur: duckdb.DuckDBPyConnection, fn: Callable[..., T], *args: Any) -> T:
    """`fn(cur, *args)` on a side thread, closing the cursor after."""
    with closing(cur):
        return fn(cur, *args)


def _series(cur: duckdb.DuckDBPyConnection, rows: pa.Table, points: int) -> dict[str, list[Any]]:
    cur.register(ROWS, rows)
    return run_series(cur, ROWS, points)


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


# The span, then the series and the run tables, run on cursors of their own while the
# request's thread sorts and summarises the runs: DuckDB releases the GIL, so with a core free
# a big agent's page costs the longest of them rather than their sum.
_SIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alphatrace-agent-page")


def core(src: Source, con: duckdb.DuckDBPyConnection, version: Hashable, name: str,
         points: int) -> dict[str, Any]:
    """Everything on the page but the change points (kept per version)."""
    side = _SIDE.submit(_on, cursor_on(con), span, name)  # a cursor is made on its own connection
    rows = agent_rows(con, name)
    if not rows.num_rows:
        side.result()
        raise NotFoundError(f"no agent named {name!r} in the ledger")
    series = _SIDE.submit(_on, cursor_on(con), _series, rows, points)
    lists = {"recent": recent_positions(rows, RECENT_RUNS),
             "worst": worst_positions(rows, WORST_RUNS)}
    runs = _SIDE.submit(_on, cursor_on(con), runs_at, name, rows, lists)
    summary = metrics.compute_one(con, rows, list(metrics.SUMMARY))
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
                    "warning": bool(mult["warning"]) if mult is not None else False,
                    "confidence_note": None if mult is None else confidence.collapse_note(
                        {name: mult["multiplier"]}, src.governance.confidence)},
        "points": points,
        "series": series.result(),
        "confidence": confidence_series(path, points),
        "marks": marks,
        "changepoint_metrics": list(SERIES),
        "decisions": history,
        "runs": runs.result(),
    })


def cache_key(version: Hashable, name: str, points: int) -> tuple[Any, ...]:
    """The memo key of an agent page's core document: the page and the warm-up
    (`routes.Dashboard.warm`) both ask for it here, so they cannot drift apart."""
    return ("agent", version, name, points)


def agent(src: Source, con: duckdb.DuckDBPyConnection, name: str, points: int) -> dict[str, Any]:
    version = src.version(con)
    doc = src.cached(cache_key(version, name, points), lambda: core(src, con, version, name, points))
    cp_status, cps = changepoints(src, version, name)
    return {**doc, "changepoints_status": cp_status, "changepoints": jsonable(cps)}
