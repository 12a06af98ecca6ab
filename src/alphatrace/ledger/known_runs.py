"""Which runs the ledger holds, kept in memory between a caller's reconciles.

A pass rebuilds the ledger rows of the runs that changed (`reconcile.changed_runs`). Most of
those are new: runs of this round's events that no ledger row names yet. Such a run has no
row to delete, and its source rows are all in files newer than the last reconcile (every
event of an older file is counted in the ledger, which `changed_runs` checks) and among the
legs this pass priced. Finding that out from the store means matching the runs against every
ledger, legs and telemetry row: cheap when run ids sort by time (DuckDB's zone maps skip the
old row groups), a scan of the whole table when they are in no order (UUIDv4 text, OTLP trace
ids), which at 1M runs was most of a pass (bench/RESULTS.md, "#14's 1M round").

`KnownRuns` answers it without reading the ledger: the 64-bit `hash(run_id)` of every run it
holds, as DuckDB computes it, sorted. A superset is safe — a hash collision, or a run that
left the ledger, only makes a new run look held, and a held run is read from the tables as
before — so runs are added and never removed. The set describes the ledger as one reconcile
left it (`seq`, the `reconcile_log` row that reconcile wrote); when the store's last
reconcile is another one (the batch CLI, a failed pass), it is read again from the ledger.
The live pipeline keeps one (`server.pipeline.Pipeline.runs`); batch reconciles pass none and
read the tables.

Each run also keeps a file id no newer than any of its rows (`KnownRuns.since`): for a run a
pass added, the file after that pass's `seen`, since all its rows were newer; 0 for runs read
from the ledger. A held run's rows are then read from that file on (`reconcile`'s
`_source_rows_sql`), so a run touched again soon (an open leg priced by the next bar) costs
what its recent files hold. A hash collision leaves a new run with the bound of an older run,
which is older than any row of the new one: still a bound.

Each entry also keeps the `ts` of the ledger row it stands for (`NO_TS`: none, or not
known), and a pass adds an entry for every row it writes, held runs included (`written`), so
the entries of a hash hold the `ts` of the row the ledger has now among others: the span of
them (`KnownRuns.span`) bounds the delete of held runs' rows, which DuckDB's min/max filters
prune on the `ts`-ordered ledger (`ts_within`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.store.connection import registered
from alphatrace.store.statements import to_arrow


def _find(sorted_h: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `h`, whether the sorted array `sorted_h` holds it, and where."""
    if sorted_h.size == 0:
        return np.zeros(h.size, dtype=bool), np.zeros(h.size, dtype=np.intp)
    i = np.minimum(np.searchsorted(sorted_h, h), sorted_h.size - 1)
    return sorted_h[i] == h, i


# sorted hashes, and each one's file id and the `ts` of the ledger row it was written with
# (epoch µs, `NO_TS` when that row had none or was not written by a pass)
Segment = tuple[np.ndarray, np.ndarray, np.ndarray]
NO_TS = np.iinfo(np.int64).min
# SQL: a ledger row's `ts` as an entry keeps it (epoch µs, `NO_TS` for none)
ROW_TS = f"coalesce(epoch_us(ts), {NO_TS})"


def _merge(a: Segment, b: Segment) -> Segment:
    """Two segments as one, in time linear in their sizes: `b`'s places in the merged order
    are its positions in `a` plus its own rank (both sorted), `a` fills the rest."""
    (ha, fa, ta), (hb, fb, tb) = a, b
    at = np.searchsorted(ha, hb, side="right") + np.arange(hb.size)
    h = np.empty(ha.size + hb.size, dtype=np.uint64)
    f = np.empty(h.size, dtype=np.int64)
    t = np.empty(h.size, dtype=np.int64)
    rest = np.ones(h.size, dtype=bool)
    rest[at] = False
    h[at], f[at], t[at] = hb, fb, tb
    h[rest], f[rest], t[rest] = ha, fa, ta
    return h, f, t


def _segment(h: np.ndarray, files: np.ndarray, times: np.ndarray) -> Segment:
    """Entries as a segment: sorted by hash, each keeping its file and time."""
    order = np.argsort(h.astype(np.uint64, copy=False), kind="stable")
    return (h.astype(np.uint64, copy=False)[order], files.astype(np.int64, copy=False)[order],
            times.astype(np.int64, copy=False)[order])


