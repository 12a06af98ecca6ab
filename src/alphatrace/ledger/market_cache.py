"""The market as the last pass left it, kept between passes of a long-lived reconciler.

A reconcile needs, for the market, the profile of every bar series and funding symbol (size,
span, content digest), the chosen bars as searchable arrays and the funding running sums.
Read from the store, that is every bar and settlement on every pass. The server's pipeline
keeps them instead (`MarketCache`), and a pass reads only the rows the tables gained since
the last one (`DELTA_SQL`: by row id) and folds them in (`advance`): profiles updated (count,
last time, xor digest), bars written into the room after their market (`locate.Bars`),
funding recomputed from the rows held. Anything else is a change of history, and `advance`
answers None: the pass reads the market in full, as the batch `alphatrace reconcile` always
does.

What a snapshot is checked against before it is used (all cheap: counts and a few rows):
- per table, the row count and the last row it saw (row id, symbol, time, content hash):
  the count must have grown by exactly the rows read past it, so a deleted row, a row
  written with an older row id (a transaction that committed late) or row ids reassigned
  (a checkpoint compacting deletes) mean a full read;
- the corrections `market import` made (the sum of `market_files.updated`): a stored bar
  or settlement replaced by an import means a full read;
- `ledger_market_state` as the last pass wrote it: another reconcile in between (the CLI
  through the server) that wrote anything else means a full read;
- the policy's `bar_interval`.
New rows must extend series the snapshot has, after their last time; a new series, or a
row inside a series' history, means a full read.

Not seen: a stored row changed in place by a raw SQL `UPDATE` (same row id, same count).
Nothing in alphatrace does that: bars and funding are written by `market import` only (CLI,
server routes, `market follow`), which counts what it replaces; while the server runs it
holds the database (DuckDB lets one process write), and a new process starts without a
snapshot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from alphatrace.ledger import locate
from alphatrace.ledger.locate import Columns

# (symbol, interval_s) -> (n, first_us, last_us, digest): one bar series' profile
Series = dict[tuple[str, int], tuple[int, ...]]
# symbol -> (n, first_us, last_us, null_marks, digest): one funding symbol's profile
Funding = dict[str, tuple[int, ...]]
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Watermark:
    """What a table held when a snapshot was taken: its rows, the row id the next row gets
    at the earliest, and that of the last row (row id, symbol, time, hash; None: empty)."""

    rows: int
    next: int
    last: Row | None


@dataclass(frozen=True)
class Snapshot:
    """The market of one pass (see the module docstring). `state`: `ledger_market_state` as
    that pass left it (None until it is read after the pass wrote it)."""

    interval: int | None        # the policy's bar_interval (None: the finest per symbol)
    bars_mark: Watermark
    funding_mark: Watermark
    corrections: int            # sum(market_files.updated)
    series: Series
    funding_series: Funding
    sids: dict[str, int]        # chosen market -> sid
    chosen: dict[str, int]      # chosen market -> its interval_s
    bars: locate.Bars
    funding: Columns            # (sid, us, rate, mark) of markets with bars, (sid, us) order
    totals: Columns             # locate.funding_totals of them
    state: list[Row] | None = None
    # the reconcile that left it: (its reconcile_log seq, policy hash, aliases); the one after
    # trusts the legs and keys it recorded only when that is still the last reconcile and the
    # configuration is the same (`reconcile._telemetry_only`)
    left_by: tuple[object, ...] | None = None
    # the signal symbols' resolution that reconcile used and stored as `ledger_alpha_keys`
    # (`_rc_symmap`'s rows; None: not kept), for the next pass (`reconcile._symmap_held`)
    symmap: pa.Table | None = None


@dataclass
class MarketCache:
    """The snapshot a reconciler keeps between passes. `min_room`: bars of room after each
    market (`locate.Bars`). `full_reads` / `delta_reads`: how the passes got their market."""

    min_room: int = 1024
    snapshot: Snapshot | None = None
    pending: Snapshot | None = None
    full_reads: int = 0
    delta_reads: int = 0
    # the last passes' reads: 'full' | 'delta' | 'same' (nothing came)
    kinds: deque[str] = field(default_factory=lambda: deque(maxlen=64))

    def commit(self) -> None:
        """The pass's transaction committed: its snapshot describes the store."""
        self.snapshot, self.pending = self.pending, None

    def drop(self) -> None:
        """The pass failed: what it read may not be what the store holds; read it again."""
        self.snapshot = self.pending = None


