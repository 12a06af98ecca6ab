"""Point-by-point gate evaluation in knowledge time: the catch-up of `gates evaluate` and the
backtest's replay are this one computation.

A subject's window changes only when one of its runs becomes known (or, with a duration window,
when one leaves it), so those are its points. Every run a subject's points need — its runs known
after its progress mark, and the window's worth before it — is numbered once in (known_ts, ts,
run_id) order; each point's window is a contiguous range of those numbers ending at the last
run known by the point. The metric module computes every (subject, point) window in one pass
and the rules are evaluated as vectors over points. Only the lifecycle walk is a Python loop:
over the points in time order, each judged with the lifecycle as it stands at that time (kills,
promotions and cascades decided at earlier points, records already in the log up to it), and
only decisions that are news (governance.novelty) are kept, stamped with their point.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace import metric_windows, metrics
from alphatrace.engines.dialect import Dialect
from alphatrace.engines.duckdb import DUCKDB
from alphatrace.governance.gates import (
    Assessment,
    Decision,
    assess,
    assessments,
    failure,
    judge,
)
from alphatrace.governance.lifecycle import State, SubjectKey
from alphatrace.governance.novelty import is_news
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import (
    ORDER,
    eligible_sql,
    ledger_columns,
    ledger_sql,
    needed_columns,
    subjects_sql,
)
from alphatrace.ledger import changes as ledger_changes
from alphatrace.sql import ts_literal
from alphatrace.store.connection import has_table, registered
from alphatrace.store.statements import query_table

if TYPE_CHECKING:  # journal imports gates, which this module's callers import first
    from alphatrace.governance.journal import Newest

EPOCH, US = dt.datetime(1970, 1, 1), dt.timedelta(microseconds=1)
MARKS, RUNS, POINTS = "_alphatrace_rp_marks", "_alphatrace_rp_runs", "_alphatrace_rp_points"
CHANGED = "_alphatrace_rp_changed"


@dataclass
class Plan:
    """The (subject, point) assessments of a replay, by point time."""

    by_time: dict[dt.datetime, list[Assessment]]
    subjects: set[SubjectKey]
    seen: int | None = None  # the newest `ledger_changes` seq it read (`changes`), to save


def _marks_table(marks: Mapping[SubjectKey, dt.datetime]) -> pa.Table:
    return pa.table({"scope": [k[0] for k in marks], "subject": [k[1] for k in marks],
                     "mark": pa.array(list(marks.values()), pa.timestamp("us"))},
                    schema=pa.schema([("scope", pa.string()), ("subject", pa.string()),
                                      ("mark", pa.timestamp("us"))]))


def runs_sql(gp: GovernancePolicy, base: str, columns: list[str], marks: str,
             d: Dialect = DUCKDB, target: dt.datetime | None = None,
             changed: str | None = None) -> str:
    """Runs of subjects with runs known after their mark: those new ones, and the runs before
    the mark (`_new` false), of which `window_rows` keeps the newest `window.runs`; rows in
    no particular order. Read in order and cut by `window_rows`.
    `base`: the eligible runs, with `columns`; `marks`: a relation (scope, subject, mark).
    The one definition of a replay's runs, in the dialect `d` of the engine that reads the
    ledger (engines.spark runs it in Spark SQL). With a duration window, a subject whose runs
    leave it after its mark (and by `target`, when given) is taken too: its window changed.
    `changed`: a relation (scope, subject, known_ts) with, per subject a run changed since
    the last catch-up entered or left, the earliest knowledge time of such a run on that side
    (`changes`); a subject with one at or before its mark is taken too, and flagged `_late`
    (its window at the mark changed: `points` judges it there)."""
    secs = gp.gates.window.seconds
    moved = "_new"
    if secs is not None:
        leaves = f"{d.epoch_us('known_ts')} + {round(secs * 1e6)}"
        until = "" if target is None else f" AND {leaves} <= {(target - EPOCH) // US}"
        moved = f"_new OR ({leaves} > {d.epoch_us('mark')}{until})"
    extra = ["_late"] if changed is not None else []
    cols = ", ".join(["scope", "subject", *columns, "mark", "_new", *extra])
    late, join = "", ""
    if changed is not None:  # a join, not IN: Spark takes IN (subquery) only in a filter
        late = ", coalesce(m.mark IS NOT NULL AND c.known_ts <= m.mark, false) AS _late"
        join = f" LEFT JOIN {changed} c ON c.scope = s.scope AND c.subject = s.subject"
        moved = f"{moved} OR _late"
    return f"""
WITH s AS ({subjects_sql(base, list(gp.gates.scope))}),
j AS (SELECT s.*, m.mark, (m.mark IS NULL OR s.known_ts > m.mark) AS _new{late}
      FROM s LEFT JOIN {marks} m ON m.scope = s.scope AND m.subject = s.subject{join})
