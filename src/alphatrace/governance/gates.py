"""Gate evaluation: per agent and strategy class, the window of runs, its metrics, the action.

One relational pass selects every subject's window (its last N eligible runs, optionally within
a time window ending at the as-of time), the metric module computes every metric per subject,
and the rules are evaluated as vectors over subjects. Only the final assembly of one decision
per subject is a Python loop (over subjects, not runs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from alphatrace import metrics
from alphatrace.arrays import floats
from alphatrace.governance import expr
from alphatrace.governance.canon import round_sig, ts_text
from alphatrace.governance.lifecycle import Action, State, SubjectKey, resolve
from alphatrace.governance.policy import SCOPES, GovernancePolicy
from alphatrace.governance.runs import eligible_sql, needed_columns, subjects_sql
from alphatrace.store.connection import registered

WINDOW_VIEW = "_alphatrace_gate_window"


@dataclass(frozen=True)
class Decision:
    """What the gates decided for one subject at one as-of time (the hashed content)."""

    subject: str
    scope: str
    action: Action
    rule: str | None
    fired: tuple[str, ...]
    blocked: bool
    state: State
    cascade_from: str | None
    metrics: dict[str, Any]
    run_ids: list[str]
    as_of: dt.datetime | None
    policy_hash: str | None
    reason: str | None = None

    @property
    def key(self) -> SubjectKey:
        return (self.scope, self.subject)

    def content(self) -> dict[str, Any]:
        """The fields that are hashed and compared, as JSON-ready values."""
        return {
            "subject": self.subject, "scope": self.scope, "action": self.action,
            "rule": self.rule, "fired": list(self.fired), "blocked": self.blocked,
            "state": self.state, "cascade_from": self.cascade_from, "metrics": self.metrics,
            "run_ids": self.run_ids, "as_of": ts_text(self.as_of),
            "policy_hash": self.policy_hash, "reason": self.reason,
        }


def window_sql(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, as_of: dt.datetime,
               metric_names: list[str]) -> tuple[str, list[object]]:
    """Every subject's window: its newest N eligible runs (and those inside the time window).

    Runs are numbered once in (ts, run_id) order (a total order: run_id is the ledger key), and
    each subject keeps its N highest numbers with a top-N aggregate: a hash aggregate instead
    of sorting every subject's runs, several times faster on large ledgers.
    """
    base, params = eligible_sql(con, gp, needed_columns(con, metric_names), as_of)
    secs = gp.gates.window.seconds
    if secs is not None:
        base = f"SELECT * FROM ({base}) WHERE ts > ?"
        params = [*params, as_of - dt.timedelta(seconds=secs)]
    n = gp.gates.window.runs
    if n is None:
        return (f"SELECT *, row_number() OVER (ORDER BY ts, run_id) AS _o FROM "
                f"({subjects_sql(base, list(gp.gates.scope))})"), params
    tops = [f"SELECT '{sc}' AS scope, {sc} AS subject, unnest(max(_o, {int(n)})) AS _o "
            f"FROM _b WHERE {sc} IS NOT NULL GROUP BY {sc}"
            for sc in SCOPES if sc in gp.gates.scope]
    if not tops:
        tops = ["SELECT NULL::VARCHAR AS scope, NULL::VARCHAR AS subject, NULL::BIGINT AS _o "
                "WHERE false"]
    sql = (f"WITH _b AS (SELECT *, row_number() OVER (ORDER BY ts, run_id) AS _o FROM ({base})), "
           f"_top AS ({' UNION ALL '.join(tops)}) "
           f"SELECT _top.scope, _top.subject, _b.* FROM _top JOIN _b ON _b._o = _top._o")
    return sql, params


def metric_env(tbl: pa.Table, names: list[str]) -> dict[str, expr.FloatArray]:
    """Metric columns as float arrays (NaN = null), rounded as recorded."""
    env = {}
    for n in names:
        env[n] = round_sig(floats(tbl.column(n)))
    return env


@dataclass(frozen=True)
class RuleHits:
    """For each row: the first kill rule and first promote rule that fired, and all that fired."""

    kill: list[str | None]
    promote: list[str | None]
    fired: list[tuple[str, ...]]
    conclusive: expr.BoolArray


def apply_rules(gp: GovernancePolicy, env: Mapping[str, expr.FloatArray], scopes: list[str],
                n: int) -> RuleHits:
    runs = env["runs"]
    conclusive = runs >= gp.gates.min_runs
    scope_arr = np.asarray(scopes, dtype=object)
    masks = []
    for g in gp.gate_rules:
        m = expr.evaluate(g.ast, env, n) & conclusive
        if g.rule.scope is not None:
            m &= np.isin(scope_arr, g.rule.scope)
        masks.append(m)
    kill: list[str | None] = [None] * n
    promote: list[str | None] = [None] * n
    fired: list[tuple[str, ...]] = [()] * n
    any_fired = np.zeros(n, dtype=np.bool_)
    for m in masks:
        any_fired |= m
    for i in np.flatnonzero(any_fired).tolist():
        names = []
        for g, m in zip(gp.gate_rules, masks, strict=True):
            if m[i]:
                names.append(g.rule.name)
                if g.rule.action == "kill" and kill[i] is None:
                    kill[i] = g.rule.name
                if g.rule.action == "promote" and promote[i] is None:
                    promote[i] = g.rule.name
        fired[i] = tuple(names)
    return RuleHits(kill, promote, fired, conclusive)


def _metric_dicts(tbl: pa.Table, env: Mapping[str, expr.FloatArray], names: list[str]) -> list[dict[str, Any]]:
    cols: dict[str, list[Any]] = {}
    for nm in names:
        if metrics.get(nm).unit == "runs":
            cols[nm] = [int(v) if v is not None else None for v in tbl.column(nm).to_pylist()]
        else:
            cols[nm] = [None if np.isnan(v) else float(v) for v in env[nm].tolist()]
    return [{nm: cols[nm][i] for nm in names} for i in range(tbl.num_rows)]


def decide(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, as_of: dt.datetime | None,
           pre_state: Mapping[SubjectKey, State]) -> list[Decision]:
    """Every subject's decision at `as_of` given the lifecycle before; ordered (scope, subject)."""
    if as_of is None:
        return []
    names = gp.gate_metrics()
    sql, params = window_sql(con, gp, as_of, names)
    # sorted by subject then run order, so each subject's run_ids are one slice
    win = con.sql(f"SELECT * FROM ({sql}) ORDER BY scope, subject, _o",
                  params=params).to_arrow_table()
    with registered(con, WINDOW_VIEW, win):
        tbl = metrics.compute(con, f"SELECT * FROM {WINDOW_VIEW}", ["scope", "subject"], names)
    sizes = np.asarray(tbl.column("runs").to_numpy(zero_copy_only=False), dtype=np.int64)
    if int(sizes.sum()) != win.num_rows:
        raise RuntimeError("gate window and metric groups disagree")
    all_ids = [str(r) for r in win.column("run_id").to_pylist()]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    run_ids = [all_ids[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
    scopes = [str(s) for s in tbl.column("scope").to_pylist()]
    subjects = [str(s) for s in tbl.column("subject").to_pylist()]
    n = tbl.num_rows
    env = metric_env(tbl, names)
    hits = apply_rules(gp, env, scopes, n)
    mdicts = _metric_dicts(tbl, env, names)
    ph = gp.hash

    out: dict[SubjectKey, Decision] = {}
    for i in range(n):
        key = (scopes[i], subjects[i])
        out[key] = _decision(key, pre_state.get(key, "candidate"), bool(hits.conclusive[i]),
                             hits.kill[i], hits.promote[i], hits.fired[i], None,
                             mdicts[i], run_ids[i], as_of, ph)
    killed = sorted({s for (sc, s), st in pre_state.items() if sc == "strategy" and st == "killed"
                     and ("strategy", s) not in out}
                    | {d.subject for d in out.values() if d.scope == "strategy" and d.state == "killed"})
    for agent, strategy in _cascade_targets(con, killed, as_of).items():
        key = ("agent", agent)
        prev = out.get(key)
        if prev is None:
            out[key] = _decision(key, pre_state.get(key, "candidate"), False, None, None, (),
                                 strategy, {}, [], as_of, ph)
        elif prev.action != "kill":
            out[key] = _decision(key, pre_state.get(key, "candidate"),
                                 prev.action != "inconclusive", None, None, prev.fired, strategy,
                                 prev.metrics, prev.run_ids, as_of, ph)
    return [out[k] for k in sorted(out)]


def _decision(key: SubjectKey, pre: State, conclusive: bool, kill_rule: str | None,
              promote_rule: str | None, fired: tuple[str, ...], cascade_from: str | None,
              metric_values: dict[str, Any], run_ids: list[str], as_of: dt.datetime,
              policy_hash: str) -> Decision:
    o = resolve(pre, conclusive=conclusive, kill_rule=kill_rule, promote_rule=promote_rule,
                cascade_from=cascade_from)
    return Decision(subject=key[1], scope=key[0], action=o.action, rule=o.rule, fired=fired,
                    blocked=o.blocked, state=o.state, cascade_from=o.cascade_from,
                    metrics=metric_values, run_ids=run_ids, as_of=as_of, policy_hash=policy_hash)


def _cascade_targets(con: duckdb.DuckDBPyConnection, strategies: list[str],
                     as_of: dt.datetime) -> dict[str, str]:
    """Agent → the first (by name) killed strategy it has any run in, up to `as_of`."""
    if not strategies:
        return {}
    rows = con.execute(
        "SELECT agent, min(strategy) FROM ledger WHERE ts <= ? AND agent IS NOT NULL "
        "AND strategy IN (SELECT unnest(?::VARCHAR[])) GROUP BY agent ORDER BY agent",
        [as_of, strategies]).fetchall()
    return {str(a): str(s) for a, s in rows}