def settle(funding: Columns, bars: locate.Bars) -> Columns:
    """The funding running sums (`_rc_settle`) of `funding` against `bars`."""
    return locate.funding_totals(locate.settlements(funding, bars.series, bars.opens))


def _mark_after(mark: Watermark, delta: Columns, rows: int) -> tuple[Watermark, slice] | None:
    """The table's new watermark and the slice of `delta` that is new, or None when the table
    is not `mark` plus those rows."""
    rid = np.asarray(delta["rid"], dtype=np.int64)
    start = 0
    if mark.last is not None:
        if not len(rid) or _row(delta, 0) != mark.last:
            return None
        start = 1
    if rows != mark.rows + len(rid) - start:
        return None
    if len(rid) == start:
        return mark, slice(start, start)
    return Watermark(rows, int(rid[-1]) + 1, _row(delta, len(rid) - 1)), slice(start, None)


def _row(delta: Columns, i: int) -> Row:
    return (int(delta["rid"][i]), str(delta["symbol"][i]), int(delta["us"][i]),
            int(delta["h"][i]))


def watermark(rows: int, last: Columns) -> Watermark:
    """The watermark of a table of `rows` rows whose last row (by row id) is `last`'s only
    row (a `DELTA_SQL` row; none: the table is empty)."""
    if not len(last["rid"]):
        return Watermark(rows, 0, None)
    return Watermark(rows, int(last["rid"][0]) + 1, _row(last, 0))


def _xor(h: np.ndarray) -> int:
    return int(np.bitwise_xor.reduce(np.asarray(h, dtype=np.uint64))) if len(h) else 0


def _grown(old: dict[Any, tuple[int, ...]], keys: list[Any], us: np.ndarray, h: np.ndarray,
           nulls: np.ndarray | None) -> dict[Any, tuple[int, ...]] | None:
    """`old` profiles with rows (key, us, hash) appended (None: a row that is not an append
    to a known series). Digests are xors of the row hashes, so they fold."""
    out = dict(old)
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    for k, idx in groups.items():
        if k not in out:
            return None
        ix = np.asarray(idx)
        prof = out[k]
        n, first, last, digest = prof[0], prof[1], prof[2], prof[-1]
        if int(us[ix].min()) <= last:
            return None
        new: tuple[int, ...] = (n + len(ix), first, int(us[ix].max()))
        if nulls is not None:
            new += (prof[3] + int(nulls[ix].sum()),)
        out[k] = (*new, digest ^ _xor(h[ix]))
    return out


