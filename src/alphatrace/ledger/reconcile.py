"""`alphatrace reconcile`: price what is new or whose inputs changed, then rebuild the ledger.

Incremental and idempotent. A leg is (re)priced when it is new, its symbol now resolves
differently, it was priced before legs recorded their `bar_interval` (a store upgraded by
migration 0008: its next reconcile re-prices those legs once), the policy section changed, its
market's bars changed other than by appending, or funding changed in a way that can reach it
(anything but appended settlements after its exit). Appended bars cannot move a realized leg:
its exit bar already existed and new bars open later. A leg not realized (open, unpriced) is
priced again only when market data that can move it came (`_STALE_LEG`), not every time.
Market changes are detected from a per-symbol digest stored after each reconcile
(`ledger_market_state`), one aggregate pass over the bars; a caller that lives across passes
(the server's pipeline) passes a `MarketCache` and reads only the rows the market tables
gained (`market_cache`).

A pass after a round that brought telemetry alone, with the market, the policy and the
aliases as this caller's last reconcile left them (`_telemetry_only`), prices and resolves
nothing: it writes the rows of the new telemetry's runs as a projection of their telemetry
(`telemetry_pass`), unless one of them has a leg or a pnl event.

The ledger is rebuilt only for the runs that changed (`changed_runs`): runs of legs priced or
removed now, runs with events from files newer than the last reconcile (file ids only grow),
and runs whose pnl symbols now resolve differently. It is rebuilt in full with `--full`, on
the first reconcile, after a policy change, when the code that builds it changed
(`ledger_build`), or when the event tables no longer add up to what the ledger counted plus
the new files (an event removed, or rows written other than by ingest). The result equals a
from-scratch rebuild; the tests check that on random histories split into random batches.
Whichever way the rows were rebuilt, the runs whose row was added, now differs or left the
ledger, and that count for governance on a side, are appended to `ledger_changes` with this reconcile's seq and their agent, strategy and
knowledge time before and after (migrations 0023, 0028; `ledger.changes`): the gates' late runs.

What the last reconcile left is recorded so the next one does not recount it (migration 0016):
its `reconcile_log` row (policy, legs, runs, newest file, the telemetry and pnl rows then), the
alias resolution its legs were priced with (`ledger_alpha_keys`) and the subjects with realized
runs (`ledger_subjects`, read by gates). When that row still describes the store (same number
of legs and ledger rows, written by this version), a pass reads only what is new: the symbols
of new events and the stored ones, the legs of symbols whose market or resolution changed
(`_stale_legs_sql`; none when no market data came), and the runs of new files. Otherwise it
counts and compares everything, as the first reconcile after an upgrade does once.

This module runs the SQL of `market`, `pricing` and `build` on the store, in one transaction,
and hands `locate` the bars, settlements and signals it searches (as numpy arrays).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.ledger import changes, known_runs, locate, market_cache, telemetry_pass
from alphatrace.ledger.build import (
    LEDGER_COLUMNS,
    SOURCES,
    ledger_sql,
    pnl_keys_sql,
    runs_rows_sql,
    single_sources,
    telemetry_only_sql,
)
from alphatrace.ledger.fingerprint import FIELDS, with_fingerprints
from alphatrace.ledger.known_runs import KnownRuns
from alphatrace.ledger.market import (
    DELTA_SQL,
    chosen_bars_sql,
    funding_profile_sql,
    funding_rows_sql,
    label_sql,
    markets_sql,
    profile_sql,
)
from alphatrace.ledger.market_cache import MarketCache
from alphatrace.ledger.market_changes import MarketChanges, classify
from alphatrace.ledger.policy import ReconcileConfig, params_sql
from alphatrace.ledger.pricing import (
    LEG_COLUMNS,
    Relations,
    horizon_us,
    narrow_sql,
    priced_legs_sql,
)
from alphatrace.market.symbols import resolution_sql
from alphatrace.sql import lit, ts_literal
from alphatrace.store import Store
from alphatrace.store.connection import (
    catalog_cached,
    has_table,
    one,
    registered,
    table_columns,
)
from alphatrace.store.statements import parsed, query_table, to_arrow

Step = Callable[[str], None]


@dataclass
class ReconcileReport:
    """docs/architecture.md §CLI keys (legs, realized, open, unpriced) plus what this reconcile did."""

    legs: int
    realized: int
    open: int
    unpriced: int
    priced: int
    runs: int
    policy_hash: str
    full: bool
    rebuilt: int = 0  # ledger rows (runs) rebuilt by this reconcile; `runs` when in full
    changes: int = 0  # of them, and of rows that left, those some window sees (`ledger.changes`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# each source's rows of the changed runs (`_build_ledger`)
_ROWS = {name: f"_rc_{name}_rows" for name in SOURCES}
_TEMP = ("_rc_params", "_rc_profile", "_rc_markets", "_rc_fprofile", "_rc_settle", "_rc_symmap",
         "_rc_pnlkeys", "_rc_todo", "_rc_gone", "_rc_runs", "_rc_stale", "_rc_built",
         "_rc_held",
         *_ROWS.values())


@dataclass(frozen=True)
class Market:
    """The chosen bars (their times as a `locate.Series`, their opens per row) and the funding
    settlements (i, sid, us; `i` is the key of `_rc_settle`, which holds their running sums)
    of one reconcile: what `locate` searches."""

    bars: locate.Series
    opens: np.ndarray
    settlements: locate.Columns
    # the profiles' columns and `ledger_market_state`'s rows when taken from a live caller's
    # snapshot (`_profile_tables`), so `market_changes` need not read them back
    profiles: tuple[dict[str, list[Any]], dict[str, list[Any]], list[tuple[Any, ...]]] | None \
        = None


def prepare_market(con: duckdb.DuckDBPyConnection, cfg: ReconcileConfig,
                   cache: MarketCache | None = None,
                   snap: market_cache.Snapshot | None = None) -> Market:
    """Profiles (temp tables `_rc_profile`, `_rc_markets`, `_rc_fprofile`), the chosen bars
    and the funding running sums (`_rc_settle`). With `cache` (a reconciler that lives
    across passes), from its snapshot plus the rows the market tables gained when that is
    all that changed (`market_cache`); the new snapshot is left in `cache.pending`. `snap`:
    that snapshot already brought up to the store (`advanced`; None: not yet, or not
    possible)."""
    if snap is None and cache is not None:
        snap = advanced(con, cfg, cache)
    profiles = None
    if snap is None:
        snap = _read_market(con, cfg, cache.min_room if cache is not None else 0,
                            kept=cache is not None)
        if cache is not None:
            cache.full_reads += 1
            cache.kinds.append("full")
    else:
        assert cache is not None
        cache.delta_reads += 1
        cache.kinds.append("same" if snap.bars is cache.snapshot.bars  # type: ignore[union-attr]
                           and snap.funding is cache.snapshot.funding  # type: ignore[union-attr]
                           else "delta")
        profiles = (*_profile_tables(con, snap), list(snap.state or []))
    if cache is not None:
        cache.pending = snap
    totals = snap.totals
    with registered(con, "_rc_settle_rows", locate.as_arrow(totals)) as rows:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_settle AS SELECT * FROM {rows}")
    return Market(snap.bars.series, snap.bars.opens, {k: totals[k] for k in ("i", "sid", "us")},
                  profiles)


def market_changes(con: duckdb.DuckDBPyConnection, market: Market) -> MarketChanges:
    """How the market moved since the last reconcile (`ledger.market_changes`), from the
    profiles `prepare_market` made and `ledger_market_state`."""
    if market.profiles is not None:
        return classify(*market.profiles)
    cols = ("symbol", "interval_s", "n", "digest", "last_us", "prefix_n", "prefix_digest")
    profile = con.execute(f"SELECT {', '.join(cols)}, chosen FROM _rc_profile").fetchnumpy()
    fprofile = con.execute("SELECT symbol, n, digest, prefix_n, prefix_digest "
                           "FROM _rc_fprofile").fetchnumpy()
    return classify({k: v.tolist() for k, v in profile.items()},
                    {k: v.tolist() for k, v in fprofile.items()}, market_state(con))


def _read_market(con: duckdb.DuckDBPyConnection, cfg: ReconcileConfig, min_room: int,
                 kept: bool = True) -> market_cache.Snapshot:
    """The market read in full: the profile tables by SQL over every bar and settlement.
    The tables' watermarks only matter to a snapshot that is `kept` for the next pass; the
    batch path does without them, so it also reads market relations that have no row ids
    (the Spark engine's views over exported files)."""
    marks = _table_marks(con) if kept else _UNMARKED
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_profile AS {profile_sql(cfg.bar_interval_s)}")
    intervals = [int(r[0]) for r in con.execute(
        "SELECT DISTINCT interval_s FROM _rc_profile WHERE chosen").fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE _rc_markets AS "
                + markets_sql("_rc_profile", label_sql(intervals)))
    chosen = con.sql(chosen_bars_sql("_rc_markets")).fetchnumpy()
    bars = locate.Bars.of(chosen["sid"], chosen["us"], chosen["open"], min_room)
    con.execute("CREATE OR REPLACE TEMP TABLE _rc_fprofile AS "
                + funding_profile_sql("_rc_markets"))
    funding = con.sql(funding_rows_sql("_rc_fprofile")).fetchnumpy()
    series: market_cache.Series = {
        (str(r[0]), int(r[1])): tuple(int(x) for x in r[2:]) for r in con.execute(
            "SELECT symbol, interval_s, n, first_us, last_us, digest FROM _rc_profile").fetchall()}
    fseries: market_cache.Funding = {
        str(r[0]): tuple(int(x) for x in r[1:]) for r in con.execute(
            "SELECT symbol, n, first_us, last_us, null_marks, digest FROM _rc_fprofile").fetchall()}
    markets = con.execute("SELECT symbol, sid, interval_s FROM _rc_markets").fetchall()
    return market_cache.Snapshot(
        cfg.bar_interval_s, *marks, series, fseries,
        {str(s): int(i) for s, i, _ in markets}, {str(s): int(iv) for s, _, iv in markets},
        bars, funding, market_cache.settle(funding, bars))


_UNMARKED = (market_cache.Watermark(0, 0, None), market_cache.Watermark(0, 0, None), 0)


def _table_marks(con: duckdb.DuckDBPyConnection
                 ) -> tuple[market_cache.Watermark, market_cache.Watermark, int]:
    """The watermarks of `bars` and `funding` and the corrections imports made."""
    marks = []
    for table in ("bars", "funding"):
        rows = int(one(con, f"SELECT count(*) FROM {table}")[0])
        top = one(con, f"SELECT coalesce(max(rowid), -1) FROM {table}")[0]
        last = con.execute(DELTA_SQL[table], {"from": int(top)}).fetchnumpy() if rows else \
            {"rid": np.zeros(0)}
        marks.append(market_cache.watermark(rows, last))
    return marks[0], marks[1], _corrections(con)


def _corrections(con: duckdb.DuckDBPyConnection) -> int:
    return int(one(con, f"SELECT {_corrections_sql(con)}")[0])


def _corrections_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The rows market imports updated in place (a scalar SQL expression; 0 before
    `market_files` exists): the snapshot's corrections count (`market_cache`)."""
    if not has_table(con, "market_files"):
        return "0"
    return "(SELECT coalesce(sum(updated), 0) FROM market_files)"


def advanced(con: duckdb.DuckDBPyConnection, cfg: ReconcileConfig, cache: MarketCache,
             last: LastState | None = None, counts: tuple[int, int, int] | None = None
             ) -> market_cache.Snapshot | None:
    """`cache`'s snapshot brought up to the store by the rows its tables gained (None: there
    is none for `cfg`'s bar interval, or the market must be read in full). `last`: the last
    reconcile's state; when that reconcile is the one that left the snapshot (`left_by`),
    no other has written `ledger_market_state` since (only a reconcile writes it, with its
    `reconcile_log` row), so the snapshot's copy stands in for reading it. `counts`: the
    rows of bars and funding and the corrections (`Facts.market`), when already read."""
    snap = cache.snapshot
    if snap is None or snap.interval != cfg.bar_interval_s or snap.state is None:
        return None
    if counts is None:
        counts = one(con, "SELECT (SELECT count(*) FROM bars), (SELECT count(*) FROM funding), "
                          + _corrections_sql(con))
    bars = con.execute(DELTA_SQL["bars"], {"from": max(snap.bars_mark.next - 1, 0)}
                       ).fetchnumpy()
    funding = con.execute(DELTA_SQL["funding"], {"from": max(snap.funding_mark.next - 1, 0)}
                          ).fetchnumpy()
    ours = last is not None and snap.left_by is not None and snap.left_by[0] == last.seq
    return market_cache.advance(snap, bars, funding, int(counts[0]), int(counts[1]),
                                int(counts[2]), snap.state if ours else market_state(con))


def market_state(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """`ledger_market_state`'s rows, in order."""
    return [tuple(r) for r in con.execute(
        "SELECT * FROM ledger_market_state ORDER BY symbol").fetchall()]


_PROFILE_TYPES = {
    "_rc_profile": ("symbol VARCHAR, interval_s INTEGER, n BIGINT, first_us BIGINT, "
                    "last_us BIGINT, digest UBIGINT, prefix_n BIGINT, prefix_digest UBIGINT, "
                    "chosen BOOLEAN"),
    "_rc_fprofile": ("symbol VARCHAR, n BIGINT, first_us BIGINT, last_us BIGINT, "
                     "null_marks BIGINT, digest UBIGINT, prefix_n BIGINT, "
                     "prefix_digest UBIGINT"),
}


def _profile_tables(con: duckdb.DuckDBPyConnection, snap: market_cache.Snapshot
                    ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """`_rc_profile`, `_rc_markets`, `_rc_fprofile` from a snapshot: the rows and types the
    SQL of `_read_market` gives for the same store. Returns the profiles' columns."""
    profiles = (market_cache.profile_rows(snap), market_cache.fprofile_rows(snap))
    for table, rows in zip(("_rc_profile", "_rc_fprofile"), profiles, strict=True):
        cols = [c.split() for c in _PROFILE_TYPES[table].split(", ")]
        data = pa.table({c: pa.array(rows[c], type=_ARROW[t]) for c, t in cols})
        sel = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in cols)
        with registered(con, "_rc_profile_rows", data) as reg:
            if table == "_rc_fprofile":
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT m.sid, f.* FROM "
                            f"(SELECT {sel} FROM {reg}) f "
                            "LEFT JOIN _rc_markets m ON m.symbol = f.symbol")
            else:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {sel} FROM {reg}")
                con.execute("CREATE OR REPLACE TEMP TABLE _rc_markets AS " + markets_sql(
                    "_rc_profile", label_sql(set(snap.chosen.values()))))
    return profiles


_ARROW = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
          "UBIGINT": pa.uint64(), "BOOLEAN": pa.bool_()}


