"""`alphatrace.size`: the position size a meta-agent should give an agent's signal right now.

size = base_size × |score| × the agent's confidence multiplier. Direction stays with the caller
(the sign of the score). A killed agent, or an agent with runs in a killed strategy class, gets
no size at all, loudly, so a meta-agent cannot keep trading an agent the gates have stopped.

What a kill stops is new size only: positions already open are not closed by alphatrace, their
exits stay the agent's to manage (`KILL_STOPS` says so in every answer that carries a kill).

The pieces are shared: the server's live sizing state (server/live_state.py) and the SDK's
remote path (sdk/sizing.py) use `agent_sizings`, `sized` and `killed_message` from here, so a
size is computed the same way wherever it is asked for.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from alphatrace.errors import GovernanceError, InputError
from alphatrace.governance import confidence, journal
from alphatrace.governance.lifecycle import State
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.policy import Policy
from alphatrace.store import Store
from alphatrace.store.connection import has_table

KILL_STOPS = ("a kill stops new size only: positions already open are not closed by alphatrace; "
              "their exits stay the agent's to manage")


@dataclass(frozen=True)
class AgentSizing:
    """What sizing needs to know about one agent, read from the store at one moment."""

    agent: str
    state: State                  # the agent's own lifecycle state
    multiplier: float             # confidence multiplier after its last eligible run (1.0 before)
    known_ts: dt.datetime | None  # newest knowledge time of its realized runs (ts before 0012)
    stopped_by: str | None        # None, "agent" (its own kill) or "strategy" (its class's kill)
    strategy: str | None          # the killed strategy class, when stopped_by == "strategy"
    reason: str | None            # why it gets no size, when stopped
    seq: int | None               # the decision record that set its state (None: no record)

    @property
    def killed(self) -> bool:
        return self.stopped_by is not None


def check_inputs(base_size: Any, score: Any) -> None:
    """base_size and score are finite numbers, base_size ≥ 0; else InputError naming which."""
    for name, v in (("base_size", base_size), ("score", score)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InputError(f"{name} must be a finite number, got {v!r}")
    if base_size < 0:
        raise InputError(f"base_size must be ≥ 0, got {base_size}")


def sized(base_size: float, score: float, multiplier: float, killed: bool) -> float:
    """The one formula: base_size × |score| × multiplier, and 0 for a killed agent."""
    if killed:
        return 0.0
    return float(base_size) * abs(float(score)) * float(multiplier)


def killed_message(agent: str, reason: str | None) -> str:
    return (f"agent {agent!r} is killed ({reason or 'no reason recorded'}): no size until "
            f"`alphatrace revive` ({KILL_STOPS})")


SIGNAL_USD = 10_000.0  # the dashboard's reference signal: its size at score 1


def stopped_by(state: str, strategies: Iterable[str], strategy_states: Mapping[str, str]
               ) -> tuple[str | None, str | None]:
    """(who stops the agent, the killed strategy class) given its own state, the strategy
    classes it has runs in, and each strategy's state: its own kill first, then the first
    killed class by name (as the gates' cascade picks it); (None, None) when it may trade."""
    if state == "killed":
        return "agent", None
    hit = next((s for s in sorted(strategies) if strategy_states.get(s) == "killed"), None)
    return ("strategy", hit) if hit is not None else (None, None)


def _record_reason(rec: dict[str, Any]) -> str:
    """A decision record as a short reason: the rule (or cascade) and its seq."""
    why = rec.get("reason") or (f"rule {rec['rule']}" if rec.get("rule") else rec.get("action"))
    if rec.get("cascade_from"):
        why = f"strategy {rec['cascade_from']!r} was killed"
    return f"{why} (decision seq {rec['seq']})"


def _ledger_facts(con: duckdb.DuckDBPyConnection, agent: str | None
                  ) -> dict[str, tuple[dt.datetime | None, list[str]]]:
    """Agent → (newest knowledge time of its realized runs, its strategy classes)."""
    if not has_table(con, "ledger"):
        return {}
    cols = {str(r[0]) for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'ledger' "
        "AND schema_name = 'main' AND database_name = current_database()").fetchall()}
    known = "coalesce(known_ts, ts)" if "known_ts" in cols else "ts"
    where, params = "agent IS NOT NULL", []
    if agent is not None:
        where += " AND agent = ?"
        params.append(agent)
    rows = con.execute(
        f"SELECT agent, max({known}) FILTER (WHERE realized_pnl_bps IS NOT NULL), "
        f"list(DISTINCT strategy ORDER BY strategy) FILTER (WHERE strategy IS NOT NULL) "
        f"FROM ledger WHERE {where} GROUP BY agent", params).fetchall()
    return {str(a): (k, list(s or [])) for a, k, s in rows}


