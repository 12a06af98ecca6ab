"""Gate evaluation: per agent and strategy class, the window of runs, its metrics, the action.

One relational pass selects every subject's window (its last N eligible runs, optionally within
a time window ending at the as-of time), the metric module computes every metric per subject,
and the rules are evaluated as vectors over subjects. Only the final assembly of one decision
per subject is a Python loop (over subjects, not runs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from alphatrace import metrics
from alphatrace.arrays import floats
from alphatrace.governance import expr
from alphatrace.governance.canon import round_sig, ts_text
from alphatrace.governance.lifecycle import (
    ERROR,
    Action,
    Outcome,
    State,
    SubjectKey,
    failed,
    resolve,
)
from alphatrace.governance.policy import SCOPES, GovernancePolicy
from alphatrace.governance.runs import ORDER, eligible_sql, needed_columns, subjects_sql
from alphatrace.store.connection import registered
from alphatrace.store.statements import query_table

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
               metric_names: list[str], only: list[SubjectKey] | None = None
               ) -> tuple[str, list[object]]:
    """Every subject's window: its newest N eligible runs (and those known inside the time
    window (as_of − d, as_of]).

    Runs are numbered once in (known_ts, ts, run_id) order (a total order: run_id is the ledger key), and
    each subject keeps its N highest numbers with a top-N aggregate: a hash aggregate instead
    of sorting every subject's runs, several times faster on large ledgers.
    """
    base, params = eligible_sql(con, gp, needed_columns(con, metric_names), as_of)
    if only is not None:  # these subjects' runs only (a catch-up needs a few windows)
        base = (f"SELECT * FROM ({base}) WHERE agent IN (SELECT unnest(?::VARCHAR[])) "
                f"OR strategy IN (SELECT unnest(?::VARCHAR[]))")
        params = [*params, sorted({s for sc, s in only if sc == "agent"}),
                  sorted({s for sc, s in only if sc == "strategy"})]
    secs = gp.gates.window.seconds
    if secs is not None:
        base = f"SELECT * FROM ({base}) WHERE known_ts > ?"
        params = [*params, as_of - dt.timedelta(seconds=secs)]
    n = gp.gates.window.runs
    if n is None:
        return (f"SELECT *, row_number() OVER (ORDER BY {ORDER}) AS _o FROM "
                f"({subjects_sql(base, list(gp.gates.scope))})"), params
    tops = [f"SELECT '{sc}' AS scope, {sc} AS subject, unnest(max(_o, {int(n)})) AS _o "
            f"FROM _b WHERE {sc} IS NOT NULL GROUP BY {sc}"
            for sc in SCOPES if sc in gp.gates.scope]
    if not tops:
        tops = ["SELECT NULL::VARCHAR AS scope, NULL::VARCHAR AS subject, NULL::BIGINT AS _o "
                "WHERE false"]
    sql = (f"WITH _b AS (SELECT *, row_number() OVER (ORDER BY {ORDER}) AS _o FROM ({base})), "
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
    cols: list[list[Any]] = []
    for nm in names:
        if metrics.get(nm).unit == "runs":
            cols.append([int(v) if v is not None else None for v in tbl.column(nm).to_pylist()])
        else:
            cols.append([None if v != v else v for v in env[nm].tolist()])  # NaN: null
    if not cols:
        return [{} for _ in range(tbl.num_rows)]
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def _not_finite(env: Mapping[str, expr.FloatArray], names: list[str]) -> dict[int, str]:
    """Rows with a non-finite metric (canonical JSON has no inf/NaN; NaN is null): row → why,
    naming the first such metric of `names`."""
    out: dict[int, str] = {}
    for nm in names:
        if metrics.get(nm).unit == "runs":
            continue
        for i in np.flatnonzero(np.isinf(env[nm])).tolist():
            out.setdefault(i, failure(ArithmeticError(
                f"metric {nm} is {float(env[nm][i])} (not finite)")))
    return out


def assessments(gp: GovernancePolicy, tbl: pa.Table, names: list[str],
                windows: list[list[str]]) -> list[Assessment]:
    """One assessment per row of `tbl` (scope, subject and the metric columns `names`), whose
    window is `windows[i]`: metrics rounded as recorded, rules as vectors; a row with a
    non-finite metric gets an error."""
    n = tbl.num_rows
    scopes = [str(s) for s in tbl.column("scope").to_pylist()]
    subjects = [str(s) for s in tbl.column("subject").to_pylist()]
    env = metric_env(tbl, names)
    hits = apply_rules(gp, env, scopes, n)
    mdicts = _metric_dicts(tbl, env, names)
    bad = _not_finite(env, names)
    out = []
    for i in range(n):
        key = (scopes[i], subjects[i])
        if i in bad:
            out.append(Assessment(key, windows[i], {}, error=bad[i]))
        else:
            out.append(Assessment(key, windows[i], mdicts[i], bool(hits.conclusive[i]),
                                  hits.kill[i], hits.promote[i], hits.fired[i]))
    return out


@dataclass(frozen=True)
class Assessment:
    """One subject's window and what its rules said, or why that could not be computed."""

    key: SubjectKey
    run_ids: list[str]
    metrics: dict[str, Any]
    conclusive: bool = False
    kill: str | None = None
    promote: str | None = None
    fired: tuple[str, ...] = ()
    error: str | None = None


