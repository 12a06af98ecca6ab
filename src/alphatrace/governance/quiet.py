"""When a catch-up has nothing to judge: the proof the live pipeline uses to skip its gates step.

A catch-up to the newest knowledge time (`api.Gates._catch_up`) judges a subject at a point
only when one of its runs became known after its progress mark, when a run it counted (or now
counts) changed (`ledger_changes` after `gate_seen` with a knowledge time on a side:
`replay.changes`), when a run leaves its duration window by the target, or when its newest
record is a revive (judged again at the revive's time). A pipeline pass after a round that
brought none of these — OTLP telemetry alone, signals still open, bars no exit is waiting for —
would read the changes, the marks, the window's runs and the log, and append nothing.

`judged` takes, right after a catch-up to the newest knowledge time, what the next one's work
depends on besides the ledger; `skip` says, in one query, whether that still holds and every
ledger change since concerns no window. Then the next catch-up would find no point to
judge: no run is known after its subject's mark (the last catch-up judged up to the newest
knowledge time, and a run that became known since is a change with a knowledge time), no
late change, no pending revive, and (with a duration window) no run leaving it, as the target
did not move. It appends no record and moves no mark; it only moves `gate_seen` past the
changes it read and prunes them, which `skip` does in its place (three statements, so the
table stays as short on a stream of telemetry as with the catch-up). Skipping it is exact:
the log, the marks, `gate_seen`, `ledger_changes` and every later decision are those of a
run of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import duckdb

from alphatrace.governance import journal, replay
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import data_as_of
from alphatrace.ledger import changes as ledger_changes
from alphatrace.store import Store
from alphatrace.store.connection import has_table, one
from alphatrace.store.statements import parsed


@dataclass(frozen=True)
class Judged:
    """What a catch-up to the newest knowledge time left (`judged`)."""

    policy: str                # the policy's hash
    state: tuple[object, ...]  # gate_seen, the log's newest seq, the progress marks' digest
    revives: bool              # some subject's newest record is a revive
    as_of: dt.datetime | None  # the newest knowledge time it judged to (duration windows)


def _state_sql() -> str:
    """gate_seen, the log's newest seq, the marks' count and digest, whether some subject's
    newest record is a revive (from `journal.NEWEST`; NULL when that table is not the log's,
    `journal.newest_kept`), how many changes after gate_seen carry a knowledge time on a side
    (concern some window), and the newest change. One row of single-row aggregates joined
    (scalar subqueries naming gate_seen inside others cost 2.5× the CPU to plan)."""
    return f"""
WITH s AS (SELECT coalesce(max(seq), 0) AS seen FROM gate_seen),
     d AS (SELECT max(seq) AS head FROM decisions),
     n AS (SELECT max(seq) AS head,
                  coalesce(bool_or(action = 'revive' AND as_of IS NOT NULL), false) AS revive
           FROM {journal.NEWEST}),
     p AS (SELECT [count(*), coalesce(bit_xor(hash(scope, subject, evaluated_to)), 0)] AS marks
           FROM gate_progress),
     c AS (SELECT count(*) FILTER (WHERE {ledger_changes.COUNTS})
                    AS known, max(seq) AS newest
           FROM ledger_changes, s WHERE seq > s.seen)
SELECT s.seen, d.head, p.marks, CASE WHEN d.head IS NOT DISTINCT FROM n.head THEN n.revive END,
       c.known, c.newest
FROM s, d, n, p, c"""


def _readable(con: duckdb.DuckDBPyConnection) -> bool:
    """The tables the proof reads exist (a store migrated to 0028)."""
    return all(has_table(con, t) for t in ("gate_seen", "decisions", "gate_progress",
                                           journal.NEWEST, "ledger_changes"))


def judged(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> Judged | None:
    """The state a catch-up to the newest knowledge time (`data_as_of`) just left, for
    `skip` (None: the store cannot tell, never skip)."""
    if not _readable(con):
        return None
    row = one(con, parsed(con, _state_sql()))
    timed = gp.gates.window.seconds is not None  # only a duration window reads the target
    return Judged(gp.hash, _key(row), row[3] is not False,  # unknown counts as a revive
                  data_as_of(con) if timed else None)


def _key(row: tuple[object, ...]) -> tuple[object, ...]:
    seen, head, marks = row[:3]
    return (seen, head, tuple(marks) if isinstance(marks, list) else marks)


def _concern_windows(con: duckdb.DuckDBPyConnection, seen: object) -> bool:
    """Whether a change after `seen` (the judged `gate_seen`) carries a knowledge time on a
    side: then `skip` fails whatever else holds (`_state_sql`'s count, if `gate_seen` is
    still `seen`; a moved `gate_seen` fails it anyway). A busy pass (runs became known) is
    answered by this one small read of the changes since, not the whole proof (3 ms at 1M
    runs)."""
    return bool(one(con, "SELECT EXISTS (SELECT 1 FROM ledger_changes WHERE seq > ? AND "
                         f"{ledger_changes.COUNTS})", [seen])[0])


def skip(store: Store, gp: GovernancePolicy, before: Judged | None) -> Judged | None:
    """When a catch-up now to the newest knowledge time would judge nothing (see the module
    docstring: same policy, no record, mark or `gate_seen` written since `before`, no pending
    revive then, every ledger change since concerns no window and, with a duration window,
    the newest knowledge time has not moved): write what it would (`gate_seen` moved to the
    newest change, the changes up to it pruned: `replay.save_seen`) and return the state
    that leaves, for the next pass. None: run the catch-up."""
    con = store.con
    if before is None or before.revives or before.policy != gp.hash or not _readable(con):
        return None
    if _concern_windows(con, before.state[0]):  # a busy pass: one small read says no
        return None
    row = one(con, parsed(con, _state_sql()))
    if _key(row) != before.state or int(row[4]) != 0:
        return None
    if gp.gates.window.seconds is not None and data_as_of(con) != before.as_of:
        return None
    newest = row[5]
    if newest is None:  # no change since: nothing to write
        return before
    with store.transaction():
        replay.save_seen(con, int(newest))
    return replace(before, state=(int(newest), *before.state[1:]))