def locate_exits(con: duckdb.DuckDBPyConnection, rel: Relations, market: Market
                 ) -> locate.Columns:
    """The priceable signals of `rel.todo` with their entry/exit bars and settlements.
    (`execute`, not `sql`: a relation binds its text twice, to describe it and to run it.)"""
    narrow = con.execute(parsed(con, narrow_sql(rel))).fetchnumpy()
    return locate.exits(narrow, market.bars, market.opens, market.settlements)


# A leg `l` to re-price (with `sm` and `mc`, `market_changes`' table, joined on its symbols;
# `market_moved`: `MarketChanges.moved`); see the module docstring.
# A leg not realized waits for market data; against the same market it would price to the same
# row. An open leg moves only when appended bars reach the bar it waits for: its entry (the
# first bar at or after its ts) or, with an entry, its exit (the first at or after entry +
# horizon; `locate.exits`); every bar it saw was before that time. An unpriced one (an unknown
# or ambiguous symbol, a market without bars of the interval, a signal before the first bar)
# is re-priced when its market gained bars, or when some market's bars changed or any funding
# did (`market_moved`: a market may have come or gone; its own changed bars or funding are
# among these). Legs priced before `bar_interval` was recorded (realized or open,
# without it) are re-priced once.
def _stale_leg(market_moved: bool) -> str:
    return f"""(l.market_symbol IS DISTINCT FROM sm.symbol
   OR mc.bars_kind = 'changed'
   OR (l.bar_interval IS NULL AND l.direction <> 'FLAT' AND l.status <> 'unpriced')
   OR (l.status = 'open' AND mc.bars_kind = 'appended'
       AND mc.last_us >= CASE WHEN l.entry_ts IS NULL THEN epoch_us(l.ts)
                              ELSE epoch_us(l.entry_ts) + {horizon_us("l.horizon_s")} END)
   OR (l.status = 'unpriced' AND (mc.bars_kind = 'appended' OR {str(market_moved).lower()}))
   OR (l.include_funding AND l.direction <> 'FLAT'
       AND (mc.funding_kind = 'changed'
            OR (mc.funding_kind = 'appended'
                AND (mc.watermark IS NULL OR l.exit_ts > mc.watermark)))))"""


