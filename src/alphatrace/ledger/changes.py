"""`ledger_changes`: the runs whose ledger row changed, or whose exclusion did, with what the
gates' catch-up needs to find every subject concerned without reading the ledger (migrations
0023, 0028).

Each row holds the run's agent, strategy and knowledge time before the change (`old_*`) and
after it (`new_*`): the catch-up judges again, at its progress mark, every subject a changed
run entered or left (`governance.replay.changes`). A side's knowledge time is NULL when the
run did not count on that side (no realized PnL or no ts): it then concerns no window, and a
change that counts on neither side is not recorded (a run of telemetry alone, an open signal
priced again: no reader would look at it). The old side is all NULL for a row a reconcile
added, the new side for a row that left the ledger.

Reconciles and `exclusions apply` number their changes from one counter (`next_seq`), so a
catch-up that read up to some seq (`gate_seen`) never misses a change recorded after it.

The catch-up that advances `gate_seen` prunes what it read (`prune`): every reader of the
table reads only the changes after `gate_seen` (`governance.replay.changes`, in the store and,
through the export, on Spark), and `gate_seen` never moves back, so a change at or below it is
never read again. One row of the newest change stays: `next_seq` and the server's sizing key
(server/live_state.py) read the newest seq from the table.
"""

from __future__ import annotations

import duckdb

from alphatrace.store.connection import one

COLUMNS = ("seq, run_id, old_agent, old_strategy, old_known_ts, "
           "new_agent, new_strategy, new_known_ts")


def counted_known(alias: str) -> str:
    """SQL: the knowledge time of ledger row `alias` when it can count for governance
    (realized, timed; a row without known_ts counts from its ts, as `governance.runs` reads
    it), else NULL."""
    return (f"CASE WHEN {alias}.realized_pnl_bps IS NOT NULL AND {alias}.ts IS NOT NULL "
            f"THEN coalesce({alias}.known_ts, {alias}.ts) END")


def next_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The seq the next reconcile or exclusion change writes: after every one recorded, in
    `reconcile_log` (a reconcile that changed no row) or in `ledger_changes`."""
    return int(con.execute(
        "SELECT greatest((SELECT coalesce(max(seq), 0) FROM reconcile_log), "
        "(SELECT coalesce(max(seq), 0) FROM ledger_changes)) + 1").fetchall()[0][0])


def prune(con: duckdb.DuckDBPyConnection, seen: int) -> None:
    """Delete the changes at or below seq `seen` (the catch-up's new `gate_seen`, in its
    transaction) but one row of the newest change: no catch-up reads them again (module
    docstring). Its cost is a scan of the table's seq column, which pruning at every catch-up
    keeps to the changes recorded since the one before."""
    con.execute("DELETE FROM ledger_changes WHERE seq <= ? AND (seq, run_id) <> "
                "(SELECT max((seq, run_id)) FROM ledger_changes)", [int(seen)])


def record(con: duckdb.DuckDBPyConnection, seq: int, new: str, old: str) -> int:
    """Append to `ledger_changes` as `seq` the runs of `new` (ledger rows just built) that
    `old` (the rows they replace) lacks or holds with another value in some column, and the
    runs of `old` that `new` lacks (rows that left the ledger), each with both sides: the news
    of this reconcile, whatever caused it (events, bars, funding, policy), and only that
    (run_id is unique in both, so the rows of a run, joined on it, compared whole with NULLs
    equal, as a set difference would: a row rebuilt to the same values is not recorded;
    one join, where `EXCEPT` and its two joins cost ~2.5 ms more a pass to plan). A change
    that counts on neither side (no knowledge time before or after: a run without realized
    PnL, such as telemetry alone or an open signal) concerns no window and is not recorded
    (`COUNTS`). Returns the number of changes recorded."""
    return int(one(con, f"""
INSERT INTO ledger_changes ({COLUMNS})
SELECT * FROM (
  SELECT {int(seq)} AS seq, coalesce(d.run_id, o.run_id) AS run_id, o.agent AS old_agent,
         o.strategy AS old_strategy, {counted_known('o')} AS old_known_ts,
         d.agent AS new_agent, d.strategy AS new_strategy, {counted_known('d')} AS new_known_ts
  FROM {new} d FULL JOIN {old} o ON o.run_id = d.run_id
  WHERE d IS DISTINCT FROM o)
WHERE {COUNTS}
ORDER BY 2""")[0])


# A change some window can see: the run counts (has a knowledge time) on one side at least.
# The gates' catch-up reads only such changes (`governance.replay.changes`), and so does the
# proof that a pass can skip it (`governance.quiet`).
COUNTS = "(old_known_ts IS NOT NULL OR new_known_ts IS NOT NULL)"


def record_added(con: duckdb.DuckDBPyConnection, seq: int, new: str) -> int:
    """`record` when the rows replaced are none (every run of `new` is added: a round of new
    runs, the usual live pass): each run of `new` that counts, with an empty old side. The
    same rows as `record(con, seq, new, <no rows>)`, without its set difference and joins
    over the 38 columns (about 10 ms CPU a pass to plan and run for 1,000 rows). Returns the
    number of changes recorded."""
    return int(one(con, f"""
INSERT INTO ledger_changes ({COLUMNS})
SELECT {int(seq)}, n.run_id, NULL, NULL, NULL, n.agent, n.strategy, {counted_known('n')}
FROM {new} n
WHERE {counted_known('n')} IS NOT NULL
ORDER BY 2""")[0])


def record_exclusions(con: duckdb.DuckDBPyConnection, runs: str) -> None:
    """Append the runs of `runs` (a relation with run_id: runs whose exclusion was applied or
    lifted) that the ledger holds, with the next seq and their row's values on both sides:
    the row did not change, whether it counts did (with `eligibility.exclude_flagged`)."""
    con.execute(f"""
INSERT INTO ledger_changes ({COLUMNS})
SELECT {next_seq(con)}, l.run_id, l.agent, l.strategy, {counted_known('l')},
       l.agent, l.strategy, {counted_known('l')}
FROM ledger l SEMI JOIN {runs} r ON r.run_id = l.run_id
ORDER BY l.run_id""")