SELECT {cols} FROM j {d.semi_join()} (SELECT DISTINCT scope, subject FROM j WHERE {moved}) c
      ON c.scope = j.scope AND c.subject = j.subject"""


def window_rows(runs: pa.Table, n: int | None) -> pa.Table:
    """`runs_sql`'s rows, each subject's together in (known_ts, ts, run_id) order (`ORDER`),
    cut to what a replay needs: the new runs (`_new`) and the newest `n` before the mark
    (`window.runs`; every one with None), then `_i`, each row's place among its subject's
    kept rows, from 1 (the last column). The one definition of that cut: Spark makes the same
    one on its executors before its rows leave them (`engines.spark.governance`'s
    `newest_before_mark`), and this one then finds nothing more to cut. Cut and numbered
    here rather than by windows in `runs_sql`: DuckDB's window operator costs ~3-4 ms whatever
    its size, at 1M runs a tenth of a live pass's gates (bench/RESULTS.md, "#14's 1M round:
    the market's changes and the window's numbering in Python"; "#14's 1M round: fewer
    reads of the decision log, the window's cut in Python")."""
    if not runs.num_rows:
        return runs.append_column("_i", pa.array([], pa.int64()))
    first = metrics.segment_starts(runs, ["scope", "subject"])
    sizes = np.diff(np.append(first, runs.num_rows))
    at = np.repeat(first, sizes)  # each row's subject's first row
    keep = np.ones(runs.num_rows, dtype=bool)
    if n is not None:
        old = ~_flags(runs, "_new")
        before: npt.NDArray[np.int64] = np.cumsum(old) - old  # old rows before each row, over the whole table
        after = np.repeat(np.add.reduceat(old.astype(np.int64), first), sizes) - (before - before[at]) - old
        keep = ~old | (after < n)  # `after`: old rows after this one in its subject
    ahead = np.cumsum(keep) - keep  # kept rows before each row, over the whole table
    place = (ahead - ahead[at] + 1)[keep]
    if not keep.all():
        runs = runs.filter(pa.array(keep))
    return runs.append_column("_i", pa.array(place, pa.int64()))


def seen(con: duckdb.DuckDBPyConnection) -> int:
    """The newest `ledger_changes` seq the last catch-up read the ledger at (`gate_seen`,
    migration 0023); 0 before the first: every recorded change is after it."""
    if not has_table(con, "gate_seen"):
        return 0
    v = con.execute("SELECT max(seq) FROM gate_seen").fetchall()[0][0]
    return 0 if v is None else int(v)


# The sides of a `ledger_changes` row, as its columns' prefixes (ledger/changes.py).
_SIDES = ("old_", "new_")


def changes_sql(table: str, after: int, ledger: str | None = None) -> str:
    """The changes recorded after seq `after` (`table`: `ledger_changes` or its export;
    ledger/changes.py): each changed run with its agent, strategy and knowledge time before
    and after, whatever changed it (events, bars or funding appended or corrected, a policy,
    an exclusion). `ledger`: for a table from before migration 0028 (seq and run_id only),
    the ledger (known_ts coalesced) whose rows give the new side, as the catch-up read it
    then; the old side is NULL."""
    if ledger is None:
        return f"SELECT * FROM {table} WHERE seq > {int(after)}"
    return (f"SELECT c.seq, c.run_id, CAST(NULL AS STRING) AS old_agent, "
            f"CAST(NULL AS STRING) AS old_strategy, CAST(NULL AS TIMESTAMP) AS old_known_ts, "
            f"l.agent AS new_agent, l.strategy AS new_strategy, "
            f"CASE WHEN l.realized_pnl_bps IS NOT NULL AND l.ts IS NOT NULL "
            f"THEN l.known_ts END AS new_known_ts "
            f"FROM {table} c LEFT JOIN {ledger} l ON l.run_id = c.run_id "
            f"WHERE c.seq > {int(after)}")


def changes(read: Callable[[str], pa.Table], table: str, after: int, marked: bool,
            ledger: Callable[[], str]) -> tuple[pa.Table | None, int]:
    """`runs_sql`'s `changed` relation and the mark to save: the newest seq read (`after`
    when none is newer). The relation has, per subject that a run changed after seq `after`
    entered or left (its agent or strategy on the old side or the new), the earliest
    knowledge time the run had on that side (a side on which it did not count gives none);
    None: no such subject, or no subject has a mark, so none can be late. `read`: a query on
    the engine holding `table`; `ledger`: the ledger relation, asked for only when `table`
    is from before migration 0028 (`changes_sql`)."""
    if not marked:
        newest = read(f"SELECT max(seq) AS seq FROM {table}").column(0)[0].as_py()
        return None, max(after, int(newest or 0))
    rows = read(changes_sql(table, after))
    if rows.num_rows == 0:
        return None, after
    if "new_known_ts" not in rows.column_names:
        rows = read(changes_sql(table, after, ledger()))
    newest = max(after, int(pc.max(rows.column("seq")).as_py()))
    sides = pa.concat_tables(
        pa.table({"scope": pa.array([scope] * rows.num_rows, pa.string()),
                  "subject": rows.column(f"{side}{scope}").cast(pa.string()),
                  "known_ts": rows.column(f"{side}known_ts").cast(pa.timestamp("us"))})
        for side in _SIDES for scope in ("agent", "strategy"))
    sides = sides.filter(pc.and_(pc.is_valid(sides.column("subject")),
                                 pc.is_valid(sides.column("known_ts"))))
    if sides.num_rows == 0:
        return None, newest
    # one thread: a few thousand rows, where Acero's pool costs ~10 ms CPU a call to wake
    got = sides.group_by(["scope", "subject"], use_threads=False).aggregate(
        [("known_ts", "min")])
    return pa.table({"scope": got.column("scope"), "subject": got.column("subject"),
                     "known_ts": got.column("known_ts_min")}), newest


def every_mark(marks: Mapping[SubjectKey, dt.datetime]) -> pa.Table | None:
    """`runs_sql`'s `changed` relation when what changed is not known (a ledger with no
    `ledger_changes`, as Spark's reconcile writes it: it rebuilds the whole ledger and keeps
    no earlier one to compare with): every marked subject, at its mark, so each is judged
    there again, with the window of runs known by then (a full re-judge at the marks). A
    subject none of whose runs changed decides there what it decided at its last point, which
    is no news; one whose runs changed decides what `changes` would have made it decide. None:
    no marks."""
    return _marks_table(marks).rename_columns(["scope", "subject", "known_ts"]) if marks else None