def _todo_incremental_sql(mc: str, market_moved: bool) -> str:
    """Signals without a leg and those of stale legs, comparing all of `alpha` with `legs`;
    `mc`: the relation of `MarketChanges.to_arrow`."""
    return f"""
SELECT a.* FROM alpha a
LEFT JOIN legs l ON l.event_id = a.event_id
LEFT JOIN _rc_symmap sm ON sm.alias = a.symbol
LEFT JOIN {mc} mc ON mc.symbol = l.market_symbol
WHERE l.event_id IS NULL OR {_stale_leg(market_moved)}
"""


def _stale_legs_sql(mc: str, market_moved: bool, moved: Moved | None = None) -> str:
    """The legs to re-price, found in `legs` alone (event_id); `mc`, `market_moved`: as
    `_todo_incremental_sql` takes them. With `moved`, every leg is known to have been priced with
    `ledger_alpha_keys`' resolution and the market as `ledger_market_state` records it, so
    only these can be stale: legs of the symbols and aliases in `moved`, legs of the symbols
    whose funding gained settlements that exit at or after the first of them
    (`moved.funded`: a settlement at t moves only a leg with entry < t <= exit), legs not
    realized of the symbols whose market gained anything (`moved.touched`), and, when some
    market changed, the unpriced legs. With none of these (a round of events alone), no leg
    is read. The legs' `exit_ts` bound lets DuckDB skip the row groups of legs that exited
    before it (they are stored in signal order), where reading every leg of a symbol was
    ~46 ms at 1M runs, and it keeps the legs that exited between the last recorded
    settlement and the new one, which `_stale_leg` alone would price again
    (bench/RESULTS.md, "#14: new funding settlements read the legs exiting after the
    last")."""
    legs = "legs"
    if moved is not None:
        may = []
        if moved.symbols:
            may.append(f"l.market_symbol IN ({', '.join(lit(x) for x in moved.symbols)})")
        if moved.symbols or moved.funded:
            may.append("l.status = 'unpriced'")
        for symbol, first in sorted(moved.funded.items()):
            may.append(f"(l.market_symbol = {lit(symbol)}" + (
                "" if first is None else f" AND l.exit_ts >= {ts_literal(first)}") + ")")
        if moved.touched:
            may.append(f"(l.status <> 'realized' AND l.market_symbol IN "
                       f"({', '.join(lit(x) for x in moved.touched)}))")
        if moved.aliases:
            may.append(f"l.symbol IN ({', '.join(lit(x) for x in moved.aliases)})")
        # a scan per condition, not one scan with their OR: DuckDB's min/max filters skip row
        # groups only for a condition on one column, or an AND of such (UNION: a leg that
        # meets two is read once; legs have no two equal rows, their event ids differ)
        legs = f"({' UNION '.join(f'SELECT * FROM legs l WHERE {m}' for m in may or ['false'])})"
    return f"""
SELECT l.event_id, l.file_id, l.status FROM {legs} l
LEFT JOIN _rc_symmap sm ON sm.alias = l.symbol
LEFT JOIN {mc} mc ON mc.symbol = l.market_symbol
WHERE {_stale_leg(market_moved)}
"""


@dataclass(frozen=True)
class Moved:
    """What changed since the last reconcile that can make a leg stale: market symbols whose
    bars changed other than by appending or whose funding changed other than by new
    settlements (`symbols`: they can move any realized leg), those whose funding only gained
    settlements, with the first of them (`funded`, `_first_new_settlements`: they can move a
    realized leg exiting at or after it), market symbols whose bars or funding changed in any way
    (`touched`: they can move a leg not realized), and aliases that resolve differently from
    `ledger_alpha_keys` (a few, usually none)."""

    symbols: list[str]
    aliases: list[str]
    touched: list[str]
    funded: dict[str, Any] = field(default_factory=dict)


_ALIASES_MOVED = """
  SELECT n.alias FROM _rc_symmap n LEFT JOIN ledger_alpha_keys o ON o.alias = n.alias
  WHERE n.alias IS NOT NULL AND n.symbol IS DISTINCT FROM o.symbol"""


def moved(con: duckdb.DuckDBPyConnection, market: MarketChanges | None,
          aliases_held: bool = False) -> Moved:
    """`Moved` since the last reconcile. `market`: how the market moved (None: it is known to
    be the one the last reconcile recorded); `aliases_held`: `_rc_symmap` is known to be
    `ledger_alpha_keys` (`_symmap_held`), so no alias is compared."""
    aliases = [] if aliases_held else one(
        con, f"SELECT list(alias ORDER BY alias) FROM ({_ALIASES_MOVED})")[0]
    if market is None:
        return Moved([], [str(x) for x in aliases or []], [])
    funded = market.funded
    return Moved([s for s in market.symbols if s not in funded], [str(x) for x in aliases or []],
                 market.touched, _first_new_settlements(con, funded))


def _first_new_settlements(con: duckdb.DuckDBPyConnection,
                           funded: dict[str, Any]) -> dict[str, Any]:
    """Per symbol of `MarketChanges.funded` (symbol: the recorded last settlement), the first
    settlement after that one; None where none was recorded (or none is found): every leg
    of the symbol is read."""
    out: dict[str, Any] = dict.fromkeys(funded)
    after = sorted((s, w) for s, w in funded.items() if w is not None)
    if after:
        cond = " OR ".join(f"(symbol = {lit(s)} AND ts > {ts_literal(w)})" for s, w in after)
        out.update({str(s): t for s, t in con.execute(
            f"SELECT symbol, min(ts) FROM funding WHERE {cond} GROUP BY symbol").fetchall()})
    return out


def _todo_from_new_files(seen: int, stale: bool = True, oldest: int | None = None) -> str:
    """`_todo_incremental_sql` when every stored leg's signal is still there and every signal
    without a leg came from a file newer than `seen` (the last reconcile's newest file): the
    signals of the stale legs (`_rc_stale`, a table so that the join knows it is small; not
    read when there is none, `stale` False) and the new ones, read without comparing all of
    `alpha` with all of `legs`. `oldest`: a file id no newer than any stale leg's signal,
    from which they are read (with run ids in no order, a semi join over all of `alpha` was
    ~50 ms a pass at 1M runs; bench/RESULTS.md, "the held runs' delete")."""
    new = f"SELECT * FROM alpha WHERE file_id > {int(seen)}"
    if not stale:
        return new
    return (f"{new} UNION ALL SELECT * FROM {known_runs.rows_since('alpha', oldest)} "
            "SEMI JOIN _rc_stale USING (event_id)")


def newest_file_id(con: duckdb.DuckDBPyConnection) -> int:
    """The newest ingested or imported file: reconcile records it, the CLI compares against it."""
    return int(one(con, f"SELECT {newest_file_sql(con)}")[0])


def newest_file_sql(con: duckdb.DuckDBPyConnection) -> str:
    """`newest_file_id` as a scalar subquery (for queries that read it with other values)."""
    parts = ["SELECT max(file_id) AS f FROM ingested_files"]
    if has_table(con, "market_files"):
        parts.append("SELECT max(file_id) FROM market_files")
    return f"(SELECT coalesce(max(f), 0) FROM ({' UNION ALL '.join(parts)}))"


def reconcile(store: Store, cfg: ReconcileConfig, *, full: bool = False,
              step: Step | None = None, market: MarketCache | None = None,
              runs: KnownRuns | None = None) -> ReconcileReport:
    """Bring `legs` and `ledger` up to date with the events, market data and `cfg`.
    `market`: the market as the last reconcile of this caller left it (`prepare_market`);
    `runs`: the runs its ledger held (`known_runs`). Both are updated when this one commits
    and dropped when it fails."""
    kept = [k for k in (market, runs) if k is not None]
    try:
        report = _reconcile(store, cfg, full, step or (lambda _msg: None), market, runs)
    except BaseException:
        for k in kept:
            k.drop()
        raise
    for k in kept:
        k.commit()
    return report


# The market symbols (those of bars and funding), from the profiles `prepare_market` made:
# one row per series, where `market.symbols.MARKET_SYMBOLS` scans every bar.
_MARKET_SYMBOLS = "(SELECT symbol FROM _rc_profile UNION SELECT symbol FROM _rc_fprofile)"


