"""Gate backtest: replay a policy run by run over the whole history, from a clean lifecycle.

After every eligible run of every subject, the gates are evaluated over the window ending at
that run, exactly as `gates evaluate --as-of <that run>` would see it (same window selection,
same metric module, same rule evaluator). Vectorised: each (subject, run) point expands to the
runs of its window (at most N rows with a run-count window), the metric module aggregates all
points at once grouped by (scope, subject, point), and the rules are evaluated as vectors. Then
per subject: the first kill (own rule, or the cascade of a killed strategy it has runs in), the
first promotion before that, and what the runs after the kill earned or lost: the PnL the kill
would have avoided.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from alphatrace import metrics
from alphatrace.governance import expr
from alphatrace.governance.gates import metric_env
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import eligible_sql, needed_columns, subjects_sql
from alphatrace.store.connection import registered

PTS, EVAL, KILL = "_alphatrace_bt_points", "_alphatrace_bt_eval", "_alphatrace_bt_kills"
Point = tuple[Any, str]  # (ts, run_id): the order of runs everywhere


def _expansion_sql(gp: GovernancePolicy) -> str:
    n = gp.gates.window.runs
    secs = gp.gates.window.seconds
    time_cut = f"w.ts > e._end_ts - to_microseconds({round(secs * 1e6)})" if secs else "true"
    if n is not None:
        return f"""
SELECT e._end, w.* FROM (
  SELECT scope, subject, _i AS _end, ts AS _end_ts,
         unnest(range(greatest(1, _i - {int(n)} + 1), _i + 1)) AS _j
  FROM {PTS}) e
JOIN {PTS} w ON w.scope = e.scope AND w.subject = e.subject AND w._i = e._j
WHERE {time_cut}"""
    return f"""
SELECT e._i AS _end, w.* FROM (SELECT scope, subject, _i, ts AS _end_ts FROM {PTS}) e
JOIN {PTS} w ON w.scope = e.scope AND w.subject = e.subject AND w._i <= e._i
WHERE {time_cut}"""


def _first_rule(gp: GovernancePolicy, env: dict[str, expr.FloatArray], scopes: np.ndarray[Any, Any],
                n: int, action: str) -> np.ndarray[Any, Any]:
    """Index (into gp.gate_rules) of the first rule of `action` firing at each point; -1 none.
    A point with a non-finite metric fires nothing: `gates evaluate` records it as an `error`."""
    conclusive = env["runs"] >= gp.gates.min_runs
    for v in env.values():
        conclusive &= ~np.isinf(v)
    out = np.full(n, -1, dtype=np.int64)
    for k, g in enumerate(gp.gate_rules):
        if g.rule.action != action:
            continue
        m = expr.evaluate(g.ast, env, n) & conclusive & (out < 0)
        if g.rule.scope is not None:
            m &= np.isin(scopes, g.rule.scope)
        out[m] = k
    return out


def run(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> dict[str, Any]:
    names = gp.gate_metrics()
    base, params = eligible_sql(con, gp, needed_columns(con, names), None)
    subj = subjects_sql(base, list(gp.gates.scope))
    pts = con.sql(f"SELECT s.*, row_number() OVER (PARTITION BY scope, subject ORDER BY ts, run_id) "
                  f"AS _i FROM ({subj}) s", params=params).to_arrow_table()
    with registered(con, PTS, pts):
        tbl = metrics.compute(con, _expansion_sql(gp), ["scope", "subject", "_end"], names)
        n = tbl.num_rows
        env = metric_env(tbl, names)
        scopes = np.asarray(tbl.column("scope").to_pylist(), dtype=object)
        kill = _first_rule(gp, env, scopes, n, "kill")
        promote = _first_rule(gp, env, scopes, n, "promote")
        ev = pa.table({"scope": tbl.column("scope"), "subject": tbl.column("subject"),
                       "_end": tbl.column("_end"), "_kill": kill, "_promote": promote})
        with registered(con, EVAL, ev):
            return _summarise(con, gp)


def _points(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
            ) -> dict[tuple[str, str], tuple[Point, int | None]]:
    return {(str(sc), str(s)): ((ts, str(r)), k) for sc, s, ts, r, k in
            con.execute(sql, params or []).fetchall()}


def _summarise(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> dict[str, Any]:
    rule_names = [g.rule.name for g in gp.gate_rules]
    first = """