def save_seen(con: duckdb.DuckDBPyConnection, seq: int | None) -> None:
    """Save `seq` (`Plan.seen`: never below `seen`) as the newest change read, and prune the
    changes at or below it: no catch-up reads them again (`ledger.changes.prune`)."""
    if seq is not None and has_table(con, "gate_seen"):
        con.execute("DELETE FROM gate_seen")
        con.execute("INSERT INTO gate_seen VALUES (?)", [seq])
        if has_table(con, "ledger_changes"):
            ledger_changes.prune(con, seq)


def window_runs(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, columns: list[str],
                marks: Mapping[SubjectKey, dt.datetime], target: dt.datetime, *,
                bounded: bool = True, changed: pa.Table | None = None) -> pa.Table:
    """`runs_sql`'s table (the runs a replay needs), read without scanning the ledger.

    The marked subjects' runs are read from a lower bound on (`runs.ledger_sql`'s `since`):
    the earliest mark less a margin. A marked subject with news is short when it kept fewer
    than `window.runs` runs before its mark from inside the bound (then older runs may be in
    its window; with that many, they are its newest and no older run can be). The next read
    reaches each short subject's first knowledge time when its `recorded_subjects` runs say it
    needs every run it has before the bound (`_reach`): two reads for a young subject, however
    old the ledger, and one when `changed` names it (`_whole`: the first read starts there).
    For the others the margin grows fourfold, until no subject is short or the bound passes
    the oldest run; the bound never moves up again. Subjects with no mark need their whole
    history: their runs are added without the bound. The result equals the unbounded read
    (`bounded=False`), row for row. With no run count in the window, or no marks, the read
    is unbounded: every earlier run may be needed. `changed`: `runs_sql`'s
    `changed` (`changes`, read once from `ledger_changes`); the bound then also starts at the
    earliest knowledge time it gives a subject at or before its mark (a late subject), and
    every late subject counts as one with news even when no run of it is inside the bound."""
    n = gp.gates.window.runs
    start = min(marks.values()) if bounded and n is not None and marks else None
    rel = None if changed is None else CHANGED
    late = _late(changed, marks) if changed is not None else {}
    if start is not None and late:
        start = min(start, *late.values())
    # at least the duration: the runs leaving a window after its mark are all inside the bound
    margin = max(dt.timedelta(hours=1), dt.timedelta(seconds=gp.gates.window.seconds or 0))
    with registered(con, MARKS, _marks_table(marks)), \
            (nullcontext() if changed is None else registered(con, CHANGED, changed)):
        known = recorded_subjects(con) if start is not None else None
        unmarked = _unmarked(con, marks, known) if start is not None else ([], [])
        floor: dt.datetime | None = None

        def widened() -> dt.datetime | None:  # the earliest mark less the margin (None: all)
            nonlocal floor
            assert start is not None
            if margin > dt.timedelta(hours=1):
                floor = floor or _oldest(con)  # read once the first bound fell short
            return None if floor is not None and start - margin <= floor else start - margin

        lo = None if start is None else widened()
        if lo is not None and changed is not None and known:
            lo = min([lo, *_whole(changed, marks, known, n or 0)])
        while True:
            base, params = eligible_sql(con, gp, columns, target, lo)
            if lo is not None and (unmarked[0] or unmarked[1]):
                rest, rparams = eligible_sql(con, gp, columns, target,
                                             _unmarked_since(unmarked, known))
                base = (f"{base} UNION ALL SELECT * FROM ({rest}) WHERE known_ts < "
                        f"{ts_literal(lo)} AND (agent IN (SELECT unnest(?::VARCHAR[])) OR "
                        f"strategy IN (SELECT unnest(?::VARCHAR[])))")
                params = [*params, *rparams, *unmarked]
            sql = runs_sql(gp, base, columns, MARKS, target=target, changed=rel)
            runs = window_rows(query_table(
                con, f"SELECT * FROM ({sql}) ORDER BY scope, subject, {ORDER}", params), n)
            if lo is None or n is None:
                return runs
            widen, starts = _reach(_short(runs, lo, n, set(late)), lo, n, known or {})
            if not widen and not starts:
                return runs
            if widen:
                margin *= 4
                grown = widened()
                lo = None if grown is None else min([lo, grown, *starts])
            else:
                lo = min([lo, *starts])


def _whole(changed: pa.Table, marks: Mapping[SubjectKey, dt.datetime],
           recorded: Mapping[SubjectKey, Recorded | None], n: int) -> list[dt.datetime]:
    """The first knowledge times of the marked subjects of `changed` (`changes`) whose whole
    `recorded_subjects` history fits a window of `n` runs: each has news or is late, so a
    read from a later bound falls short of it and `_reach` sends the next read to that time.
    `window_runs` starts there and saves the read."""
    out = []
    for sc, s in zip(changed.column("scope").to_pylist(), changed.column("subject").to_pylist(),
                     strict=True):
        key = (str(sc), str(s))
        r = recorded.get(key)
        if key in marks and r is not None and r.runs <= n and r.first_known is not None:
            out.append(r.first_known)
    return out


def _late(changed: pa.Table, marks: Mapping[SubjectKey, dt.datetime]
          ) -> dict[SubjectKey, dt.datetime]:
    """The subjects of `changed` (`changes`) whose changed runs' earliest knowledge time is at
    or before their mark, with that time: `runs_sql` flags them `_late`."""
    out = {}
    for sc, s, t in zip(changed.column("scope").to_pylist(), changed.column("subject").to_pylist(),
                        changed.column("known_ts").to_pylist(), strict=True):
        mark = marks.get((str(sc), str(s)))
        if mark is not None and t <= mark:
            out[(str(sc), str(s))] = t
    return out


