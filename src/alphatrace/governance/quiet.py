"""When a catch-up has nothing to judge: the proof the live pipeline uses to skip its gates step.

A catch-up to the newest knowledge time (`api.Gates._catch_up`) judges a subject at a point
only when one of its runs became known after its progress mark, when a run it counted (or now
counts) changed (`ledger_changes` after `gate_seen` with a knowledge time on a side:
`replay.changes`), when a run leaves its duration window by the target, or when its newest
record is a revive (judged again at the revive's time). A pipeline pass after a round that
brought none of these — OTLP telemetry alone, signals still open, bars no exit is waiting for —
would read the changes, the marks, the window's runs and the log, and append nothing.

`judged` takes, right after a catch-up to the newest knowledge time, what the next one's work
depends on besides the ledger; `unchanged` says, in one query, whether that still holds and
every ledger change since concerns no window. Then the next catch-up would find no point to
judge: no run is known after its subject's mark (the last catch-up judged up to the newest
knowledge time, and a run that became known since is a change with a knowledge time), no
late change, no pending revive, and (with a duration window) no run leaving it, as the target
did not move. It appends no record and moves no mark; what it would have saved (`gate_seen`,
and the pruning of the changes it read) only skips changes that concern no window, which the
next catch-up that runs reads and ignores just the same (`replay.changes` drops sides without
a knowledge time). Skipping it is exact: the log, the marks and every later decision are
those of a run of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from alphatrace.governance import journal
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import data_as_of
from alphatrace.store.connection import has_table, one


@dataclass(frozen=True)
class Judged:
    """What a catch-up to the newest knowledge time left (`judged`)."""

    policy: str                # the policy's hash
    state: tuple[object, ...]  # gate_seen, the log's newest seq, the progress marks' digest
    revives: bool              # some subject's newest record is a revive
    as_of: dt.datetime | None  # the newest knowledge time it judged to (duration windows)


def _state_sql() -> str:
    """gate_seen, the log's newest seq, the marks' count and digest, and how many changes
    after gate_seen carry a knowledge time on a side (concern some window)."""
    seen = "(SELECT coalesce(max(seq), 0) FROM gate_seen)"
    return f"""
SELECT {seen}, (SELECT max(seq) FROM decisions),
       (SELECT [count(*), coalesce(bit_xor(hash(scope, subject, evaluated_to)), 0)]
        FROM gate_progress),
       (SELECT count(*) FROM ledger_changes WHERE seq > {seen}
          AND (old_known_ts IS NOT NULL OR new_known_ts IS NOT NULL))"""


def _readable(con: duckdb.DuckDBPyConnection) -> bool:
    """The tables the proof reads exist (a store migrated to 0028)."""
    return all(has_table(con, t) for t in ("gate_seen", "decisions", "gate_progress",
                                           "ledger_changes"))


def judged(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> Judged | None:
    """The state a catch-up to the newest knowledge time (`data_as_of`) just left, for
    `unchanged` (None: the store cannot tell, never skip)."""
    if not _readable(con):
        return None
    row = one(con, _state_sql())
    timed = gp.gates.window.seconds is not None  # only a duration window reads the target
    return Judged(gp.hash, _key(row), bool(journal.newest_revives(con)),
                  data_as_of(con) if timed else None)


def _key(row: tuple[object, ...]) -> tuple[object, ...]:
    seen, head, marks, _ = row
    return (seen, head, tuple(marks) if isinstance(marks, list) else marks)


def unchanged(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
              before: Judged | None) -> bool:
    """Whether a catch-up now to the newest knowledge time would judge nothing (see the
    module docstring): same policy, no record, mark or `gate_seen` written since `before`
    (`judged`), no pending revive then, every ledger change since concerns no window, and,
    with a duration window, the newest knowledge time has not moved."""
    if before is None or before.revives or before.policy != gp.hash or not _readable(con):
        return False
    row = one(con, _state_sql())
    if _key(row) != before.state or int(row[3]) != 0:
        return False
    if gp.gates.window.seconds is not None:
        return data_as_of(con) == before.as_of
    return True