def _reconcile(store: Store, cfg: ReconcileConfig, full: bool, say: Step,
               cache: MarketCache | None, known: KnownRuns | None) -> ReconcileReport:
    con = store.con
    with store.transaction(), catalog_cached(con):
        last = last_state(con)
        if known is not None and (last is None or not last.current):
            known.drop()  # the ledger was written other than by a reconcile: read it again
        # with the market's counts when it is brought up from the cache (`advanced`)
        facts = _facts(con, last, market=cache is not None and not full)
        snap = (advanced(con, cfg, cache, last, facts.market)
                if cache is not None and facts.market is not None else None)
        if (snap is not None and cache is not None and cache.snapshot is not None
                and last is not None and _telemetry_only(cfg, last, facts, cache.snapshot, snap)):
            # the new telemetry's runs, to tell whether the ledger holds any (`known`)
            new_h = np.empty(0, dtype=np.uint64)
            if known is not None:
                if not known.current(last.seq):
                    known.read(con, last.seq)
                new_h = con.execute(f"SELECT hash(run_id) AS h FROM telemetry WHERE "
                                    f"file_id > {int(last.seen)}").fetchnumpy()["h"]
            # those it holds: their rows' ts span and a file no newer than their rows
            held, since = (known.find(new_h) if known is not None
                           else (np.ones(0, dtype=bool), 0))
            span = known.span(new_h[held]) if known is not None and held.any() else None
            done = _telemetry_pass(con, cfg, last, facts,
                                   known is not None and not held.any(), span, since)
            if done is not None:
                report, seq, written = done
                if known is not None:  # the runs it wrote, each with its row's ts
                    known.stage(seq, written["h"], int(last.seen) + 1, written["t"])
                cache.kinds.append("same")
                cache.delta_reads += 1
                cache.pending = replace(snap, left_by=_left_by(seq, cfg, facts))
                return report
        say("profiling market data")
        market = prepare_market(con, cfg, cache, snap)
        rel = Relations()
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_params AS {params_sql(cfg.policy)}")
        # Legs priced by other pricing code (e.g. fingerprints of an older form) are re-priced.
        full = full or _policy_changed(con, cfg.hash, last) or _built_by_other_code(facts)
        seen = None if full else _legs_match_old_signals(con, last, facts)
        # the last reconcile's keys cover every event of the files it saw: read only new ones
        keyed = seen is not None and last is not None and last.current
        own = _last_own(cfg, last, facts, cache, snap)
        # the market is the last reconcile's (it recorded it): only aliases can move
        same = (own is not None and snap is not None and (
            own.bars_mark, own.funding_mark) == (snap.bars_mark, snap.funding_mark))
        alpha_held = keyed and _alpha_keys_hold(facts, same)
        symmap = _symmap_held(facts, own) if keyed and not alpha_held else None
        symmap_held = symmap is not None  # `_rc_symmap` is `ledger_alpha_keys`
        if alpha_held:
            n_symmap = facts.alpha_keys
        elif symmap is not None:
            with registered(con, "_rc_symmap_rows", symmap) as rows:
                n_symmap = one(con, f"CREATE OR REPLACE TEMP TABLE _rc_symmap AS "
                                    f"SELECT * FROM {rows}")[0]
        else:
            n_symmap = one(con, "CREATE OR REPLACE TEMP TABLE _rc_symmap AS " + resolution_sql(
                _symbols("alpha", "ledger_alpha_keys", seen if keyed else None), cfg.aliases,
                _MARKET_SYMBOLS))[0]
            if cache is not None:
                symmap = query_table(con, "SELECT * FROM _rc_symmap")
        counted = (_events_counted(last, facts) if not full and last is not None and last.current
                   else None)
        pnl_seen = seen if keyed and counted else None
        pnl_keys = PnlKeys(pnl_seen is not None and _pnl_keys_hold(facts, own),
                           pnl_seen is not None)
        if not pnl_keys.held:
            pnl_symbols = _symbols("pnl", "ledger_pnl_keys", pnl_seen)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {pnl_keys.table} AS " + pnl_keys_sql(
                f"({resolution_sql(pnl_symbols, cfg.aliases, _MARKET_SYMBOLS)})"))
        say("selecting signals to price")
        keys_moved = True  # whether `ledger_alpha_keys` may differ from `_rc_symmap`
        gone = 0
        # the legs this pass deletes, by status, when known (None: `_log_sql` counts them)
        removed: LegTally | None = None
        if full:
            con.execute("DELETE FROM legs")
            rel = replace(rel, todo="alpha")
        else:
            if seen is not None:  # the usual case: signals were only added, by ingest
                # the market is the one the last reconcile recorded (`same`): none moved
                mc = None if same else market_changes(con, market)
                mv = (Moved([], [], []) if alpha_held  # no `_rc_symmap` to compare
                      else moved(con, mc, symmap_held) if keyed else None)
                # the keys were read whole into `_rc_symmap`: as many rows, none moved, same
                keys_moved = not (mv is not None and not mv.aliases
                                  and n_symmap == facts.alpha_keys)
                stale = mv is None or bool(mv.symbols or mv.touched or mv.aliases or mv.funded)
                n_stale = 0
                if stale:
                    mc = mc or market_changes(con, market)
                    with registered(con, "_rc_market_changes", mc.to_arrow()) as t:
                        n_stale = one(con, "CREATE OR REPLACE TEMP TABLE _rc_stale AS "
                                      + _stale_legs_sql(t, mc.moved, mv))[0]
                # else no leg can be stale (`_stale_legs_sql`): none is read
                # the oldest file of the stale legs (None: one has none), which is their
                # signals' (a leg keeps its signal's file id): their signals and the legs are
                # read from there on, which DuckDB's min/max filters prune
                oldest, removed = None, LegTally()
                if n_stale:
                    oldest, o, u = one(con, "SELECT CASE WHEN count(*) = count(file_id) THEN "
                                            "min(file_id) END, count(*) FILTER (status = "
                                            "'open'), count(*) FILTER (status = 'unpriced') "
                                            "FROM _rc_stale")
                    removed = LegTally(n_stale, int(o), int(u))
                todo = one(con, "CREATE OR REPLACE TEMP TABLE _rc_todo AS "
                                + _todo_from_new_files(seen, n_stale > 0, oldest))[0]
                # a new file's signal has no leg yet (the old ones number the legs): only
                # stale legs are deleted, none older than the oldest of their files (when
                # all have one), and none when there are none
                if n_stale:
                    con.execute("DELETE FROM legs WHERE "
                                + ("" if oldest is None else f"file_id >= {int(oldest)} AND ")
                                + "event_id IN (SELECT event_id FROM _rc_stale)")
            else:
                mc = market_changes(con, market)
                with registered(con, "_rc_market_changes", mc.to_arrow()) as t:
                    todo = one(con, "CREATE OR REPLACE TEMP TABLE _rc_todo AS "
                                    + _todo_incremental_sql(t, mc.moved))[0]
                gone = one(con, "CREATE OR REPLACE TEMP TABLE _rc_gone AS "
                                "SELECT event_id, run_id FROM legs ANTI JOIN alpha "
                                "USING (event_id)")[0]
                if todo or gone:
                    con.execute("DELETE FROM legs WHERE event_id IN (SELECT event_id FROM "
                                "_rc_todo " + ("UNION ALL SELECT event_id FROM _rc_gone)"
                                               if gone else ")"))
        # CREATE TABLE AS answers with its row count: `_rc_todo` is not counted again
        priced = int(one(con, "SELECT count(*) FROM alpha")[0] if full else todo)
        inserted: pa.Table | None = None  # the legs priced now, as stored
        added = LegTally()
        if priced:  # nothing new and nothing stale: no pricing at all
            say(f"pricing {priced:,} legs")
            cols = ", ".join(LEG_COLUMNS)
            with registered(con, "_rc_exits",
                            locate.as_arrow(locate_exits(con, rel, market))) as exits:
                con.execute(parsed(con, priced_legs_sql(rel, cfg.hash, cfg.bar_interval_s,
                                                        exits)))
                legs = with_fingerprints(to_arrow(con, _BATCH))
            added = LegTally.of(legs.column("status"))
            with registered(con, "_rc_new_legs", legs) as new:
                con.execute(parsed(con, f"INSERT INTO legs ({cols}) SELECT {cols} FROM {new}"))
            if known is not None:
                inserted = _as_stored(legs, table_columns(con, "legs"))
        say("building the ledger")
        changed = (None if full else
                   changed_runs(con, cfg.hash, last, counted, facts.built, bool(gone), pnl_keys))
        # read with `last` in this transaction, which has recorded no change since
        seq = last.next_seq if last is not None else changes.next_seq(con)
        split = None
        if known is not None and last is not None and changed is not None:
            if changed:
                split = known_runs.split(con, known, last.seq, seq, last.seen)
            else:  # no ledger row changes: a pass with little to do reads the set it lacks
                # (the first after a start), so the next round's pass need not
                if not known.current(last.seq):
                    known.read(con, last.seq)
                known.stage(seq, np.empty(0, dtype=np.uint64), 0)
        rebuilt, recorded, removed_rows = _build_ledger(con, cfg.hash, changed,
                                          last is not None and last.current, seq, pnl_keys,
                                          split, inserted, known)
        state = _save_state(con, facts.built, keyed and not keys_moved, keyed, pnl_keys)
        if cache is not None and cache.pending is not None:
            # no new signal and the keys held (`alpha_held`): the last pass's resolution stays
            cache.pending = replace(cache.pending, state=state,
                                    left_by=_left_by(seq, cfg, facts),
                                    symmap=cache.pending.symmap if alpha_held else symmap)
        if removed is not None and last is not None and last.current:
            # every leg deleted and added is known, and every ledger row: counted from the
            # last record, not read (in the pass's transaction the status counts read every
            # leg: ~5 ms at 1M runs once legs are deleted; bench/RESULTS.md, 2026-12-07)
            legs, realized, open_, unpriced = last.tally.after(removed, added)
            runs = (rebuilt if removed_rows is None
                    else last.runs - removed_rows + rebuilt)
            _log(con, seq, cfg.hash, priced, (legs, realized, open_, unpriced), runs, facts)
        else:
            legs, realized, open_, unpriced, runs = one(con, parsed(con, _log_sql(con)),
                                                        [seq, cfg.hash, priced])
        report = ReconcileReport(legs, realized, open_, unpriced, priced, runs, cfg.hash, full,
                                 rebuilt, recorded)
        con.execute("; ".join(f"DROP TABLE IF EXISTS {t}" for t in _TEMP))
    return report