def rows_since(table: str, since: int | None) -> str:
    """SQL: the rows of `table` (which has `file_id`) from file `since` on, as a relation;
    `table` itself when no bound is known (None or 0). Rows are stored in file order, so
    DuckDB's min/max filters skip the row groups of older files: a run's rows read from the
    file the set keeps for it (`KnownRuns.find`), or a stale leg's signal from its leg's."""
    return table if not since else f"(SELECT * FROM {table} WHERE file_id >= {int(since)})"


def ts_within(span: tuple[int, int] | None) -> str:
    """SQL: a ledger row's `ts` inside `span` (`KnownRuns.span`; `true` when it is not
    known), whose min/max DuckDB checks against each row group's to skip it: the ledger is
    stored in `ts` order (a full rebuild writes it so, and a pass appends its runs, newer than
    those before), so finding or deleting the rows of runs touched again soon reads the
    newest row groups, not the whole ledger (bench/RESULTS.md, "#14's 1M round: where a
    steady pass's time goes")."""
    if span is None:
        return "true"
    lo, hi = span
    return f"ts BETWEEN make_timestamp({int(lo)}) AND make_timestamp({int(hi)})"


@dataclass
class KnownRuns:
    """A superset of the ledger's run ids (their `hash(run_id)`) as the reconcile `seq` left
    it, each with a file id no newer than its oldest source row (`since`) and its row's `ts`
    (module docstring), in `segments` of
    sorted hashes. A pass's runs become a segment, merged with the one before it while it
    is at least half that one's size (a binary counter): each segment is less than half the
    one before, so a lookup searches O(log(runs / pass)) arrays and a hash is merged
    O(log) times, never the whole set at every pass. (Merging every pass's array once they
    outgrew an eighth of the set left up to 125 arrays to search at 1M runs.) `pending`:
    what the running pass adds, kept on `commit`, dropped on `drop`."""

    seq: int | None = None
    segments: list[Segment] = field(default_factory=list)
    pending: tuple[int, Segment] | None = None
    reads: int = 0  # times the set was read from the ledger

    def find(self, h: np.ndarray) -> tuple[np.ndarray, int]:
        """For each hash in `h`, whether the ledger may hold that run (False: it does not);
        and a file id no newer than any source row of those it may hold (their events' and
        legs' `file_id`): 0 for runs that were in the ledger when the set was read, or when
        it holds none of them."""
        held = np.zeros(h.size, dtype=bool)
        bound = np.iinfo(np.int64).max
        for hashes, files, _ in self.segments:
            found, i = _find(hashes, h)
            if found.any():
                held |= found
                bound = min(bound, int(files[i[found]].min()))
        return held, (0 if bound == np.iinfo(np.int64).max else bound)

    def span(self, h: np.ndarray) -> tuple[int, int] | None:
        """The earliest and latest `ts` (epoch µs) of the ledger rows of the runs `h` the set
        holds: every entry of each of those hashes counts, so a hash collision or a run's
        earlier row only widens the span, and the row the ledger has now is inside it. None
        when some entry has no `ts` (a row without one, or a run read or staged without its
        row's), or no hash is held."""
        lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        for hashes, _, times in self.segments:
            if hashes.size == 0:
                continue
            left = np.searchsorted(hashes, h, side="left")
            right = np.searchsorted(hashes, h, side="right")
            has = right > left
            if not has.any():
                continue
            at = [np.arange(x, y) for x, y in zip(left[has], right[has], strict=True)] \
                if (right[has] - left[has]).max() > 1 else [left[has]]
            t = times[np.concatenate(at)]
            if (t == NO_TS).any():
                return None
            lo, hi = min(lo, int(t.min())), max(hi, int(t.max()))
        return None if lo > hi else (lo, hi)

    def current(self, seq: int) -> bool:
        """Whether the set describes the ledger as the reconcile `seq` left it."""
        return self.seq == seq

    def read(self, con: duckdb.DuckDBPyConnection, seq: int) -> None:
        """The set from the ledger as it is now, which the reconcile `seq` left (its runs'
        rows may be in any file: `since` 0), with each row's `ts`."""
        got = con.execute(f"SELECT hash(run_id) AS h, {ROW_TS} AS t FROM ledger").fetchnumpy()
        h = got["h"]
        self.seq, self.pending = seq, None
        self.segments = [_segment(h, np.zeros(h.size, np.int64), got["t"])]
        self.reads += 1

    def stage(self, seq: int, new: np.ndarray, since: int | np.ndarray,
              times: np.ndarray | None = None) -> None:
        """The running reconcile `seq` writes the ledger rows of the runs `new`, every source
        row of which is in a file `since` or newer (one for all, or one each), with `times`
        their rows' `ts` (epoch µs, `NO_TS` for none; None: not known)."""
        files = np.broadcast_to(np.asarray(since, dtype=np.int64), new.shape)
        self.pending = (seq, _segment(new, files, np.full(new.size, NO_TS, dtype=np.int64)
                                      if times is None else times))

    def commit(self) -> None:
        """The pass's transaction committed: the set describes the ledger it left. A pass
        that staged nothing (one that rebuilt the whole ledger) leaves the set to be read."""
        if self.pending is None:
            self.drop()
            return
        self.seq, new = self.pending
        self.pending = None
        if new[0].size:
            self.segments.append(new)
        while (len(self.segments) > 1
               and 2 * self.segments[-1][0].size >= self.segments[-2][0].size):
            last = self.segments.pop()
            self.segments[-1] = _merge(self.segments[-1], last)

    def drop(self) -> None:
        """The pass failed or rebuilt everything: read the set again before using it."""
        self.seq, self.pending, self.segments = None, None, []