def _oldest(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """A time no run is known before: the earliest stored known_ts or ts (two plain column
    minimums, cheaper than the coalesced view). An empty ledger: any time will do."""
    cols = "least(min(known_ts), min(ts))" if "known_ts" in ledger_columns(con) else "min(ts)"
    v = con.execute(f"SELECT {cols} FROM ledger").fetchall()[0][0]
    return v if isinstance(v, dt.datetime) else dt.datetime.max


def _unmarked(con: duckdb.DuckDBPyConnection, marks: Mapping[SubjectKey, dt.datetime],
              known: Mapping[SubjectKey, object] | None) -> tuple[list[str], list[str]]:
    """Agents and strategies with realized runs in the ledger (or, from `known`, the
    `recorded_subjects`, a few more without any: they add no run to the read) and no progress
    mark."""
    if known is None:
        agents, strategies = con.execute(
            "SELECT list(DISTINCT agent) FILTER (WHERE agent IS NOT NULL), "
            "list(DISTINCT strategy) FILTER (WHERE strategy IS NOT NULL) "
            "FROM ledger WHERE realized_pnl_bps IS NOT NULL").fetchall()[0]
        known = dict.fromkeys([("agent", str(a)) for a in agents or []]
                              + [("strategy", str(s)) for s in strategies or []])
    return (sorted(s for sc, s in known if sc == "agent" and ("agent", s) not in marks),
            sorted(s for sc, s in known if sc == "strategy" and ("strategy", s) not in marks))


def _unmarked_since(unmarked: tuple[list[str], list[str]],
                    known: Mapping[SubjectKey, Recorded | None] | None) -> dt.datetime | None:
    """Where the read of the `unmarked` subjects' whole history may start: the earliest of
    their recorded first knowledge times (`Recorded`: none of a subject's runs is known before
    it; a subject recorded with no run adds none). Without it that read scanned the ledger
    from its first row in every pass that met a new subject. None (from the first row) when
    one of them has no time recorded, or nothing is recorded."""
    if known is None:
        return None
    times = []
    for key in [("agent", a) for a in unmarked[0]] + [("strategy", s) for s in unmarked[1]]:
        r = known.get(key)
        if r is None or (r.first_known is None and r.runs > 0):
            return None
        if r.first_known is not None:
            times.append(r.first_known)
    return min(times) if times else None


class Recorded(NamedTuple):
    """A subject as the last reconcile left it in `ledger_subjects` (migration 0029)."""

    runs: int                       # its ledger rows governance may count (no fewer)
    first_known: dt.datetime | None  # none of them is known before this (None: none seen)


def recorded_subjects(con: duckdb.DuckDBPyConnection) -> dict[SubjectKey, Recorded | None] | None:
    """Every subject with a realized run in the ledger, read from `ledger_subjects` (reconcile
    keeps it, migration 0016; it may also hold subjects whose runs are no longer realized)
    instead of a DISTINCT over the whole ledger, with its `Recorded` runs and first knowledge
    time (None: a store from before 0029, opened read-only). None when it cannot be relied
    on: the last reconcile did not record its state (an older version), or the ledger has
    since gained or lost rows other than by reconcile (its row count differs from the one
    recorded)."""
    if not (has_table(con, "ledger_subjects") and has_table(con, "reconcile_log")):
        return None
    valid, subjects = con.execute(  # whole rows: a store from before 0029 has no runs column
        "SELECT (SELECT n_telemetry IS NOT NULL AND runs = (SELECT count(*) FROM ledger) "
        "        FROM reconcile_log ORDER BY seq DESC LIMIT 1), "
        "(SELECT list(s) FROM ledger_subjects s)").fetchall()[0]
    if not valid:
        return None
    return {(str(r["scope"]), str(r["subject"])):
            None if r.get("runs") is None else Recorded(int(r["runs"]), r["first_known"])
            for r in subjects or []}


def _short(runs: pa.Table, lo: dt.datetime, n: int, late: set[SubjectKey]
           ) -> dict[SubjectKey, tuple[int, int]]:
    """The marked subjects with news whose window may reach before `lo`, each with (its runs
    from before its mark read, all its runs read): those that kept fewer than `n` runs from
    before their mark known at or after `lo` (with `n`, they are its newest and no older run
    can be in its window), and the `late` ones (judged at their mark: news) with none read."""
    marked = runs.filter(pc.is_valid(runs.column("mark")))
    inside = pc.and_(pc.invert(marked.column("_new")),
                     pc.greater_equal(marked.column("known_ts"),
                                      pa.scalar(lo, marked.schema.field("known_ts").type)))
    counts = marked.select(["scope", "subject"]).append_column(
        "_in", pc.cast(inside, pa.int64())).group_by(["scope", "subject"],
                                                     use_threads=False).aggregate(
        [("_in", "sum"), ("_in", "count")])
    kept = dict(zip(zip(counts.column("scope").to_pylist(), counts.column("subject").to_pylist(),
                        strict=True),
                    zip(counts.column("_in_sum").to_pylist(),
                        counts.column("_in_count").to_pylist(), strict=True), strict=True))
    out = {k: (int(i), int(c)) for k, (i, c) in kept.items() if i < n}
    return out | {k: (0, 0) for k in late - kept.keys()}


def _reach(short: Mapping[SubjectKey, tuple[int, int]], lo: dt.datetime, n: int,
           recorded: Mapping[SubjectKey, Recorded | None]) -> tuple[bool, list[dt.datetime]]:
    """What the `short` subjects need read before `lo`, from their `Recorded` runs: whether
    some need the bound widened (nothing recorded, or more runs before `lo` than their window
    wants), and the first knowledge times of those that need every run they have there (no
    more than their window wants): a read from there holds their whole history. A subject
    whose recorded runs were all read needs nothing."""
    widen, starts = False, []
    for key, (inside, read) in short.items():
        r = recorded.get(key)
        rest = None if r is None else r.runs - read  # its runs not read: all known before lo
        if rest is not None and rest <= 0:
            continue
        if (r is not None and rest is not None and rest <= n - inside
                and r.first_known is not None and r.first_known < lo):
            starts.append(r.first_known)
        else:
            widen = True
    return widen, starts


def points(gp: GovernancePolicy, runs: pa.Table, target: dt.datetime | None) -> pa.Table:
    """Each subject's points (scope, subject, `_at`, `_end`; by subject in `runs`' order, then
    `_at`): the knowledge times of its new runs, its mark when a run known by then came after
    it was set (`late`: the runs table has `_late`, `runs_sql`) and, with a duration window,
    the times its runs leave the window after its mark, by `target`; `_end` is the last run
    known by then, its `_i` (a point with none has no window and is left out). `runs`:
    `window_rows`' table, each subject's runs in knowledge-time order, so that run is found
    by a binary search. The one definition of the points; in numpy rather than as DuckDB's
    as-of join, which cost ~4 ms of a live pass at 1M runs to plan and run (bench/RESULTS.md,
    "#14's 1M round: a catch-up's points in numpy")."""
    fields = [runs.schema.field("scope"), runs.schema.field("subject"),
              pa.field("_at", pa.timestamp("us")), pa.field("_end", pa.int64())]
    n = runs.num_rows
    if n == 0:
        return pa.schema(fields).empty_table()
    first = metrics.segment_starts(runs, ["scope", "subject"])
    seg = np.repeat(np.arange(len(first)), np.diff(np.append(first, n)))
    known = _micros(runs.column("known_ts"))
    segs, ats = [seg[_flags(runs, "_new")]], [known[_flags(runs, "_new")]]
    mark = runs.column("mark")
    marked = np.asarray(mark.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    mark_us = _micros(mark, missing=0)
    if "_late" in runs.column_names:
        late = _flags(runs, "_late") & marked
        segs.append(seg[late])
        ats.append(mark_us[late])
    secs = gp.gates.window.seconds
    if secs is not None and target is not None:
        leave = known + round(secs * 1e6)
        gone = (~marked | (leave > mark_us)) & (leave <= (target - EPOCH) // US)
        segs.append(seg[gone])
        ats.append(leave[gone])
    pseg, pat = np.concatenate(segs), np.concatenate(ats)
    order = np.lexsort((pat, pseg))
    pseg, pat = pseg[order], pat[order]
    fresh = np.ones(len(pseg), dtype=bool)  # distinct (subject, time)
    fresh[1:] = (pseg[1:] != pseg[:-1]) | (pat[1:] != pat[:-1])
    pseg, pat = pseg[fresh], pat[fresh]
    # runs and points as one sorted key: the subject, then the time's rank among all times
    _, rank = np.unique(np.concatenate([known, pat]), return_inverse=True)
    width = int(rank.max()) + 1
    rkey = seg * width + rank[:n]
    last = np.searchsorted(rkey, pseg * width + rank[n:], side="right") - 1
    has = last >= first[pseg]  # some run of the subject known by then
    pseg, pat, last = pseg[has], pat[has], last[has]
    rows = pa.array(first[pseg])
    return pa.table([runs.column("scope").take(rows), runs.column("subject").take(rows),
                     pa.array(pat, pa.int64()).cast(pa.timestamp("us")),
                     runs.column("_i").take(pa.array(last)).cast(pa.int64())],
                    schema=pa.schema(fields))


def _flags(runs: pa.Table, name: str) -> npt.NDArray[np.bool_]:
    return np.asarray(runs.column(name).to_numpy(zero_copy_only=False), dtype=bool)


def _expansion_sql(gp: GovernancePolicy, late: bool = False) -> str:
    """Every point's window written out as rows: the runs numbered (_end − N, _end] known after
    _at − duration (`_bounds` as SQL; only metrics without a window kernel read it)."""
    n = gp.gates.window.runs
    secs = gp.gates.window.seconds
    cond = [] if n is None else [f"w._i > p._end - {int(n)}"]
    if secs is not None:
        cond.append(f"w.known_ts > p._at - to_microseconds({round(secs * 1e6)})")
    extra = "".join(f" AND {c}" for c in cond)
    return f"""
SELECT p._at, p._end, w.* EXCLUDE (mark, _new{", _late" if late else ""}) FROM {POINTS} p
JOIN {RUNS} w ON w.scope = p.scope AND w.subject = p.subject AND w._i <= p._end{extra}"""


def plan(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy,
         marks: Mapping[SubjectKey, dt.datetime], target: dt.datetime,
         after: int | None = None) -> Plan:
    """Every subject's assessments at its points after its mark (no mark: its whole history)
    up to `target`. `after`: the `ledger_changes` seq the last catch-up saw (`seen`): the runs
    changed since are late (`runs_sql`'s `changed`); None (a backtest): none is."""
    names = gp.gate_metrics()
    changed, now = None, None
    if after is not None and has_table(con, "ledger_changes"):
        changed, now = changes(lambda q: query_table(con, q), "ledger_changes", after,
                               bool(marks), lambda: ledger_sql(con))
    runs = window_runs(con, gp, needed_columns(con, names), marks, target, changed=changed)
    if runs.num_rows == 0:
        return Plan({}, set(), now)
    return plan_of(assess_runs(con, gp, runs, target), _subjects(runs), now)


def plan_of(assessed: list[tuple[dt.datetime, Assessment]],
            subjects: set[SubjectKey], seen: int | None = None) -> Plan:
    by_time: dict[dt.datetime, list[Assessment]] = {}
    for t, a in assessed:
        by_time.setdefault(t, []).append(a)
    return Plan(dict(sorted(by_time.items())), subjects, seen)


def assess_runs(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, runs: pa.Table,
                target: dt.datetime) -> list[tuple[dt.datetime, Assessment]]:
    """Every (point, assessment) of the runs a replay needs (`runs_sql`'s table, in its
    order), wherever they were selected: `con` only computes (engines.spark runs this per
    subject group on an in-memory connection)."""
    names = gp.gate_metrics()
    at = points(gp, runs, target)
    ids = _ids_by_subject(runs)
    with registered(con, RUNS, runs), registered(con, POINTS, at):
        try:
            return _assess_points(con, gp, names, ids, runs, at)
        except Exception:  # find which subject fails: every other one is still judged
            return _assess_each(con, gp, names, ids, runs, at)


def _subject_starts(rows: pa.Table) -> tuple[npt.NDArray[np.int64], list[SubjectKey]]:
    """The first row of each subject of `rows` (grouped by scope and subject, as `window_rows`
    and `points` leave them) and the subject there."""
    first = metrics.segment_starts(rows, ["scope", "subject"])
    return first, [(str(sc), str(s)) for sc, s in zip(
        rows.column("scope").take(first).to_pylist(),
        rows.column("subject").take(first).to_pylist(), strict=True)]


def _subjects(runs: pa.Table) -> set[SubjectKey]:
    """The subjects of `runs`."""
    return set(_subject_starts(runs)[1])


def _ids_by_subject(runs: pa.Table) -> dict[SubjectKey, list[str]]:
    """Each subject's run_ids in window order (index _i − 1; `runs` grouped by subject in _i
    order, as `_bounds` reads it)."""
    first, keys = _subject_starts(runs)
    ids = [str(r) for r in runs.column("run_id").to_pylist()]
    stops = [*first.tolist()[1:], runs.num_rows]
    return {key: ids[a:b] for key, a, b in zip(keys, first.tolist(), stops, strict=True)}


def _micros(col: pa.ChunkedArray, missing: int | None = None) -> npt.NDArray[np.int64]:
    """A timestamp column as integer microseconds, NULL as `missing` (None: it has none)."""
    c = col.combine_chunks()
    if pa.types.is_timestamp(c.type) and c.type.unit != "us":
        c = c.cast(pa.timestamp("us", c.type.tz))
    c = c.cast(pa.int64())
    if missing is not None:
        c = c.fill_null(missing)
    return np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.int64)


def _bounds(gp: GovernancePolicy, runs: pa.Table, points: pa.Table
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each point's window as rows `lo` to `hi − 1` of `runs` (each subject's runs in _i order,
    _i from 1): the runs numbered (_end − N, _end] known after _at − duration."""
    first, keys = _subject_starts(runs)
    at_row = dict(zip(keys, first.tolist(), strict=True))
    pstarts, pkeys = _subject_starts(points)
    heads = np.asarray([at_row[k] for k in pkeys], dtype=np.int64)
    lens = np.diff(np.append(pstarts, points.num_rows))
    base = np.repeat(heads, lens)
    end = np.asarray(points.column("_end").to_numpy(zero_copy_only=False), dtype=np.int64)
    hi = base + end
    n = gp.gates.window.runs
    lo = base if n is None else base + np.maximum(end - int(n), 0)
    secs = gp.gates.window.seconds
    if secs is not None:
        known = _micros(runs.column("known_ts"))
        after = _micros(points.column("_at")) - round(secs * 1e6)
        stops = np.append(first[1:], runs.num_rows)
        for h, i, k in zip(heads.tolist(), pstarts.tolist(), lens.tolist(), strict=True):
            seg = known[h:stops[np.searchsorted(first, h)]]
            lo[i:i + k] = np.maximum(lo[i:i + k],
                                     h + np.searchsorted(seg, after[i:i + k], side="right"))
    return lo, hi


def _point_metrics(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, names: list[str],
                   runs: pa.Table, points: pa.Table, where: str
                   ) -> tuple[pa.Table, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The points with a non-empty window (in `points`' order), with the metrics of each: by
    the window kernels (`alphatrace.metric_windows`) on slices of `runs`, and those without a
    kernel by `metrics.compute` over the windows written out as rows."""
    lo, hi = _bounds(gp, runs, points)
    keep = hi > lo  # a point whose runs all left the duration window has no window
    if not keep.all():
        points, lo, hi = points.filter(pa.array(keep)), lo[keep], hi[keep]
    fast = [n for n in names if metric_windows.supported(n)]
    got = metric_windows.compute(runs, lo, hi, fast)
    tbl = points.select(["scope", "subject", "_at", "_end"])
    slow = [n for n in names if n not in fast]
    if slow:
        rows = _expansion_sql(gp, "_late" in runs.column_names)
        rest = metrics.compute(con, f"SELECT * FROM ({rows}) WHERE {where}",
                               ["scope", "subject", "_at", "_end"], slow, order=ORDER)
        if rest.num_rows != tbl.num_rows:
            raise RuntimeError("windows and metric groups disagree")
    for nm in names:
        tbl = tbl.append_column(nm, pa.array(got[nm]) if nm in got else rest.column(nm))
    return tbl, lo, hi


def _assess_points(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, names: list[str],
                   ids: Mapping[SubjectKey, list[str]], runs: pa.Table, points: pa.Table,
                   where: str = "true") -> list[tuple[dt.datetime, Assessment]]:
    tbl, lo, hi = _point_metrics(con, gp, names, runs, points, where)
    keys = zip(tbl.column("scope").to_pylist(), tbl.column("subject").to_pylist(), strict=True)
    ends = tbl.column("_end").to_pylist()
    windows = [ids[(str(sc), str(s))][int(e) - size:int(e)]
               for (sc, s), e, size in zip(keys, ends, (hi - lo).tolist(), strict=True)]
    return list(zip(tbl.column("_at").to_pylist(), assessments(gp, tbl, names, windows),
                    strict=True))


def _assess_each(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, names: list[str],
                 ids: Mapping[SubjectKey, list[str]], runs: pa.Table, points: pa.Table
                 ) -> list[tuple[dt.datetime, Assessment]]:
    """Subject by subject; a subject whose metrics fail gets an `error` at each of its points
    (its window: the newest `window.runs` known by then)."""
    n = gp.gates.window.runs
    out: list[tuple[dt.datetime, Assessment]] = []
    rows = list(zip(points.column("scope").to_pylist(), points.column("subject").to_pylist(),
                    points.column("_at").to_pylist(), points.column("_end").to_pylist(),
                    strict=True))
    for key in sorted(ids):
        sc, s = key
        mine = [i for i, (psc, ps, _, _) in enumerate(rows) if (psc, ps) == key]
        try:
            out += _assess_points(con, gp, names, ids, runs, points.take(mine),
                                  f"scope = '{sc}' AND subject = {_quote(s)}")
        except Exception as e:  # this subject's failure is its error
            for i in mine:
                _, _, at, end = rows[i]
                lo = 0 if n is None else max(0, int(end) - n)
                out.append((at, Assessment(key, ids[key][lo:int(end)], {}, error=failure(e))))
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class RunReads(Protocol):
    """The two ledger reads a walk may need, from an engine other than `con`'s."""

    def membership(self, target: dt.datetime) -> Membership: ...

    def assess(self, gp: GovernancePolicy, as_of: dt.datetime,
               only: list[SubjectKey] | None = None) -> list[Assessment]: ...


@dataclass
class Walk:
    """The lifecycle as the walk passes through time: each subject's state and newest record,
    with the log's records applied when the walk reaches their as_of."""

    state: dict[SubjectKey, State]
    last: dict[SubjectKey, dict[str, Any]]
    pending: list[dict[str, Any]] = field(default_factory=list)  # by (as_of, seq)
    # the strategies whose state is killed, kept with `state` (read at every point)
    killed: set[str] = field(init=False)
    _next: int = field(default=0, init=False)  # the first of `pending` not yet applied

    def __post_init__(self) -> None:
        self.killed = {s for (sc, s), st in self.state.items()
                       if sc == "strategy" and st == "killed"}

    def _set(self, key: SubjectKey, state: State) -> None:
        self.state[key] = state
        if key[0] == "strategy":
            if state == "killed":
                self.killed.add(key[1])
            else:
                self.killed.discard(key[1])

    def advance(self, t: dt.datetime) -> set[SubjectKey]:
        """Apply the log's records up to `t`; the subjects revived by them."""
        revived = set()
        while self._next < len(self.pending) and self.pending[self._next]["_at"] <= t:
            r = self.pending[self._next]
            self._next += 1
            key = (str(r["scope"]), str(r["subject"]))
            self._set(key, r["state"])
            self.last[key] = r
            if r["action"] == "revive":
                revived.add(key)
        return revived

    def record(self, d: Decision, content: dict[str, Any] | None = None) -> None:
        """Apply a decision that is news (`content`: its `content()`, if already built)."""
        self._set(d.key, d.state)
        self.last[d.key] = d.content() if content is None else content


def start(con: duckdb.DuckDBPyConnection, first: dt.datetime | None, *,
          empty: bool = False, newest: Mapping[SubjectKey, Newest] | None = None) -> Walk:
    """The lifecycle at `first` from the log (empty: from nothing, as the backtest starts),
    with the log's later records pending. `newest`: each subject's newest record
    (`journal.newest_times`), when read for the same log."""
    from alphatrace.governance import journal  # journal imports gates: avoid a cycle at import
    from alphatrace.governance.lifecycle import CHAIN_SCOPE

    if empty or first is None:
        return Walk({}, {})
    last = journal.newest_records(con, first)
    state = journal.states_of(last)
    if newest is not None and all(n.as_of <= first for n in newest.values()):
        # no record is later: a subject's records by seq have non-decreasing as_ofs
        # (`journal.out_of_order`), and those of the chain or without an as_of are not kept
        return Walk(state, last)
    # the log's records after `first` (from the first of them by seq: not the whole log)
    lo = (con.execute("SELECT min(seq) FROM decisions WHERE as_of > ?", [first]).fetchall()[0][0]
          if journal.has_log(con) else None)
    later = [] if lo is None else [
        r for r in journal.read_records(con, since_seq=int(lo)) if r["scope"] != CHAIN_SCOPE
        and r["as_of"] is not None and _parse(r["as_of"]) > first]
    for r in later:
        r["_at"] = _parse(r["as_of"])
    later.sort(key=lambda r: (r["_at"], r["seq"]))
    return Walk(state, last, later)


def _parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Membership:
    """Which agents a killed strategy cascades to at a time: agents with a run in it signalled
    by then (ledger rows, excluded and open runs too), as `gates._cascade_targets` reads them."""

    first: dict[str, dict[str, dt.datetime]]  # agent → strategy → its first signal there
    joins: list[tuple[dt.datetime, str, str]]  # (first signal, agent, strategy), sorted

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, target: dt.datetime) -> Membership:
        return cls.of_rows(con.execute(
            f"SELECT agent, strategy, min(ts) FROM {ledger_sql(con)} WHERE ts <= ? "
            "AND agent IS NOT NULL AND strategy IS NOT NULL GROUP BY ALL", [target]).fetchall())

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[Any, Any, dt.datetime]]) -> Membership:
        """From (agent, strategy, first signal there) rows, whichever engine read them."""
        got = list(rows)
        first: dict[str, dict[str, dt.datetime]] = {}
        for a, s, t in got:
            first.setdefault(str(a), {})[str(s)] = t
        joins = sorted((t, str(a), str(s)) for a, s, t in got)
        return cls(first, joins)

    def of(self, strategies: set[str], t: dt.datetime) -> set[str]:
        return {a for a, ss in self.first.items()
                if any(s in strategies and ts <= t for s, ts in ss.items())}

    def joined(self, lo: dt.datetime | None, hi: dt.datetime) -> set[str]:
        """Agents that joined a strategy in (lo, hi]."""
        i = 0 if lo is None else bisect.bisect_right(self.joins, (lo, "\uffff", "\uffff"))
        j = bisect.bisect_right(self.joins, (hi, "\uffff", "\uffff"))
        return {a for _, a, _ in self.joins[i:j]}

    def target(self, agent: str, killed: list[str], t: dt.datetime) -> str | None:
        ss = self.first.get(agent, {})
        hit = [s for s in killed if s in ss and ss[s] <= t]
        return min(hit) if hit else None