def agent_sizings(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
                  agent: str | None = None) -> dict[str, AgentSizing]:
    """Every agent's sizing state (or only `agent`'s): agents with ledger runs or decisions.

    An agent is stopped by its own kill, or by the kill of a strategy class it has runs in
    (the first such class by name, as the gates' cascade picks it): the cascade records the
    agent's kill at the next evaluation; sizing does not wait for it."""
    newest = {k: r for k, r in journal.newest_records(con).items()
              if agent is None or k[1] == agent or k[0] == "strategy"}
    conf = confidence.compute(con, gp, agent)
    mult = {str(r["agent"]): float(r["multiplier"])
            for r in conf.summary(None).select(["agent", "multiplier"]).to_pylist()}
    facts = _ledger_facts(con, agent)
    names: Iterable[str] = sorted(set(facts) | {s for (sc, s) in newest if sc == "agent"})
    killed_strats = {s: r for (sc, s), r in newest.items()
                     if sc == "strategy" and r["state"] == "killed"}
    strat_states = {s: "killed" for s in killed_strats}
    out: dict[str, AgentSizing] = {}
    for name in names:
        if agent is not None and name != agent:
            continue
        rec = newest.get(("agent", name))
        state: State = rec["state"] if rec is not None else "candidate"
        known, strategies = facts.get(name, (None, []))
        who, strat = stopped_by(state, strategies, strat_states)
        reason = None
        if who == "agent":
            assert rec is not None
            strat, reason = rec.get("cascade_from"), _record_reason(rec)
        elif strat is not None:
            reason = f"strategy {strat!r} is killed: {_record_reason(killed_strats[strat])}"
        out[name] = AgentSizing(
            agent=name, state=state, multiplier=mult.get(name, 1.0), known_ts=known,
            stopped_by=who, strategy=strat, reason=reason,
            seq=int(rec["seq"]) if rec is not None else None)
    return out


def unknown_agent(agent: str) -> AgentSizing:
    """An agent the store knows nothing of: a candidate at multiplier 1.0 (as `size` has
    always answered before an agent's first eligible run)."""
    return AgentSizing(agent, "candidate", 1.0, None, None, None, None, None)


def _store_of(db: Any) -> tuple[Store, bool]:
    """(store, opened here) from a Database, a Store, a path or None (the default store)."""
    if isinstance(db, Store):
        return db, False
    inner = getattr(db, "store", None)
    if isinstance(inner, Store):
        return inner, False
    if db is None or isinstance(db, str | os.PathLike):
        return Store(db, read_only=True), True
    raise InputError(f"db must be a Database, a Store or a path, not {type(db).__name__}")


def size(agent: str, base_size: float, score: float, db: Any = None,
         policy: str | Path | Policy | GovernancePolicy | None = None, *,
         raise_on_kill: bool = True) -> float:
    """base_size × |score| × multiplier, read from the store in this process.

    A killed agent (or one of a killed strategy class) raises GovernanceError, or gets 0.0
    with `raise_on_kill=False`."""
    check_inputs(base_size, score)
    store, opened = _store_of(db)
    try:
        st = agent_sizings(store.con, load_governance(policy), agent).get(agent)
    finally:
        if opened:
            store.close()
    st = st or unknown_agent(agent)
    if st.killed and raise_on_kill:
        raise GovernanceError(killed_message(agent, st.reason))
    return sized(base_size, score, st.multiplier, st.killed)
