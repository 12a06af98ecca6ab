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

from alphatrace.engines.dialect import Dialect
from alphatrace.governance import replay
from alphatrace.governance.gates import Decision
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.reads import Reads, StoreReads
from alphatrace.governance.runs import subjects_sql

KILL = "_alphatrace_bt_kills"
_KILLS = pa.schema([("scope", pa.string()), ("subject", pa.string()), ("kts_us", pa.int64()),
                    ("via", pa.string())])


def decisions(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
              reads: Reads | None = None) -> list[Decision]:
    """Every decision the replay finds news, in (knowledge time, scope, subject) order.
    `reads`: where the ledger is read (default: `con`'s); nothing is read from the store's
    log (the lifecycle starts empty)."""
    reads = reads or StoreReads(con)
    target = reads.as_of()
    if target is None:
        return []
    p = reads.plan(gp, {}, target)
    out: list[Decision] = []
    for _, ds in replay.walk(con, gp, p, replay.Walk({}, {}), target, runs=reads):
        out += [d for d, news in ds if news]
    return out


def totals_sql(d: Dialect, gp: GovernancePolicy, base: str) -> str:
    """Per subject of the gates' scopes: its runs, and the number, bps and USD of those
    signalled after its kill was known (`KILL`: scope, subject, kts_us, via)."""
    after = f"k.kts_us IS NOT NULL AND p.ts > {d.ts_from_us('k.kts_us')}"
    return f"""
SELECT p.scope, p.subject, count(*) AS runs,
  count(CASE WHEN {after} THEN 1 END) AS runs_after,
  coalesce({d.exact_sum("p.realized_pnl_bps", after)}, 0) AS bps_after,
  coalesce({d.exact_sum("p.pnl_usd", after)}, 0) AS usd_after
FROM ({subjects_sql(base, list(gp.gates.scope))}) p
LEFT JOIN {KILL} k ON k.scope = p.scope AND k.subject = p.subject
GROUP BY p.scope, p.subject"""


def trigger_sql(d: Dialect, base: str) -> str:
    """Per kill of `KILL`: the run whose knowledge decided it, the newest run known by then
    (in (known_ts, ts, run_id) order) of the subject (its own rule) or of the strategy that
    cascaded."""
    return f"""
SELECT scope, subject, run_id FROM (
  SELECT k.scope, k.subject, p.run_id,
    row_number() OVER (PARTITION BY k.scope, k.subject
                       ORDER BY p.known_ts DESC, p.ts DESC, p.run_id DESC) AS _rk
  FROM {KILL} k JOIN ({subjects_sql(base, ["agent", "strategy"])}) p
    ON p.subject = k.via AND p.scope = CASE WHEN k.via = k.subject THEN k.scope
                                            ELSE 'strategy' END
    AND p.known_ts <= {d.ts_from_us('k.kts_us')}) t
WHERE _rk = 1"""


def run(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
        reads: Reads | None = None) -> dict[str, Any]:
    """The backtest's document. `reads`: where the ledger is read (default: `con`'s)."""
    reads = reads or StoreReads(con)
    ds = decisions(con, gp, reads)
    kills: dict[tuple[str, str], Decision] = {}
    promos: dict[tuple[str, str], Decision] = {}
    for d in ds:
        if d.action == "kill":
            kills.setdefault(d.key, d)
        elif d.action == "promote" and d.key not in kills:
            promos.setdefault(d.key, d)
    kp = pa.table({
        "scope": [k[0] for k in kills], "subject": [k[1] for k in kills],
        "kts_us": pa.array([d.as_of for d in kills.values()], pa.timestamp("us")).cast(pa.int64()),
        "via": [d.cascade_from or d.subject for d in kills.values()],
    }, schema=_KILLS)
    base = reads.runs_sql(gp, ["runs"])
    totals = sorted(reads.query(totals_sql(reads.dialect, gp, base), {KILL: kp}).to_pylist(),
                    key=lambda r: (r["scope"], r["subject"]))
    trigger = {(str(r["scope"]), str(r["subject"])): str(r["run_id"]) for r in
               reads.query(trigger_sql(reads.dialect, base), {KILL: kp}).to_pylist()}

    rule_of = {k: d.rule for k, d in kills.items()}
    subjects: list[dict[str, Any]] = []
    for row in totals:
        key = (str(row["scope"]), str(row["subject"]))
        runs, runs_after = row["runs"], row["runs_after"]
        bps_after, usd_after = row["bps_after"], row["usd_after"]
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