@dataclass(frozen=True)
class Split:
    """A pass's changed runs (`_rc_runs`) split by whether the ledger may hold them: `held`
    runs, in the temp table `_rc_held`, are read from the tables; the others have all their
    rows in files newer than `seen` (the last reconcile's newest) and among the legs this pass
    priced. `_rc_held` exists only when `held` is not 0."""

    held: int
    seen: int
    since: int = 0  # a file id no newer than any source row of the held runs
    # the earliest and latest `ts` (epoch µs) of the held runs' ledger rows
    # (`KnownRuns.span`; None: not known)
    span: tuple[int, int] | None = None
    # `_rc_runs`' run_id and hash(run_id) (`h`), and whether the set holds each (`held`)
    runs: pa.Table | None = None

    def fresh(self) -> str:
        """The changed runs the ledger does not hold, as a relation of `run_id`."""
        return ("_rc_runs" if not self.held
                else "(SELECT run_id FROM _rc_runs ANTI JOIN _rc_held USING (run_id))")


def split(con: duckdb.DuckDBPyConnection, known: KnownRuns, last_seq: int, seq: int,
          seen: int) -> Split:
    """Split `_rc_runs` (see `Split`), reading `known` from the ledger first unless it
    describes it as the reconcile `last_seq` left it, and stage the new runs as the reconcile
    `seq`'s. Runs inside the pass's transaction, before its ledger rows are deleted."""
    if not known.current(last_seq):
        known.read(con, last_seq)
    con.execute("SELECT run_id, hash(run_id) AS h FROM _rc_runs")
    runs = to_arrow(con, 1 << 20)
    h = runs.column("h").to_numpy()
    held, since = known.find(h)
    known.stage(seq, h[~held], seen + 1)
    n = int(held.sum())
    if n:
        with registered(con, "_rc_held_arrow", runs.filter(pa.array(held)).select(["run_id"])):
            con.execute("CREATE OR REPLACE TEMP TABLE _rc_held AS "
                        "SELECT run_id FROM _rc_held_arrow")
    return Split(n, seen, since, known.span(h[held]) if n else None,
                 runs.append_column("held", pa.array(held)))


def written(known: KnownRuns, seq: int, split: Split, rows: pa.Table) -> None:
    """Stage, in place of what `split` staged, the ledger rows the reconcile `seq` wrote
    (`rows`: their run_id and ts): each run with its row's `ts`, and the file bound `split`
    gave it (the held runs' bound, or the file after `seen` for a run new to the ledger). A
    changed run with no row now is not in the ledger: it needs no entry."""
    assert split.runs is not None
    at = pc.index_in(rows.column("run_id"), value_set=split.runs.column("run_id"))
    h = split.runs.column("h").take(at).to_numpy()
    held = split.runs.column("held").take(at).to_numpy(zero_copy_only=False)
    ts = pc.fill_null(pc.cast(pc.cast(rows.column("ts"), pa.timestamp("us")), pa.int64()),
                     NO_TS).to_numpy()
    known.stage(seq, h, np.where(held, split.since, split.seen + 1), ts)
