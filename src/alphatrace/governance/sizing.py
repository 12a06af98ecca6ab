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
from alphatrace.governance.runs import ledger_columns
from alphatrace.policy import Policy
from alphatrace.sql import filters
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


@dataclass(frozen=True)
class Lifecycle:
    """The decision log's side of sizing: each subject's newest record (the few fields a
    reason needs), and the head. One aggregate query: cheap enough after every append."""

    seq: int                                   # the decision head (0: no decision yet)
    agents: dict[str, dict[str, Any]]          # agent → its newest record's fields
    strategies: dict[str, dict[str, Any]]      # strategy class → its newest record's fields


@dataclass(frozen=True)
class LedgerFacts:
    """The ledger's side: per agent its multiplier, knowledge time and strategy classes (a
    confidence computation: the expensive part, redone only when the ledger changed)."""

    multipliers: dict[str, float]
    known: dict[str, dt.datetime | None]
    strategies: dict[str, list[str]]


def read_lifecycle(con: duckdb.DuckDBPyConnection, agent: str | None = None) -> Lifecycle:
    head = journal.head(con)
    if not journal.has_log(con):
        return Lifecycle(0, {}, {})
    conds, params = filters(("(scope = 'strategy' OR subject = ?)", agent))
    where = " AND ".join(["scope IN ('agent', 'strategy')", *conds])
    rows = con.execute(
        f"SELECT scope, subject, max(seq), arg_max(state, seq), arg_max(action, seq), "
        f"arg_max(rule, seq), arg_max(reason, seq), arg_max(cascade_from, seq) "
        f"FROM decisions WHERE {where} GROUP BY scope, subject", params).fetchall()
    out: dict[str, dict[str, dict[str, Any]]] = {"agent": {}, "strategy": {}}
    for sc, subj, seq, state, action, rule, reason, cascade in rows:
        out[str(sc)][str(subj)] = {"seq": int(seq), "state": state, "action": action,
                                   "rule": rule, "reason": reason, "cascade_from": cascade}
    return Lifecycle(head[0] if head else 0, out["agent"], out["strategy"])


def read_ledger_facts(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
                      agent: str | None = None) -> LedgerFacts:
    if not has_table(con, "ledger"):
        return LedgerFacts({}, {}, {})
    conf = confidence.compute(con, gp, agent)
    mult = {str(r["agent"]): float(r["multiplier"])
            for r in conf.summary(None).select(["agent", "multiplier"]).to_pylist()}
    known = "coalesce(known_ts, ts)" if "known_ts" in ledger_columns(con) else "ts"
    conds, params = filters(("agent = ?", agent))
    where = " AND ".join(["agent IS NOT NULL", *conds])
    rows = con.execute(
        f"SELECT agent, max({known}) FILTER (WHERE realized_pnl_bps IS NOT NULL), "
        f"list(DISTINCT strategy ORDER BY strategy) FILTER (WHERE strategy IS NOT NULL) "
        f"FROM ledger WHERE {where} GROUP BY agent", params).fetchall()
    return LedgerFacts(mult, {str(a): k for a, k, _ in rows},
                       {str(a): list(s or []) for a, _, s in rows})


def combine(life: Lifecycle, facts: LedgerFacts) -> dict[str, AgentSizing]:
    """Every agent's sizing state from the two sides: agents with ledger runs or decisions.

    An agent is stopped by its own kill, or by the kill of a strategy class it has runs in
    (the first such class by name, as the gates' cascade picks it): the cascade records the
    agent's kill at the next evaluation; sizing does not wait for it."""
    names: Iterable[str] = sorted(set(facts.strategies) | set(facts.multipliers)
                                  | set(life.agents))
    strat_states = {s: str(r["state"]) for s, r in life.strategies.items()}
    out: dict[str, AgentSizing] = {}
    for name in names:
        rec = life.agents.get(name)
        state: State = rec["state"] if rec is not None else "candidate"
        who, strat = stopped_by(state, facts.strategies.get(name, []), strat_states)
        reason = None
        if who == "agent":
            assert rec is not None
            strat, reason = rec.get("cascade_from"), _record_reason(rec)
        elif strat is not None:
            reason = f"strategy {strat!r} is killed: {_record_reason(life.strategies[strat])}"
        out[name] = AgentSizing(
            agent=name, state=state, multiplier=facts.multipliers.get(name, 1.0),
            known_ts=facts.known.get(name), stopped_by=who, strategy=strat, reason=reason,
            seq=int(rec["seq"]) if rec is not None else None)
    return out


def agent_sizings(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
                  agent: str | None = None) -> dict[str, AgentSizing]:
    """Every agent's sizing state now (or only `agent`'s), read in one go (`combine`)."""
    out = combine(read_lifecycle(con, agent), read_ledger_facts(con, gp, agent))
    return out if agent is None else {k: v for k, v in out.items() if k == agent}


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