def advance(snap: Snapshot, bars: Columns, funding: Columns, bar_rows: int,
            funding_rows: int, corrections: int, state: list[Row]) -> Snapshot | None:
    """`snap` with the rows `bars` and `funding` (`DELTA_SQL` from their watermarks) folded
    in, or None when the store is not `snap` plus appended rows (module docstring). `bar_rows`,
    `funding_rows`, `corrections` and `state` are read in the same transaction."""
    if corrections != snap.corrections or state != snap.state:
        return None
    bm = _mark_after(snap.bars_mark, bars, bar_rows)
    fm = _mark_after(snap.funding_mark, funding, funding_rows)
    if bm is None or fm is None:
        return None
    (bars_mark, bnew), (funding_mark, fnew) = bm, fm
    b = {k: v[bnew] for k, v in bars.items()}
    f = {k: v[fnew] for k, v in funding.items()}
    if not len(b["rid"]) and not len(f["rid"]):
        return replace(snap, bars_mark=bars_mark, funding_mark=funding_mark)
    b_sym = [str(s) for s in b["symbol"]]
    b_us = np.asarray(np.ma.getdata(b["us"]), dtype=np.int64)
    series = _grown(snap.series, list(zip(b_sym, (int(i) for i in b["interval_s"]),
                                          strict=True)), b_us, b["h"], None)
    f_sym = [str(s) for s in f["symbol"]]
    f_us = np.asarray(np.ma.getdata(f["us"]), dtype=np.int64)
    fseries = _grown(snap.funding_series, f_sym, f_us, f["h"],
                     np.ma.getmaskarray(f["mark"]) if len(f_sym) else np.zeros(0, bool))
    if series is None or fseries is None:
        return None
    chosen = np.asarray([snap.chosen.get(s) == int(iv) for s, iv
                         in zip(b_sym, b["interval_s"], strict=True)], dtype=bool)
    bsid = np.asarray([snap.sids.get(s, 0) for s in b_sym], dtype=np.int64)[chosen]
    new_bars = snap.bars
    if len(bsid):
        order = locate.by_market_then_time(bsid, b_us[chosen])
        new_bars = snap.bars.appended(bsid[order], b_us[chosen][order],
                                      np.asarray(np.ma.getdata(b["open"]))[chosen][order])
    priced = np.asarray([s in snap.sids for s in f_sym], dtype=bool)
    rows = snap.funding
    if priced.any():
        fsid = np.asarray([snap.sids[s] for s in f_sym if s in snap.sids], dtype=np.int64)
        add: Columns = {"sid": fsid, "us": f_us[priced], "rate": f["rate"][priced],
                        "mark": f["mark"][priced]}
        cat = {k: np.ma.concatenate([np.ma.asarray(rows[k]), np.ma.asarray(add[k])])
               for k in ("sid", "us", "rate", "mark")}
        order = locate.by_market_then_time(np.ma.getdata(cat["sid"]).astype(np.int64),
                                           np.ma.getdata(cat["us"]).astype(np.int64))
        rows = {k: v[order] for k, v in cat.items()}
    return replace(snap, bars_mark=bars_mark, funding_mark=funding_mark,
                   series=series, funding_series=fseries,
                   bars=new_bars, funding=rows, totals=settle(rows, new_bars))


def profile_rows(snap: Snapshot) -> dict[str, list[Any]]:
    """`_rc_profile` of `snap` (columns of `market.profile_sql`), the prefix aggregates read
    from its `state` (checked equal to the store's: the rows up to the state's last time are
    exactly the rows the state counted)."""
    state = {(r[0], r[1]): r for r in snap.state or [] if r[1] is not None}
    cols: dict[str, list[Any]] = {c: [] for c in (
        "symbol", "interval_s", "n", "first_us", "last_us", "digest", "prefix_n",
        "prefix_digest", "chosen")}
    for (sym, iv), (n, first, last, digest) in sorted(snap.series.items()):
        s = state.get((sym, iv))
        for c, v in zip(cols, (sym, iv, n, first, last, digest,
                               0 if s is None else s[2], None if s is None else s[4],
                               snap.chosen.get(sym) == iv), strict=True):
            cols[c].append(v)
    return cols


def fprofile_rows(snap: Snapshot) -> dict[str, list[Any]]:
    """`_rc_fprofile` of `snap` without `sid` (see `profile_rows`)."""
    state = {r[0]: r for r in snap.state or [] if r[5] is not None}
    cols: dict[str, list[Any]] = {c: [] for c in (
        "symbol", "n", "first_us", "last_us", "null_marks", "digest", "prefix_n",
        "prefix_digest")}
    for sym, (n, first, last, nulls, digest) in sorted(snap.funding_series.items()):
        s = state.get(sym)
        for c, v in zip(cols, (sym, n, first, last, nulls, digest,
                               0 if s is None else s[5], None if s is None else s[7]),
                        strict=True):
            cols[c].append(v)
    return cols