def _as_stored(legs: pa.Table, columns: list[str]) -> pa.Table:
    """Priced legs (`with_fingerprints`) as `legs` stores them: in the table's column order
    (`columns`; a reader may append them to rows read from it, `_source_rows_sql`) and the
    fingerprint, an int64 ≥ 0 (`fingerprint.fingerprints`), as its UBIGINT. What the
    `INSERT`'s `RETURNING *` gave, without reading them back (~1.5 ms of a live pass at 1M
    runs; bench/RESULTS.md, "#14's 1M round: a catch-up's points in numpy")."""
    t = legs.select(columns)
    i = t.schema.get_field_index("fingerprint")
    return t.set_column(i, "fingerprint", t.column(i).cast(pa.uint64()))


def _last_own(cfg: ReconcileConfig, last: LastState | None, facts: Facts,
              cache: MarketCache | None, snap: market_cache.Snapshot | None
              ) -> market_cache.Snapshot | None:
    """The market of the last reconcile when that reconcile was this caller's (its snapshot,
    `left_by`: same policy, aliases and `symbol_aliases`, no reconcile since) and this pass's
    market is that one plus appended rows (`snap`, brought up to the store: a new series, a
    deleted or corrected row, means a full read and no `snap`). None otherwise."""
    before = cache.snapshot if cache is not None else None
    if (before is None or snap is None or last is None
            or before.left_by != _left_by(last.seq, cfg, facts)):
        return None
    return before


@dataclass(frozen=True)
class PnlKeys:
    """This pass's pnl symbols' keys, as `changed_runs`, `_build_ledger` and `_save_state`
    read them: `held` when the stored ones are this pass's (`_pnl_keys_hold`: none is
    resolved, compared or written), else resolved into `_rc_pnlkeys`, from the stored keys
    and the new files' symbols (`seen`, `_symbols`) or from every pnl event."""

    held: bool = False
    seen: bool = False

    @property
    def table(self) -> str:
        """Where this pass's keys are."""
        return "ledger_pnl_keys" if self.held else "_rc_pnlkeys"


def _pnl_keys_hold(facts: Facts, before: market_cache.Snapshot | None) -> bool:
    """Whether the stored pnl keys (`ledger_pnl_keys`) are this pass's, so no pnl symbol need
    be resolved (~7 ms a pass to plan and write): every new pnl event spells its symbol as
    one stored (`Facts.pnl_unkeyed`; an execution system repeats a few symbols, or sends
    none), and resolution reads what the last reconcile resolved them with (`before`,
    `_last_own`: the same aliases and market symbols). Called when those keys cover every pnl
    event of the files it saw (`_symbols`' `seen`)."""
    return before is not None and facts.pnl_unkeyed == 0


def _symmap_held(facts: Facts, before: market_cache.Snapshot | None) -> pa.Table | None:
    """The last pass's `_rc_symmap` (kept in its snapshot, `before`), when it is this pass's,
    so no signal symbol need be resolved (~7 ms a pass at 1M runs to plan and run): the last
    reconcile was this caller's, with the same aliases and market symbols (`_last_own`: a new
    series means no snapshot), so each alias it resolved resolves the same way
    (`market.symbols.resolution_sql` resolves each alias alone), and every new signal spells
    its symbol as one of them (`Facts.alpha_unkeyed`; it resolved the stored keys and wrote
    them, so they are its aliases: as many rows). Called when those keys cover every signal
    of the files it saw (`_symbols`' `seen`); the pnl keys' rule is `_pnl_keys_hold`."""
    if before is None or before.symmap is None or facts.alpha_unkeyed != 0:
        return None
    return before.symmap if before.symmap.num_rows == facts.alpha_keys else None


def _alpha_keys_hold(facts: Facts, market_same: bool) -> bool:
    """Whether the stored signal keys (`ledger_alpha_keys`) are this pass's and no leg can be
    stale, so `_rc_symmap` need not be resolved (~12 ms a pass to plan and run) and nothing is
    priced: no signal is new, and `market_same`: the last reconcile was this caller's, with
    the same aliases and market symbols (`_last_own`), and the market is the one it priced
    against (no bar or funding row since: `_stale_legs_sql` would find no leg). Called when
    those keys cover every signal of the files it saw (`_symbols`' `seen`); the pnl keys'
    rule is `_pnl_keys_hold`."""
    return market_same and facts.counts is not None and facts.counts["alpha"][1] == 0


def _left_by(seq: int, cfg: ReconcileConfig, facts: Facts) -> tuple[object, ...]:
    """`market_cache.Snapshot.left_by` of reconcile `seq` run with `cfg` on a store whose
    `symbol_aliases` were `facts.aliases`: what symbol resolution depends on besides the
    market and the events."""
    return (seq, cfg.hash, tuple(sorted(cfg.aliases.items())), facts.aliases)


def _telemetry_only(cfg: ReconcileConfig, last: LastState, facts: Facts,
                    before: market_cache.Snapshot, snap: market_cache.Snapshot) -> bool:
    """Whether telemetry is all that changed since the last reconcile, so a pass needs only
    the rows of its runs (`ledger.telemetry_pass`): that reconcile was this caller's with the
    same policy and aliases (`snap.left_by`), with this version of the code, and what it
    recorded still describes the store (`last.current`); no signal or pnl event is new and
    none it counted is gone (the tables number what it recorded); the market is the one it
    priced against (`snap`, the cache's snapshot `before` brought up to the store, gained
    no row; `advanced` checked the corrections and `ledger_market_state`). Pricing again
    would then give every leg it left, open and unpriced ones too, and resolve every symbol
    as it did."""
    if (before.left_by is None or before.left_by != _left_by(last.seq, cfg, facts)
            or not last.current or facts.built != [ledger_definition()]
            or facts.counts is None or (snap.bars_mark, snap.funding_mark)
            != (before.bars_mark, before.funding_mark)):
        return False
    (alpha, alpha_new), (pnl, pnl_new) = facts.counts["alpha"], facts.counts["pnl"]
    tel, tel_new = facts.counts["telemetry"]
    return (alpha_new == 0 and alpha == last.legs and pnl_new == 0 and pnl == last.n_pnl
            and tel_new > 0 and tel == (last.n_telemetry or 0) + tel_new
            and last.n_telemetry is not None)


def _telemetry_pass(con: duckdb.DuckDBPyConnection, cfg: ReconcileConfig, last: LastState,
                    facts: Facts, all_new: bool = False, span: tuple[int, int] | None = None,
                    since: int = 0
                    ) -> tuple[ReconcileReport, int, dict[str, np.ndarray]] | None:
    """The reconcile of a round of telemetry alone (`_telemetry_only` held), and its seq: the
    ledger rows of its runs (`telemetry_pass.build`) and the `reconcile_log` row, the legs
    and every recorded state left as they are. None (nothing written): a run of that telemetry
    has a leg or a pnl event; the full pass runs. `all_new`: no run of that telemetry is in
    the ledger (`known_runs`); `span`, `since`: as `telemetry_pass.build` takes them. Also
    returns the rows' hashes and times (`telemetry_pass.build`)."""
    assert facts.counts is not None
    built = telemetry_pass.build(con, cfg.hash, last.seen, all_new, span, since)
    if built is None:
        return None
    rebuilt, grown, written = built
    realized, open_, unpriced = last.counts
    runs = last.runs + grown
    seq = last.next_seq  # read in this transaction, which wrote no change since
    _log(con, seq, cfg.hash, 0, (last.legs, realized, open_, unpriced), runs, facts)
    return (ReconcileReport(last.legs, realized, open_, unpriced, 0, runs, cfg.hash, False,
                            rebuilt), seq, written)


