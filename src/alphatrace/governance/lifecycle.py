"""Subject lifecycle: candidate → promoted, any → killed, killed → candidate only by revive.

Kept as one pure function of (state before, what the rules said), `resolve`, so every path
applies the same transitions: the evaluation (one or a catch-up), the backtest (`replay.walk`)
and the audit's re-decision (`redecide`) decide through `gates.judge`, which calls it, and the
audit's check of each record's own consistency (`audit.verify`) calls it directly.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass
class History:
    """The lifecycle at any knowledge time, from records added in chain order.

    The lifecycle at T is each subject's newest record among those whose `as_of` is at or
    before T, newest by (as_of, chain order): a decision counts from the knowledge time it was
    decided at and a revive from its time. alphatrace appends each subject's records in as_of
    order (`journal.out_of_order`), so on its logs this is also chain order per subject; logs
    written before that rule may hold records written after records stamped later than
    themselves (a past `--once --as-of T`, a catch-up's points before a revive, a revive
    stamped with the wall clock), read here in as_of order. `gates evaluate` judges with this lifecycle
    (`journal.lifecycle_states` and `newest_records` with an as-of read the same in SQL, and
    `replay.Walk` applies later records in this order) and `audit verify` re-derives it here.
    `as_of` is compared as the records carry it (`canon.ts_text`, which sorts as time);
    records without one, or about the chain itself, are no subject's lifecycle."""

    _keys: list[tuple[str, int]] = field(default_factory=list)  # (as_of, chain position)
    _recs: list[Mapping[str, Any]] = field(default_factory=list)  # in _keys order
    _folded: int = 0  # _recs[:_folded] are applied to _state/_last
    _state: dict[SubjectKey, State] = field(default_factory=dict)
    _last: dict[SubjectKey, Mapping[str, Any]] = field(default_factory=dict)

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Records that follow every record added before (in chain order)."""
        for r in records:
            if r["scope"] == CHAIN_SCOPE or r["as_of"] is None:
                continue
            key = (str(r["as_of"]), len(self._keys))
            i = bisect.bisect_right(self._keys, key)
            self._keys.insert(i, key)
            self._recs.insert(i, r)
            if i < self._folded:  # stamped before records already applied: apply anew
                self._folded = 0
                self._state, self._last = {}, {}

    def at(self, as_of: str) -> tuple[dict[SubjectKey, State], dict[SubjectKey, Mapping[str, Any]]]:
        """Each subject's state and newest record at `as_of` (copies)."""
        n = bisect.bisect_right(self._keys, (as_of, len(self._keys)))
        if n < self._folded:
            self._folded = 0
            self._state, self._last = {}, {}
        for r in self._recs[self._folded:n]:
            key = (str(r["scope"]), str(r["subject"]))
            self._state[key] = r["state"]
            self._last[key] = r
        self._folded = n
        return dict(self._state), dict(self._last)