def revived(newest: Mapping[SubjectKey, Newest], target: dt.datetime
            ) -> dict[dt.datetime, set[SubjectKey]]:
    """Subjects whose newest record is a revive (not judged since), by the revive's as_of (at
    most `target`): the next evaluation judges them there, in the lifecycle the revive left.
    `newest`: `journal.newest_times` (every subject)."""
    out: dict[dt.datetime, set[SubjectKey]] = {}
    for key, n in newest.items():
        if n.action == "revive":
            out.setdefault(min(n.as_of, target), set()).add(key)
    return out


def walk(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, p: Plan, w: Walk,
         target: dt.datetime, revives: Mapping[dt.datetime, set[SubjectKey]] | None = None,
         runs: RunReads | None = None
         ) -> Iterator[tuple[dt.datetime, list[tuple[Decision, bool]]]]:
    """At each point in time order: every decision taken there and whether it is news (the
    news are applied to the lifecycle before the next point). Subjects judged at a point: those
    with a point there, plus the agents a strategy kill cascades to, agents that joined a
    killed strategy since the previous point and subjects revived since then (each with its
    window as it stands: its latest assessment, else its window read at that time).
    `runs`: where the ledger is read (default: `con`'s)."""
    loaded: list[Membership] = []

    def members() -> Membership:  # read on first need: only cascades ask for it
        if not loaded:
            loaded.append(runs.membership(target) if runs else Membership.load(con, target))
        return loaded[0]

    current: dict[SubjectKey, Assessment] = {}
    prev: dt.datetime | None = None
    for t, fresh in p.by_time.items():
        revived = w.advance(t) | set((revives or {}).get(t, set()))
        killed = set(w.killed)
        for a in fresh:
            current[a.key] = a
        new_kills = {a.key[1] for a in fresh if a.key[0] == "strategy" and a.error is None
                     and a.kill is not None and a.key[1] not in killed}
        doomed = killed | new_kills
        extra = {("agent", a) for a in members().of(new_kills, t)} if new_kills else set()
        if doomed:
            extra |= {("agent", a) for a in members().joined(prev, t)
                      if members().target(a, sorted(doomed), t) is not None}
        extra |= revived
        judged = {a.key for a in fresh}
        missing = [k for k in extra - judged if k not in current]
        if missing:
            at_t = {a.key: a for a in (runs.assess(gp, t, sorted(missing)) if runs
                                       else assess(con, gp, t, sorted(missing)))}
            for k in missing:
                if k in at_t:
                    current[k] = at_t[k]
        assessed = fresh + [current[k] for k in sorted(extra - judged) if k in current]
        scope_of = {a.key[1] for a in assessed if a.key[0] == "agent"} | {
            k[1] for k in extra if k[0] == "agent"}

        def targets(ks: list[str], _t: dt.datetime = t, _who: set[str] = scope_of
                    ) -> dict[str, str]:
            out = {}
            for agent in sorted(_who):
                s = members().target(agent, ks, _t)
                if s is not None:
                    out[agent] = s
            return out

        decisions = judge(gp, t, w.state, assessed, targets, killed)
        out = []
        contents = [d.content() for d in decisions]
        for d, c in zip(decisions, contents, strict=True):
            out.append((d, is_news(w.last.get(d.key), c)))
        for (d, news), c in zip(out, contents, strict=True):
            if news:
                w.record(d, c)
        prev = t
        yield t, out


def progress(con: duckdb.DuckDBPyConnection) -> dict[SubjectKey, dt.datetime]:
    """How far each subject has been evaluated (gate_progress; empty before migration 0012)."""
    if not has_table(con, "gate_progress"):
        return {}
    return {(str(sc), str(s)): t for sc, s, t in
            con.execute("SELECT scope, subject, evaluated_to FROM gate_progress").fetchall()}


def save_progress(con: duckdb.DuckDBPyConnection, subjects: set[SubjectKey],
                  to: dt.datetime) -> None:
    if not subjects:
        return
    tbl = _marks_table(dict.fromkeys(sorted(subjects), to))
    with registered(con, MARKS, tbl):
        con.execute(f"INSERT OR REPLACE INTO gate_progress SELECT scope, subject, mark FROM {MARKS}")