@dataclass(frozen=True)
class LegTally:
    """Legs by status, as `reconcile_log` counts them: all, open and unpriced; the rest are
    realized (`_log_sql`)."""

    legs: int = 0
    open: int = 0
    unpriced: int = 0

    @classmethod
    def of(cls, status: pa.ChunkedArray | pa.Array) -> LegTally:
        """The tally of legs with these statuses."""
        counts = {str(v["values"]): int(v["counts"])
                  for v in pc.value_counts(status).to_pylist()}
        return cls(len(status), counts.get("open", 0), counts.get("unpriced", 0))

    def after(self, removed: LegTally, added: LegTally) -> tuple[int, int, int, int]:
        """Legs, realized, open and unpriced once `removed` are deleted and `added` inserted."""
        legs = self.legs - removed.legs + added.legs
        open_ = self.open - removed.open + added.open
        unpriced = self.unpriced - removed.unpriced + added.unpriced
        return legs, legs - open_ - unpriced, open_, unpriced


def _log(con: duckdb.DuckDBPyConnection, seq: int, policy_hash: str, priced: int,
         legs: tuple[int, int, int, int], runs: int, facts: Facts) -> None:
    """The `reconcile_log` row of a pass whose counts are known without reading the tables:
    `legs` (all, realized, open, unpriced), the ledger's `runs`, and the events' rows and
    newest file as `facts` read them in this transaction (a reconcile writes no event)."""
    assert facts.counts is not None
    con.execute("INSERT INTO reconcile_log (seq, policy_hash, legs, priced, realized, open, "
                "unpriced, runs, max_file_id, reconciled_at, n_telemetry, n_pnl) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP, ?, ?)",
                [seq, policy_hash, legs[0], priced, *legs[1:], runs, facts.newest,
                 facts.counts["telemetry"][0], facts.counts["pnl"][0]])


def _log_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The `reconcile_log` row of this reconcile (parameters: its seq, `changes.next_seq`
    read before its changes were recorded; policy hash, legs priced), with
    the counts of the report: one statement, the counts read where they are written."""
    pending = "(SELECT count(*) FROM legs WHERE status = '{}')"
    return f"""
INSERT INTO reconcile_log (seq, policy_hash, legs, priced, realized, open, unpriced, runs,
                           max_file_id, reconciled_at, n_telemetry, n_pnl)
SELECT ?, ?, n_legs, ?,
       n_legs - n_open - n_unpriced, n_open, n_unpriced, (SELECT count(*) FROM ledger),
       {newest_file_sql(con)}, current_timestamp::TIMESTAMP,
       (SELECT count(*) FROM telemetry), (SELECT count(*) FROM pnl)
FROM (SELECT (SELECT count(*) FROM legs) AS n_legs, {pending.format('open')} AS n_open,
             {pending.format('unpriced')} AS n_unpriced)
RETURNING legs, realized, open, unpriced, runs"""


@dataclass(frozen=True)
class LastState:
    """The last reconcile's `reconcile_log` row, and whether it still describes the store."""

    policy_hash: str
    legs: int
    runs: int
    seen: int                 # the newest file it saw
    n_telemetry: int | None   # telemetry rows then (None: written before migration 0016)
    n_pnl: int | None
    current: bool             # written by this version; legs and ledger rows still number legs, runs
    seq: int = 0
    counts: tuple[int, int, int] = (0, 0, 0)  # its legs realized, open, unpriced
    next_seq: int = 0         # `changes.next_seq` when it was read

    @property
    def tally(self) -> LegTally:
        """Its legs by status."""
        return LegTally(self.legs, self.counts[1], self.counts[2])


def last_state(con: duckdb.DuckDBPyConnection) -> LastState | None:
    """The last reconcile's state (None before the first). `current` says whether what it
    recorded can stand in for counting the tables: it recorded the 0016 state, and nothing
    has added or removed legs or ledger rows since (only reconcile writes them)."""
    rows = con.execute(
        "SELECT policy_hash, legs, runs, max_file_id, n_telemetry, n_pnl, "
        "(SELECT count(*) FROM legs), (SELECT count(*) FROM ledger), "
        "realized, open, unpriced, seq, (SELECT coalesce(max(seq), 0) FROM ledger_changes) "
        "FROM reconcile_log ORDER BY seq DESC LIMIT 1").fetchall()
    if not rows:
        return None
    (ph, legs, runs, seen, n_tel, n_pnl, legs_now, runs_now, realized, open_, unpriced, seq,
     changed) = rows[0]
    current = n_tel is not None and n_pnl is not None and (legs, runs) == (legs_now, runs_now)
    return LastState(str(ph), int(legs or 0), int(runs or 0), int(seen or 0),
                     None if n_tel is None else int(n_tel), None if n_pnl is None else int(n_pnl),
                     current, int(seq),
                     (int(realized or 0), int(open_ or 0), int(unpriced or 0)),
                     max(int(seq), int(changed)) + 1)


def _policy_changed(con: duckdb.DuckDBPyConnection, policy_hash: str,
                    last: LastState | None) -> bool:
    """Whether some leg was priced under another policy: after a reconcile every leg carries
    its policy, so the last one's record answers when it still describes the legs."""
    if last is not None and last.current:
        return last.policy_hash != policy_hash
    return bool(one(con, "SELECT count(*) FROM legs WHERE policy_hash <> ?", [policy_hash])[0])


def _symbols(table: str, keys: str, seen: int | None) -> str:
    """The distinct symbols `table`'s events spell, as a relation with a `symbol` column: all
    of them (`seen` None), or the ones stored in `keys` (the last reconcile's, which covered
    every event of files up to `seen`) and those of newer files."""
    if seen is None:
        return f"(SELECT DISTINCT symbol FROM {table})"
    return (f"(SELECT alias AS symbol FROM {keys} UNION "
            f"SELECT DISTINCT symbol FROM {table} WHERE file_id > {int(seen)})")


@dataclass(frozen=True)
class Facts:
    """What a reconcile compares with the last one's state, read in one query: the ledger's
    recorded definition(s), whether any leg is stored, and per event table (alpha, telemetry,
    pnl) its rows and those of files newer than the last reconcile's newest (None before the
    first reconcile)."""

    built: list[str]
    has_legs: bool
    alpha_keys: int   # rows of ledger_alpha_keys
    counts: dict[str, tuple[int, int]] | None
    newest: int = 0   # `newest_file_id`
    aliases: tuple[int, ...] = ()  # `symbol_aliases`' rows and their digest
    # pnl events of files newer than the last reconcile's newest with a symbol that is no
    # alias of `ledger_pnl_keys` (None before the first reconcile): `_pnl_keys_hold`.
    # No symbol needs no key (`market.symbols.resolution_sql` resolves none).
    pnl_unkeyed: int | None = None
    # the same for signals and `ledger_alpha_keys`: `_symmap_held`
    alpha_unkeyed: int | None = None
    # rows of bars and funding, and the corrections market imports made (`advanced`)
    market: tuple[int, int, int] | None = None


_EVENT_TABLES = ("alpha", "telemetry", "pnl")