def failure(e: Exception) -> str:
    """What a failed evaluation records: the exception's type and message, no traceback."""
    return f"{type(e).__name__}: {e}"


def _assess(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, win: pa.Table,
            names: list[str]) -> list[Assessment]:
    """Every subject of `win` (sorted by scope, subject, run order) at once: one metric pass,
    rules as vectors. A subject with a non-finite metric gets an error; an exception anywhere
    else fails the whole pass (the caller then assesses subject by subject)."""
    with registered(con, WINDOW_VIEW, win):
        tbl = metrics.compute(con, f"SELECT * FROM {WINDOW_VIEW}", ["scope", "subject"], names,
                              order=ORDER)
    sizes = np.asarray(tbl.column("runs").to_numpy(zero_copy_only=False), dtype=np.int64)
    if int(sizes.sum()) != win.num_rows:
        raise RuntimeError("gate window and metric groups disagree")
    all_ids = [str(r) for r in win.column("run_id").to_pylist()]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return assessments(gp, tbl, names, [all_ids[bounds[i]:bounds[i + 1]]
                                        for i in range(tbl.num_rows)])


def _assess_each(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, win: pa.Table,
                 names: list[str]) -> list[Assessment]:
    """Subject by subject, so that one subject's failure is its own error and every other
    subject is still judged (the slow path, taken only when the vectorised pass failed)."""
    keys = list(zip(win.column("scope").to_pylist(), win.column("subject").to_pylist(),
                    strict=True))
    out: list[Assessment] = []
    start = 0
    while start < len(keys):
        stop = start
        while stop < len(keys) and keys[stop] == keys[start]:
            stop += 1
        part = win.slice(start, stop - start)
        try:
            out += _assess(con, gp, part, names)
        except Exception as e:  # any failure of one subject is its error
            out.append(Assessment((str(keys[start][0]), str(keys[start][1])),
                                  [str(r) for r in part.column("run_id").to_pylist()], {},
                                  error=failure(e)))
        start = stop
    return out


def assess(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
           as_of: dt.datetime, only: list[SubjectKey] | None = None) -> list[Assessment]:
    """Every subject's window, metrics and rule hits at `as_of`, ordered (scope, subject); a
    subject whose metrics fail gets an error, the others are unaffected. Reads only: run it
    outside a write transaction, since a failed query aborts the transaction it runs in."""
    names = gp.gate_metrics()
    sql, params = window_sql(con, gp, as_of, names, only)
    if only is not None:
        sql = f"SELECT * FROM ({sql}) WHERE (scope, subject) IN (SELECT unnest(?, recursive := true))"
        params = [*params, [{"scope": sc, "subject": s} for sc, s in only]]
    # sorted by subject then run order, so each subject's run_ids are one slice
    win = query_table(con, f"SELECT * FROM ({sql}) ORDER BY scope, subject, _o", params)
    return assess_window(con, gp, win, names)


def assess_window(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, win: pa.Table,
                  names: list[str]) -> list[Assessment]:
    """The assessments of the windows in `win` (rows sorted by scope, subject, run order),
    wherever they were selected: `con` only computes their metrics (engines.spark runs this
    per subject group on an in-memory connection)."""
    try:
        return _assess(con, gp, win, names)
    except Exception:  # find which subject failed: the rest are still judged
        return _assess_each(con, gp, win, names)


