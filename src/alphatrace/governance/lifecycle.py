"""Subject lifecycle: candidate → promoted, any → killed, killed → candidate only by revive.

Kept as one pure function of (state before, what the rules said), `resolve`, so every path
applies the same transitions: the evaluation (one or a catch-up), the backtest (`replay.walk`)
and the audit's re-decision (`redecide`) decide through `gates.judge`, which calls it, and the
audit's check of each record's own consistency (`audit.verify`) calls it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

State = Literal["candidate", "promoted", "killed"]
STATES: tuple[State, ...] = ("candidate", "promoted", "killed")
Action = Literal["promote", "kill", "hold", "inconclusive", "revive", "error"]
CASCADE_RULE = "cascade"
# A subject whose evaluation failed (its metrics could not be computed, or were not finite):
# recorded with the reason, and its state left as it was.
ERROR: Action = "error"

SubjectKey = tuple[str, str]  # (scope, subject)
# Records about the log itself (the one-time re-chaining of v1 records) carry this scope; they
# are links of the chain but no subject's lifecycle.
CHAIN_SCOPE = "chain"


@dataclass(frozen=True)
class Outcome:
    action: Action
    rule: str | None
    blocked: bool
    state: State
    cascade_from: str | None


def resolve(pre: State, *, conclusive: bool, kill_rule: str | None, promote_rule: str | None,
            cascade_from: str | None) -> Outcome:
    """Kill wins over promote; a strategy kill cascades; a killed subject is never promoted."""
    if kill_rule is not None:
        return Outcome("kill", kill_rule, False, "killed", None)
    if cascade_from is not None:
        return Outcome("kill", CASCADE_RULE, False, "killed", cascade_from)
    if promote_rule is not None:
        if pre == "killed":
            return Outcome("hold", promote_rule, True, "killed", None)
        return Outcome("promote", promote_rule, False, "promoted", None)
    return Outcome("hold" if conclusive else "inconclusive", None, False, pre, None)


def failed(pre: State) -> Outcome:
    """A failed evaluation decides nothing: no rule, no block, the state before (a killed
    subject stays killed, a promoted one stays promoted)."""
    return Outcome(ERROR, None, False, pre, None)


def fold(records: Iterable[Mapping[str, Any]]) -> dict[SubjectKey, State]:
    """State of every subject after `records` (in chain order): each record carries its state."""
    out: dict[SubjectKey, State] = {}
    for r in records:
        if r["scope"] != CHAIN_SCOPE:
            out[(str(r["scope"]), str(r["subject"]))] = r["state"]
    return out
