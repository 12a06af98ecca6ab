"""Gate backtest: a true replay of a policy over the whole history, from an empty lifecycle.

The same point-by-point computation as the catch-up of `gates evaluate`
(governance/replay.py): every subject is judged at each knowledge time at which its window
changes, in time order, with the lifecycle the earlier points left (kills, promotions,
cascades of strategy kills), and the decisions that are news are kept — exactly the records an
evaluation that caught up over the same history on an empty log would append. Nothing is
recorded. Per subject it reports the first kill and the first promotion before it, stamped at
the knowledge time they were decided at, and what the runs signalled after the kill was known
earned or lost: the PnL the kill would have avoided.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.engines.duckdb import DUCKDB
from alphatrace.governance import replay
from alphatrace.governance.gates import Decision
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import (
    data_as_of,
    eligible_sql,
    needed_columns,
    subjects_sql,
)
from alphatrace.store.connection import registered

KILL = "_alphatrace_bt_kills"


def decisions(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> list[Decision]:
    """Every decision the replay finds news, in (knowledge time, scope, subject) order."""
    target = data_as_of(con)
    if target is None:
        return []
    p = replay.plan(con, gp, {}, target)
    out: list[Decision] = []
    for _, ds in replay.walk(con, gp, p, replay.Walk({}, {}), target):
        out += [d for d, news in ds if news]
    return out


def run(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> dict[str, Any]:
    ds = decisions(con, gp)
    kills: dict[tuple[str, str], Decision] = {}
    promos: dict[tuple[str, str], Decision] = {}
    for d in ds:
        if d.action == "kill":
            kills.setdefault(d.key, d)
        elif d.action == "promote" and d.key not in kills:
            promos.setdefault(d.key, d)
    kp = pa.table({
        "scope": [k[0] for k in kills], "subject": [k[1] for k in kills],
        "kts": pa.array([d.as_of for d in kills.values()], pa.timestamp("us")),
        "via": [d.cascade_from or d.subject for d in kills.values()],
    }, schema=pa.schema([("scope", pa.string()), ("subject", pa.string()),
                         ("kts", pa.timestamp("us")), ("via", pa.string())]))
    base, params = eligible_sql(con, gp, needed_columns(con, ["runs"]), None)
    after = "k.kts IS NOT NULL AND p.ts > k.kts"  # signalled after the kill was known
    with registered(con, KILL, kp):
        totals = con.execute(f"""
SELECT p.scope, p.subject, count(*) AS runs,
  count(*) FILTER (WHERE {after}) AS runs_after,
  coalesce({DUCKDB.exact_sum("realized_pnl_bps", after)}, 0) AS bps_after,
  coalesce({DUCKDB.exact_sum("pnl_usd", after)}, 0) AS usd_after
FROM ({subjects_sql(base, list(gp.gates.scope))}) p
LEFT JOIN {KILL} k ON k.scope = p.scope AND k.subject = p.subject
GROUP BY ALL ORDER BY p.scope, p.subject""", params).fetchall()
        # the run whose knowledge decided a kill: the newest run known by then of the subject
        # (own rule) or of the strategy that cascaded
        trigger = {(str(sc), str(s)): str(r) for sc, s, r in con.execute(f"""
SELECT k.scope, k.subject,
  arg_max(CAST(p.run_id AS VARCHAR), row(p.known_ts, p.ts, CAST(p.run_id AS VARCHAR)))
FROM {KILL} k JOIN ({subjects_sql(base, ["agent", "strategy"])}) p
  ON p.subject = k.via AND p.scope = CASE WHEN k.via = k.subject THEN k.scope ELSE 'strategy' END
  AND p.known_ts <= k.kts
GROUP BY ALL""", params).fetchall()}

    rule_of = {k: d.rule for k, d in kills.items()}
    subjects: list[dict[str, Any]] = []
    for sc, s, runs, runs_after, bps_after, usd_after in totals:
        key = (str(sc), str(s))
        kill = kills.get(key)
        prom = promos.get(key)
        killed = kill is not None
        subjects.append({
            "subject": key[1], "scope": key[0], "runs": int(runs),
            "promoted_at": prom.as_of if prom else None,
            "promoted_run": prom.run_ids[-1] if prom and prom.run_ids else None,
            "promote_rule": prom.rule if prom else None,
            "killed_at": kill.as_of if kill else None,
            "killed_run": trigger.get(key) if kill else None,
            "kill_rule": rule_of.get(key),
            "cascade_from": kill.cascade_from if kill else None,
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
    return {"summary": summary, "subjects": subjects,
            "decisions": [d.content() for d in ds]}