def decide(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, as_of: dt.datetime | None,
           pre_state: Mapping[SubjectKey, State]) -> list[Decision]:
    """Every subject's decision at `as_of` given the lifecycle before; ordered (scope, subject).
    A subject whose evaluation fails gets an `error` decision; the others are unaffected."""
    if as_of is None:
        return []
    return judge(gp, as_of, pre_state, assess(con, gp, as_of), members(con, as_of))


Members = Callable[[list[str]], dict[str, str]]


def members(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> Members:
    """The cascade targets of killed strategies at `as_of`, read from the ledger."""
    return lambda strategies: _cascade_targets(con, strategies, as_of)


def judge(gp: GovernancePolicy, as_of: dt.datetime, pre_state: Mapping[SubjectKey, State],
          assessed: list[Assessment], targets: Members,
          killed_before: Iterable[str] | None = None) -> list[Decision]:
    """The decisions from the assessments and the lifecycle before, cascades included.
    `targets(killed strategies)`: agent → the killed strategy that cascades to it;
    `killed_before`: the strategies killed in `pre_state` (found from it when None)."""
    ph = gp.hash

    out: dict[SubjectKey, Decision] = {}
    for a in assessed:
        pre = pre_state.get(a.key, "candidate")
        if a.error is not None:
            out[a.key] = _decision(a.key, failed(pre), (), {}, a.run_ids, as_of, ph, a.error)
            continue
        o = resolve(pre, conclusive=a.conclusive, kill_rule=a.kill, promote_rule=a.promote,
                    cascade_from=None)
        out[a.key] = _decision(a.key, o, a.fired, a.metrics, a.run_ids, as_of, ph)
    if killed_before is None:
        killed_before = [s for (sc, s), st in pre_state.items()
                         if sc == "strategy" and st == "killed"]
    killed = sorted({s for s in killed_before if ("strategy", s) not in out}
                    | {d.subject for d in out.values() if d.scope == "strategy" and d.state == "killed"})
    for agent, strategy in (targets(killed) if killed else {}).items():
        key = ("agent", agent)
        prev = out.get(key)
        pre = pre_state.get(key, "candidate")
        if prev is None or prev.action == ERROR:
            # the cascade needs none of the agent's own metrics: a failed agent is still killed,
            # and the failure stays in the record's reason
            o = resolve(pre, conclusive=False, kill_rule=None, promote_rule=None,
                        cascade_from=strategy)
            out[key] = _decision(key, o, (), {}, [], as_of, ph, prev.reason if prev else None)
        elif prev.action != "kill":
            o = resolve(pre, conclusive=prev.action != "inconclusive", kill_rule=None,
                        promote_rule=None, cascade_from=strategy)
            out[key] = _decision(key, o, prev.fired, prev.metrics, prev.run_ids, as_of, ph)
    return [out[k] for k in sorted(out)]


def _decision(key: SubjectKey, o: Outcome, fired: tuple[str, ...], metric_values: dict[str, Any],
              run_ids: list[str], as_of: dt.datetime, policy_hash: str,
              reason: str | None = None) -> Decision:
    return Decision(subject=key[1], scope=key[0], action=o.action, rule=o.rule, fired=fired,
                    blocked=o.blocked, state=o.state, cascade_from=o.cascade_from,
                    metrics=metric_values, run_ids=run_ids, as_of=as_of, policy_hash=policy_hash,
                    reason=reason)


def _cascade_targets(con: duckdb.DuckDBPyConnection, strategies: list[str],
                     as_of: dt.datetime) -> dict[str, str]:
    """Agent → the first (by name) killed strategy it has any run in signalled by `as_of`.
    Membership needs no PnL: a run exists from its signal, so an agent whose runs in the
    class are still open is stopped with it."""
    if not strategies:
        return {}
    rows = con.execute(
        "SELECT agent, min(strategy) FROM ledger WHERE ts <= ? AND agent IS NOT NULL "
        "AND strategy IN (SELECT unnest(?::VARCHAR[])) GROUP BY agent ORDER BY agent",
        [as_of, strategies]).fetchall()
    return {str(a): str(s) for a, s in rows}