def _facts(con: duckdb.DuckDBPyConnection, last: LastState | None,
           market: bool = False) -> Facts:
    """One statement: a UNION ALL of one-row parts (a row of cross-joined scalar subqueries
    costs DuckDB's join ordering several times the CPU once there are eight of them).
    `market`: with the counts `advanced` compares (`Facts.market`)."""
    nothing = "CAST(NULL AS VARCHAR[])"
    parts = ["SELECT 0 AS k, CAST(NULL AS BIGINT[]) AS v, list(definition) AS d "
             "FROM ledger_build",
             f"SELECT 1, [count(*)], {nothing} FROM (SELECT 1 FROM legs LIMIT 1)",
             f"SELECT 2, [count(*)], {nothing} FROM ledger_alpha_keys",
             f"SELECT 3, [{newest_file_sql(con)}], {nothing}"]
    if has_table(con, "symbol_aliases"):
        parts.append(f"SELECT 4, [count(*), CAST(coalesce(bit_xor(hash(alias, symbol)), 0) >> 1 "
                     f"AS BIGINT)], {nothing} FROM symbol_aliases")
    if last is not None:
        # the rows of newer files in a part of their own: a `WHERE` on file_id skips the row
        # groups of older files by their min/max (rows are stored in file order), where a
        # `count(*) FILTER` beside the total read every row's file_id (~1.5 ms a pass at 1M
        # runs, growing with the store); a bare `count(*)` is read from the table's metadata.
        # They are summed, not `count(*)`ed: inside a pass, DuckDB's statistics propagation
        # (the optimizer step, by its profile) spent ~1.5 ms on each filtered `count(*)` of a
        # 1M-row table and ~0.1 ms on a `sum(1)` of the same rows (bench/RESULTS.md, "#14:
        # the newer files' rows summed, not counted")
        parts += [f"SELECT {5 + i}, [count(*)], {nothing} FROM {t}"
                  for i, t in enumerate(_EVENT_TABLES)]
        parts += [f"SELECT {15 + i}, [CAST(coalesce(sum(1), 0) AS BIGINT)], {nothing} FROM {t} "
                  f"WHERE file_id > {int(last.seen)}" for i, t in enumerate(_EVENT_TABLES)]
        parts += [f"SELECT {k}, [count(*)], {nothing} FROM {t} e WHERE file_id > "
                  f"{int(last.seen)} AND symbol IS NOT NULL AND NOT EXISTS "
                  f"(SELECT 1 FROM {keys} k WHERE k.alias = e.symbol)"
                  for k, t, keys in ((8, "pnl", "ledger_pnl_keys"),
                                     (9, "alpha", "ledger_alpha_keys"))]
    if market:
        parts += [f"SELECT {10 + i}, [count(*)], {nothing} FROM {t}"
                  for i, t in enumerate(("bars", "funding"))]
        parts.append(f"SELECT 12, [CAST({_corrections_sql(con)} AS BIGINT)], {nothing}")
    got = {int(k): (v, d) for k, v, d in con.execute(" UNION ALL ".join(parts)).fetchall()}
    counts = (None if last is None else
              {t: (int(got[5 + i][0][0]), int(got[15 + i][0][0]))
               for i, t in enumerate(_EVENT_TABLES)})
    return Facts([str(x) for x in got[0][1] or []], bool(got[1][0][0]), int(got[2][0][0]),
                 counts, int(got[3][0][0]),
                 tuple(int(x) for x in got[4][0]) if 4 in got else (0, 0),
                 int(got[8][0][0]) if 8 in got else None,
                 int(got[9][0][0]) if 9 in got else None,
                 (int(got[10][0][0]), int(got[11][0][0]), int(got[12][0][0])) if market
                 else None)


def _legs_match_old_signals(con: duckdb.DuckDBPyConnection, last: LastState | None,
                            facts: Facts) -> int | None:
    """The last reconcile's newest file, when the signals of files up to it number exactly
    the stored legs (each of those signals got one leg then): nothing was removed or written
    other than by ingest since. None otherwise: the full comparison of `alpha` and `legs`."""
    if last is None or facts.counts is None:
        return None
    total, new = facts.counts["alpha"]
    legs = last.legs if last.current else one(con, "SELECT count(*) FROM legs")[0]
    return last.seen if total == int(legs) + new else None


def _events_counted(last: LastState, facts: Facts) -> bool:
    """Whether the telemetry and pnl rows of files up to the last reconcile's newest still
    number what it recorded (every one of them is counted in the ledger): nothing was removed
    or written other than by ingest since."""
    assert facts.counts is not None
    for table, then in (("telemetry", last.n_telemetry), ("pnl", last.n_pnl)):
        total, new = facts.counts[table]
        if total != int(then or 0) + new:
            return False
    return True


@functools.cache
def ledger_definition() -> str:
    """A hash of the code that prices legs and builds the ledger (their SQL, the fingerprint's
    fields): another version of it means a full re-price and rebuild."""
    pricing = f"{priced_legs_sql(Relations(), 'policy', None, 'exits')}\n{FIELDS}"
    text = (f"{LEDGER_COLUMNS}\n{ledger_sql('policy', runs='runs')}\n{pricing}\n"
            f"{telemetry_only_sql('policy', 'rows')}")
    return hashlib.sha256(text.encode()).hexdigest()


def _built_by_other_code(facts: Facts) -> bool:
    """Whether there are stored legs and they were priced by a version of the code other than
    this one (or by one from before `ledger_build` recorded it)."""
    return facts.built != [ledger_definition()] and facts.has_legs


def _key_changes_sql(pnl_keys: str) -> str:
    """The runs of pnl events whose symbol `pnl_keys` keys otherwise than `ledger_pnl_keys`."""
    return f"""UNION ALL SELECT run_id FROM pnl SEMI JOIN (
  SELECT coalesce(n.alias, o.alias) AS alias FROM {pnl_keys} n
  FULL JOIN ledger_pnl_keys o ON o.alias = n.alias
  WHERE n.key IS DISTINCT FROM o.key) k ON k.alias = pnl.symbol"""


def changed_runs(con: duckdb.DuckDBPyConnection, policy_hash: str, last: LastState | None,
                 counted: bool | None, built: list[str], gone: bool = True,
                 pnl_keys: PnlKeys = PnlKeys()) -> int | None:
    """How many runs' ledger rows must be rebuilt, listed in the temp table `_rc_runs`, or None
    when the whole ledger must be (see the module docstring). Runs inside the reconcile's
    transaction, after the legs were priced (`_rc_todo`, `_rc_gone`). `counted`: whether
    `_events_counted` held (None: the last reconcile recorded no counts, so they are compared
    with the ledger's). `built`: the definitions `ledger_build` holds; `gone`: whether
    `_rc_gone` has rows (else it is not read, and need not exist); `pnl_keys`: this pass's
    pnl keys, compared with the stored ones unless held."""
    if last is None:
        return None
    if built != [ledger_definition()]:
        return None
    seen = last.seen
    if last.current:
        if last.policy_hash != policy_hash:
            return None
    elif one(con, "SELECT count(*) FROM ledger WHERE policy_hash IS DISTINCT FROM ?",
             [policy_hash])[0]:
        return None
    if counted is False:
        return None
    if counted is None:
        # Every event of a file the last reconcile saw is counted in the ledger; the rest are
        # new. Anything else (a removed event, a row not written by ingest) rebuilds everything.
        for table, column in (("telemetry", "n_telemetry"), ("pnl", "n_pnl")):
            total, new = one(con, f"SELECT count(*), count(*) FILTER (WHERE file_id > ?) "
                                  f"FROM {table}", [seen])
            counted_then = one(con, f"SELECT coalesce(sum({column}), 0) FROM ledger")[0]
            if int(total) != int(counted_then) + int(new):
                return None
    return int(one(con, f"""
CREATE OR REPLACE TEMP TABLE _rc_runs AS
SELECT DISTINCT run_id FROM (
  SELECT run_id FROM _rc_todo
  {"UNION ALL SELECT run_id FROM _rc_gone" if gone else ""}
  UNION ALL SELECT run_id FROM telemetry WHERE file_id > {seen}
  UNION ALL SELECT run_id FROM pnl WHERE file_id > {seen}
  UNION ALL SELECT run_id FROM alpha WHERE file_id > {seen}
  {"" if pnl_keys.held else _key_changes_sql(pnl_keys.table)}
)""")[0])


def _subjects_sql(rows: str) -> str:
    """The agents and strategy classes with a realized run among the ledger rows `rows`, each
    with how many of those runs governance may count (realized, with a ts) and the earliest
    knowledge time among them (counted at `coalesce(known_ts, ts)`, as
    `governance.runs.eligible_where` reads the ledger): `ledger_subjects` (migration 0029)."""
    return " UNION ALL ".join(
        f"SELECT '{scope}' AS scope, {scope} AS subject, "
        f"min(coalesce(known_ts, ts)) FILTER (WHERE ts IS NOT NULL) AS first_known, "
        f"count(*) FILTER (WHERE ts IS NOT NULL) AS runs "
        f"FROM {rows} WHERE realized_pnl_bps IS NOT NULL AND {scope} IS NOT NULL "
        f"GROUP BY {scope}"
        for scope in ("agent", "strategy"))