SELECT e.scope, e.subject, p.ts, CAST(p.run_id AS VARCHAR), e.{col} FROM (
  SELECT scope, subject, min(_end) AS _end FROM {ev} WHERE {col} >= 0 {extra} GROUP BY ALL
) f JOIN {ev} e USING (scope, subject, _end) JOIN {pts} p ON p.scope = e.scope
  AND p.subject = e.subject AND p._i = e._end"""
    own_kill = _points(con, first.format(col="_kill", ev=EVAL, pts=PTS, extra=""))
    strat_kill = {s: pt for (sc, s), (pt, _) in own_kill.items() if sc == "strategy"}
    members: dict[str, list[tuple[str, Point]]] = {}
    if strat_kill:
        rows = con.execute(
            "SELECT agent, strategy, ts, CAST(run_id AS VARCHAR) FROM ledger WHERE ts IS NOT NULL "
            "AND agent IS NOT NULL AND strategy IN (SELECT unnest(?::VARCHAR[])) "
            "QUALIFY row_number() OVER (PARTITION BY agent, strategy ORDER BY ts, run_id) = 1",
            [sorted(strat_kill)]).fetchall()
        for a, s, ts, r in rows:
            members.setdefault(str(a), []).append((str(s), (ts, str(r))))

    kills: dict[tuple[str, str], dict[str, Any]] = {}
    for (sc, s), (pt, k) in own_kill.items():
        kills[(sc, s)] = {"point": pt, "rule": rule_names[int(k or 0)], "cascade_from": None}
    for agent, joins in members.items():
        cascade = min((max(strat_kill[s], first_pt), s) for s, first_pt in joins)
        key = ("agent", agent)
        mine = kills.get(key)
        if mine is None or cascade[0] < mine["point"]:
            kills[key] = {"point": cascade[0], "rule": "cascade", "cascade_from": cascade[1]}

    kp = pa.table({
        "scope": [k[0] for k in kills], "subject": [k[1] for k in kills],
        "kts": pa.array([v["point"][0] for v in kills.values()], pa.timestamp("us")),
        "krun": [v["point"][1] for v in kills.values()],
    }, schema=pa.schema([("scope", pa.string()), ("subject", pa.string()),
                         ("kts", pa.timestamp("us")), ("krun", pa.string())]))
    with registered(con, KILL, kp):
        promo = _points(con, f"""
SELECT e.scope, e.subject, p.ts, CAST(p.run_id AS VARCHAR), e._promote FROM (
  SELECT e.scope, e.subject, min(e._end) AS _end FROM {EVAL} e
  JOIN {PTS} p ON p.scope = e.scope AND p.subject = e.subject AND p._i = e._end
  LEFT JOIN {KILL} k ON k.scope = e.scope AND k.subject = e.subject
  WHERE e._promote >= 0 AND (k.kts IS NULL OR p.ts < k.kts
        OR (p.ts = k.kts AND CAST(p.run_id AS VARCHAR) < k.krun))
  GROUP BY ALL
) f JOIN {EVAL} e USING (scope, subject, _end)
JOIN {PTS} p ON p.scope = e.scope AND p.subject = e.subject AND p._i = e._end""")
        totals = con.execute(f"""
SELECT p.scope, p.subject, count(*) AS runs,
  count(*) FILTER (WHERE {_after()}) AS runs_after,
  coalesce(fsum(realized_pnl_bps) FILTER (WHERE {_after()}), 0) AS bps_after,
  coalesce(fsum(pnl_usd) FILTER (WHERE {_after()}), 0) AS usd_after
FROM {PTS} p LEFT JOIN {KILL} k ON k.scope = p.scope AND k.subject = p.subject
GROUP BY ALL ORDER BY p.scope, p.subject""").fetchall()

    subjects: list[dict[str, Any]] = []
    for sc, s, runs, runs_after, bps_after, usd_after in totals:
        key = (str(sc), str(s))
        kill = kills.get(key)
        prom = promo.get(key)
        killed = kill is not None
        subjects.append({
            "subject": key[1], "scope": key[0], "runs": int(runs),
            "promoted_at": prom[0][0] if prom else None,
            "promoted_run": prom[0][1] if prom else None,
            "promote_rule": rule_names[int(prom[1] or 0)] if prom else None,
            "killed_at": kill["point"][0] if kill else None,
            "killed_run": kill["point"][1] if kill else None,
            "kill_rule": kill["rule"] if kill else None,
            "cascade_from": kill["cascade_from"] if kill else None,
            "runs_after_kill": int(runs_after) if killed else 0,
            "pnl_after_kill_bps": float(bps_after) if killed else 0.0,
            "pnl_after_kill_usd": float(usd_after) if killed else 0.0,
            "avoided_usd": 0.0 - float(usd_after) if killed else 0.0,
        })
    agents = [r for r in subjects if r["scope"] == "agent"]
    summary = {
        "policy_hash": gp.hash,
        "subjects": len(subjects),
        "promoted": sum(1 for r in subjects if r["promoted_at"] is not None),
        "killed": sum(1 for r in subjects if r["killed_at"] is not None),
        "cascaded": sum(1 for r in subjects if r["cascade_from"] is not None),
        "agents_avoided_bps": 0.0 - sum(r["pnl_after_kill_bps"] for r in agents),
        "agents_avoided_usd": sum(r["avoided_usd"] for r in agents),
    }
    return {"summary": summary, "subjects": subjects}


def _after() -> str:
    return ("k.kts IS NOT NULL AND (p.ts > k.kts OR (p.ts = k.kts "
            "AND CAST(p.run_id AS VARCHAR) > k.krun))")
