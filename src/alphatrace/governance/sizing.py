"""`alphatrace.size`: the position size a meta-agent should give an agent's signal right now.

size = base_size × |score| × the agent's confidence multiplier. Direction stays with the caller
(the sign of the score); a killed agent gets no size at all, loudly, so a meta-agent cannot
keep trading an agent the gates have stopped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from alphatrace.errors import GovernanceError, InputError
from alphatrace.governance import confidence, journal
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.policy import Policy
from alphatrace.store import Store


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


def multiplier(store: Store, agent: str, gp: GovernancePolicy) -> float:
    """The agent's confidence multiplier now (1.0 before its first eligible run)."""
    conf = confidence.compute(store.con, gp, agent)
    return float(conf.multiplier[-1]) if len(conf.multiplier) else 1.0


def size(agent: str, base_size: float, score: float, db: Any = None,
         policy: str | Path | Policy | GovernancePolicy | None = None) -> float:
    """base_size × |score| × multiplier; raises GovernanceError when the agent is killed."""
    for name, v in (("base_size", base_size), ("score", score)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InputError(f"{name} must be a finite number, got {v!r}")
    if base_size < 0:
        raise InputError(f"base_size must be ≥ 0, got {base_size}")
    store, opened = _store_of(db)
    try:
        state = journal.lifecycle_states(store.con).get(("agent", agent), "candidate")
        if state == "killed":
            raise GovernanceError(f"agent {agent!r} is killed: no size until "
                                  f"`alphatrace revive {agent} --reason ...`")
        m = multiplier(store, agent, load_governance(policy))
    finally:
        if opened:
            store.close()
    return float(base_size) * abs(float(score)) * m
