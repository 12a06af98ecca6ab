"""The overview document: every agent and strategy class with its lifecycle state, confidence
multiplier, the multiplier a meta-agent sizes with now and the size of a 10,000 USD signal at
score 1 (governance/sizing.py), the shared run metrics over the filtered runs, and its last
decision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from typing import Any

import duckdb

from alphatrace import metrics
from alphatrace.governance import journal
from alphatrace.governance.sizing import SIGNAL_USD, sized, stopped_by
from alphatrace.server.dashboard.params import RunFilter
from alphatrace.server.dashboard.source import Source, jsonable

METRICS = list(metrics.summary(metrics.View.OVERVIEW))


def last_decisions(src: Source, con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], dict[str, Any]]:
    if not src.has(con, "decisions"):
        return {}
    rows = con.execute(
        """SELECT scope, subject, max(seq), arg_max(action, seq), arg_max(rule, seq),
                  arg_max(as_of, seq), arg_max(state, seq)
           FROM decisions GROUP BY scope, subject""").fetchall()
    return {(str(sc), str(s)): {"seq": int(q), "action": a, "rule": r, "as_of": jsonable(t),
                                "state": st}
            for sc, s, q, a, r, t, st in rows}


def _grouped(con: duckdb.DuckDBPyConnection, key: str, other: str, flt: RunFilter
             ) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Metrics per `key` (agent or strategy) and, per key, the distinct `other` values."""
    cond, params = flt.where()
    where = " AND ".join([f"{key} IS NOT NULL", *cond])
    source = f"SELECT * FROM ledger WHERE {where}"
    rows = metrics.compute(con, source, [key], METRICS, params).to_pylist()
    pairs = con.execute(
        f"SELECT {key}, list(DISTINCT {other} ORDER BY {other}) FILTER (WHERE {other} IS NOT NULL) "
        f"FROM ledger WHERE {where} GROUP BY {key}", params).fetchall()
    return rows, {str(k): list(v or []) for k, v in pairs}


def _sorted(rows: list[dict[str, Any]], key: str, desc: bool) -> list[dict[str, Any]]:
    """Rows by `key` (missing values last whatever the order), ties by name."""
    def value(r: dict[str, Any]) -> Any:
        v = r.get(key)
        if key == "last_decision":
            v = None if v is None else v["seq"]
        return v

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=lambda r: r["name"])
    present.sort(key=value, reverse=desc)
    missing.sort(key=lambda r: r["name"])
    return present + missing


def rows(src: Source, con: duckdb.DuckDBPyConnection, flt: RunFilter) -> dict[str, Any]:
    """The overview's rows and choices for one filter, before sorting (kept per version)."""
    version = src.version(con)
    states = journal.lifecycle_states(con)
    last = last_decisions(src, con)
    as_of = None if flt.until is None else flt.until - dt.timedelta(microseconds=1)
    mult = src.multipliers(con, version, as_of)

    agent_rows, agent_strats = _grouped(con, "agent", "strategy", flt)
    # What a meta-agent gets now (alphatrace.size): 0 when the agent or a strategy class it
    # has runs in (any time, not only in the filter) is killed.
    all_strats = _grouped(con, "agent", "strategy", RunFilter())[1] if flt != RunFilter() \
        else agent_strats
    strat_states = {s: st for (sc, s), st in states.items() if sc == "strategy"}
    agents = []
    for r in agent_rows:
        name = str(r.pop("agent"))
        m = mult.get(name)
        state = states.get(("agent", name), "candidate")
        multiplier = 1.0 if m is None else float(m["multiplier"])
        stopped = stopped_by(state, all_strats.get(name, []), strat_states)[0] is not None
        agents.append({
            "name": name, "scope": "agent", "strategies": agent_strats.get(name, []),
            "state": state,
            "multiplier": None if m is None else m["multiplier"],
            "warning": bool(m["warning"]) if m is not None else False,
            "sizing_multiplier": 0.0 if stopped else multiplier,
            "signal_size_usd": sized(SIGNAL_USD, 1.0, multiplier, stopped),
            **r, "last_decision": last.get(("agent", name)),
        })
    strat_rows, strat_agents = _grouped(con, "strategy", "agent", flt)
    strategies = []
    for r in strat_rows:
        name = str(r.pop("strategy"))
        strategies.append({
            "name": name, "scope": "strategy", "agents": strat_agents.get(name, []),
            "state": states.get(("strategy", name), "candidate"), "multiplier": None,
            "warning": False, "sizing_multiplier": None, "signal_size_usd": None,
            **r, "last_decision": last.get(("strategy", name)),
        })
    avail = [str(r[0]) for r in con.execute(
        "SELECT DISTINCT strategy FROM ledger WHERE strategy IS NOT NULL ORDER BY 1").fetchall()]
    first, newest = con.execute("SELECT min(ts), max(ts) FROM ledger").fetchall()[0]
    return jsonable({
        "filters": {"strategy": flt.strategy, "since": flt.since, "until": flt.until},
        "strategies_available": avail,
        "range": {"first": first, "last": newest},
        "agents": agents,
        "strategies": strategies,
    })


def cache_key(version: Hashable, flt: RunFilter) -> tuple[Any, ...]:
    """The memo key of the overview's rows: the page and the warm-up (`routes.Dashboard.warm`)
    both ask for it here, so they cannot drift apart."""
    return ("overview", version, flt.strategy, flt.since, flt.until)


def overview(src: Source, con: duckdb.DuckDBPyConnection, flt: RunFilter,
             sort: tuple[str, bool]) -> dict[str, Any]:
    base = src.cached(cache_key(src.version(con), flt), lambda: rows(src, con, flt))
    key, desc = sort
    return {**base, "sort": {"key": key, "order": "desc" if desc else "asc"},
            "agents": _sorted(base["agents"], key, desc),
            "strategies": _sorted(base["strategies"], key, desc)}