def _subject_changes_sql(new: str, old: str | None) -> str:
    """What the rows `new` that replaced the rows `old` (None: none) change in each subject's
    `ledger_subjects` row: its runs added less those removed, and its new rows' earliest
    knowledge time."""
    if old is None:
        return _subjects_sql(new)
    return (f"SELECT scope, subject, min(first_known) AS first_known, sum(runs) AS runs FROM "
            f"({_subjects_sql(new)} UNION ALL SELECT scope, subject, NULL, -runs FROM "
            f"({_subjects_sql(old)})) GROUP BY scope, subject")


# An incremental pass adds the subjects of the rows it built, counts their runs in and out,
# and lowers their `first_known`, never raises it: it sees only those rows, not whether a
# subject's earliest run moved later or left, so the stored time stays a lower bound, which is
# what the window read needs (`governance.replay.window_runs`). A full rebuild writes the
# exact times.
_ADD_SUBJECTS = ("INSERT INTO ledger_subjects (scope, subject, first_known, runs) {rows} "
                 "ON CONFLICT DO UPDATE SET runs = runs + excluded.runs, "
                 "first_known = least(first_known, excluded.first_known)")


def _source_rows_sql(name: str, table: str, split: known_runs.Split | None,
                     inserted: str | None) -> str:
    """The rows of the `SOURCES` table `table` of the changed runs (`_rc_runs`): with `split`,
    those of the held runs read from the table, and those of the runs new to the ledger from
    this pass's priced legs (`inserted`, None: none were) or the newer files' events."""
    if split is None:
        return runs_rows_sql(table, "_rc_runs")
    # the held runs' rows: in files `split.since` or newer (every source table has `file_id`)
    held = known_runs.rows_since(table, split.since)
    parts = [runs_rows_sql(held, "_rc_held")] if split.held else []
    new = (inserted if name == "leg" else
           f"(SELECT * FROM {table} WHERE file_id > {int(split.seen)})")
    if new is not None:
        # with no held run every changed run is fresh, and `_rc_runs` has the run of each of
        # these rows (`changed_runs` reads them): the join would keep all but a NULL run_id's
        parts.append(f"SELECT * FROM {new} SEMI JOIN {split.fresh()} USING (run_id)"
                     if split.held else f"SELECT * FROM {new} WHERE run_id IS NOT NULL")
    return " UNION ALL ".join(parts) or f"SELECT * FROM {table} LIMIT 0"


def _build_ledger(con: duckdb.DuckDBPyConnection, policy_hash: str, changed: int | None,
                  add_subjects: bool, seq: int, pnl_keys: PnlKeys = PnlKeys(),
                  split: known_runs.Split | None = None, inserted: pa.Table | None = None,
                  known: KnownRuns | None = None) -> tuple[int, int, int | None]:
    """Rebuild the ledger rows of the `changed` runs of `_rc_runs` (None: every row), record
    in `ledger_changes` (as reconcile `seq`) the runs whose row was added, now differs in some
    column or left the ledger (`changes.record`), and keep `ledger_subjects` up to date: with
    `add_subjects` (it was up to date before), the rebuilt and replaced rows counted in and
    out (`_ADD_SUBJECTS`), else found again in the whole ledger. `pnl_keys`: the pnl symbols'
    keys of this pass. `split`: which changed runs the ledger holds (`known_runs`; None: any
    may), `inserted` the legs priced now (as `legs` stores them). Returns the number of rows
    built, of changes recorded and of rows deleted (None: the whole ledger was rebuilt)."""
    lcols = ", ".join(LEDGER_COLUMNS)
    if changed is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_built AS SELECT {lcols} FROM "
                    f"({ledger_sql(policy_hash, pnl_keys.table)})")
        recorded = changes.record(con, seq, "_rc_built", f"(SELECT {lcols} FROM ledger)")
        con.execute("DELETE FROM ledger")
        # in `ts` order, which lets the deletes of later passes skip row groups
        # (`known_runs.ts_within`)
        rebuilt = int(one(con, f"INSERT INTO ledger ({lcols}) SELECT {lcols} FROM _rc_built "
                               "ORDER BY ts, run_id")[0])
        removed: int | None = None
    elif changed == 0:
        rebuilt = recorded = removed = 0
    else:
        old: pa.Table | None = None  # the rows deleted (None: no changed run had one)
        if split is None or split.held:
            held = "_rc_runs" if split is None else "_rc_held"
            span = None if split is None else split.span
            con.execute(f"DELETE FROM ledger WHERE run_id IN (SELECT run_id FROM {held}) AND "
                        f"{known_runs.ts_within(span)} RETURNING {lcols}")
            old = to_arrow(con, _BATCH)
        removed = 0 if old is None else old.num_rows
        # each source's rows of the changed runs, found once: read by the statement, and by
        # the check for the sources where no changed run has several rows (most passes),
        # whose aggregation over several rows the statement then leaves out (`single`)
        with (nullcontext(None) if inserted is None
              else registered(con, "_rc_inserted", inserted)) as ins:
            for name, table in SOURCES.items():
                con.execute(f"CREATE OR REPLACE TEMP TABLE {_ROWS[name]} AS "
                            f"{_source_rows_sql(name, table, split, ins)}")
        found = one(con, single_sources(_ROWS))
        single = frozenset(n for n, yes in zip(SOURCES, found, strict=True) if yes)
        # the longest text of a pass, one of eight per policy: parsed once
        built = ledger_sql(policy_hash, pnl_keys.table, runs="_rc_runs", single=single,
                           rows=_ROWS)
        con.execute(parsed(con, f"INSERT INTO ledger ({lcols}) SELECT {lcols} FROM ({built}) "
                                f"RETURNING {lcols}"))
        rows = to_arrow(con, _BATCH)
        if split is not None and known is not None:
            known_runs.written(known, seq, split, rows)
        rebuilt = rows.num_rows
        with registered(con, "_rc_new", rows) as n, \
                (nullcontext(None) if old is None or old.num_rows == 0
                 else registered(con, "_rc_old", old)) as o:
            if o is None:  # only runs new to the ledger: every row is added
                recorded = changes.record_added(con, seq, n)
            else:
                recorded = changes.record(con, seq, n, o)
            if add_subjects:
                con.execute(parsed(con, _ADD_SUBJECTS.format(rows=_subject_changes_sql(n, o))))
    if changed is None or not add_subjects:
        con.execute("DELETE FROM ledger_subjects")
        con.execute("INSERT INTO ledger_subjects (scope, subject, first_known, runs) "
                    f"{_subjects_sql('ledger')}")
    return rebuilt, recorded, removed


_BATCH = 1 << 20  # rows per Arrow batch of the rows a pass rebuilt


def _save_state(con: duckdb.DuckDBPyConnection, built: list[str], alpha_same: bool,
                alpha_keyed: bool, pnl: PnlKeys) -> list[tuple[Any, ...]]:
    """The market as priced against, the alpha and pnl symbols' keys and the ledger's
    definition, for the next reconcile's change detection; returns `ledger_market_state`'s
    rows as written, in `market_state`'s order (a caller's snapshot keeps them). `built`:
    the definitions stored now (rewritten only when not this one). `alpha_keyed`,
    `pnl.seen`: the key table's aliases were all read into the new keys (`_symbols` with
    `seen`), so only the keys that differ are written; otherwise the table is written anew.
    `alpha_same`: the alpha keys are known to equal the stored ones (nothing to write); so
    are the pnl keys when held."""
    for table, new, value, keyed, same in (
            ("ledger_alpha_keys", "_rc_symmap", "symbol", alpha_keyed, alpha_same),
            ("ledger_pnl_keys", pnl.table, "key", pnl.seen, pnl.held)):
        if same:
            continue
        if keyed:
            con.execute(f"INSERT OR REPLACE INTO {table} SELECT n.alias, n.{value} FROM {new} n "
                        f"LEFT JOIN {table} o ON o.alias = n.alias WHERE n.alias IS NOT NULL "
                        f"AND (o.alias IS NULL OR o.{value} IS DISTINCT FROM n.{value})")
        else:
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT alias, {value} FROM {new} "
                        "WHERE alias IS NOT NULL")
    if built != [ledger_definition()]:
        con.execute("DELETE FROM ledger_build")
        con.execute("INSERT INTO ledger_build VALUES (?)", [ledger_definition()])
    con.execute("DELETE FROM ledger_market_state")
    return sorted((tuple(r) for r in con.execute("""
INSERT INTO ledger_market_state
SELECT coalesce(m.symbol, f.symbol), m.interval_s, m.n, make_timestamp(m.last_us), m.digest,
       f.n, make_timestamp(f.last_us), f.digest
FROM _rc_markets m FULL JOIN _rc_fprofile f ON f.symbol = m.symbol
RETURNING *""").fetchall()), key=lambda r: str(r[0]))
