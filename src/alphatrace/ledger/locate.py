"""Entry and exit bars and funding settlements of priced signals, by binary search (numpy).

"The first bar opening at or after t" and "the last settlement at or before t" are searches in
a sorted array: per market, `np.searchsorted` over its bar (settlement) times. One rule then
covers regular grids, grids with holes, irregular timestamps and ticks, and funding on or off
the hour, with no per-case relations to build. The loop below is over markets, never over
signals. Prices are gathered by position from the rows the store holds, bit for bit; the
funding running totals are a sequential scan per market (`funding_totals`), which SQL joins by
the settlement (`i`) this finds.

Columns come and go as dicts of numpy arrays (masked where NULL), the form DuckDB's
`fetchnumpy` returns and `register` scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from alphatrace.scan import segmented_accumulate, starts_of

Columns = dict[str, np.ndarray]
NONE = -1  # "no such row" in a position array


def as_arrow(cols: Columns) -> pa.Table:
    """`cols` as an Arrow table holding what DuckDB reads when it scans the dict itself: NULL
    where masked and, in a float column, where NaN. (Arrow lent to SQL costs less than the
    dict: `store.connection.registered`.)"""
    out = {}
    for name, col in cols.items():
        data, mask = np.ma.getdata(col), np.ma.getmaskarray(col)
        if data.dtype.kind == "f":
            mask = mask | np.isnan(data)
        out[name] = pa.array(data, mask=mask if mask.any() else None)
    return pa.table(out)


def by_market_then_time(sid: np.ndarray, us: np.ndarray) -> np.ndarray:
    """The permutation sorting rows by (sid, us): a stable sort by time, then a stable sort by
    market on a 16-bit key (numpy radix-sorts those; the time sort is fast on the long sorted
    runs market data comes in). Cheaper than `np.lexsort`. `sid` are small ids ≥ 0."""
    order = np.argsort(us, kind="stable")
    key = sid[order]
    if len(key) and key.max() < 2**15:
        key = key.astype(np.int16)
    return order[np.argsort(key, kind="stable")]


def _int(a: np.ndarray) -> np.ndarray:
    return np.asarray(np.ma.getdata(a), dtype=np.int64)


@dataclass(frozen=True)
class Series:
    """Row times sorted by market (sid) then time: market `m` is `us[lo[m]:hi[m]]`; `order`
    maps a position in `us` back to the input row."""

    us: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    order: np.ndarray

    @staticmethod
    def of(sid: np.ndarray, us: np.ndarray) -> Series:
        s, u = np.ma.getdata(sid), _int(us)
        order = by_market_then_time(s, u)
        counts = np.bincount(s, minlength=1)
        hi = np.cumsum(counts)
        return Series(u[order], hi - counts, hi, order)

    def bounds(self, markets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) in `us` of each market (empty for a market with no rows)."""
        known = markets < len(self.lo)
        m = np.where(known, markets, 0)
        return np.where(known, self.lo[m], 0), np.where(known, self.hi[m], 0)


def _search(s: Series, sid: np.ndarray, t: np.ndarray, side: Literal["left", "right"]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query, `np.searchsorted(side)` within its market's rows, as a position in `s`, and
    that market's [lo, hi) in `s`. Queries must be sorted by `sid` (one call per market);
    searches are fastest when `t` is sorted within each market too."""
    cuts = np.flatnonzero(np.diff(sid)) + 1
    starts = np.concatenate([[0], cuts]) if len(sid) else cuts
    ends = np.append(starts, len(sid))[1:]
    m_lo, m_hi = s.bounds(sid[starts])
    pos = np.empty(len(sid), dtype=np.int64)
    for a, b, mlo, mhi in zip(starts, ends, m_lo, m_hi, strict=True):
        pos[a:b] = mlo + np.searchsorted(s.us[mlo:mhi], t[a:b], side=side)
    return pos, np.repeat(m_lo, ends - starts), np.repeat(m_hi, ends - starts)


def at_or_after(s: Series, sid: np.ndarray, t: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Position in `s` of the first row of market `sid` at or after `t` (NONE: none, or not
    `valid`). Queries sorted by `sid`."""
    pos, _lo, hi = _search(s, sid, t, "left")
    return np.where(valid & (pos < hi), pos, NONE)


def at_or_before(s: Series, sid: np.ndarray, t: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Position in `s` of the last row of market `sid` at or before `t` (NONE: none, or not
    `valid`). Queries sorted by `sid`."""
    pos, lo, _hi = _search(s, sid, t, "right")
    return np.where(valid & (pos - 1 >= lo), pos - 1, NONE)


def _at(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """`values[pos]`, masked (NULL) where pos is NONE."""
    none = pos == NONE
    picked = (values[np.maximum(pos, 0)] if len(values)
              else np.zeros(len(pos), dtype=values.dtype))
    return np.ma.masked_array(picked, mask=none)


def _rows(s: Series, pos: np.ndarray) -> np.ndarray:
    """The input row of each position in `s` (NONE stays NONE)."""
    return np.ma.filled(_at(s.order, pos), NONE)


def _sorted_by_market(cols: Columns, sid: str, us: str) -> Columns:
    order = by_market_then_time(_int(cols[sid]), _int(cols[us]))
    return {name: a[order] for name, a in cols.items()}


def exits(narrow: Columns, b: Series, opens: np.ndarray, settlements: Columns) -> Columns:
    """`narrow` (sid, t_us, h_us, include_funding, …) plus the entry and exit bar (`entry_us`,
    `entry_price`, `exit_us`, `exit_price`), the target time, `funded` (the leg includes
    funding and has an exit) and, for funded legs, `entry_settle` / `exit_settle`: the `i` of
    the last settlement at or before entry / exit (NULL: none, C = 0).

    entry: first bar at or after t; exit: first bar at or after entry + horizon (NULL: none yet).
    `b` are the bars, `opens` their open per input row, `settlements` (i, sid, us) in any
    order; the result is in (sid, t_us) order.
    """
    x = _sorted_by_market(narrow, "sid", "t_us")
    n = len(x["sid"])
    sid, t = _int(x["sid"]), _int(x["t_us"])
    h = _int(np.ma.filled(x["h_us"], 0))
    has_h = ~np.ma.getmaskarray(x["h_us"])
    funding = np.ma.filled(x["include_funding"], False).astype(bool)

    entry = at_or_after(b, sid, t, np.ones(n, dtype=bool))
    entry_us = _at(b.us, entry)
    has_target = (entry != NONE) & has_h
    target = np.ma.masked_array(np.ma.getdata(entry_us) + h, mask=~has_target)
    exit_ = at_or_after(b, sid, np.ma.getdata(target), has_target)
    exit_us = _at(b.us, exit_)
    funded = funding & (exit_ != NONE)

    f = Series.of(settlements["sid"], settlements["us"])
    entry_j = at_or_before(f, sid, np.ma.getdata(entry_us), funded)
    exit_j = at_or_before(f, sid, np.ma.getdata(exit_us), funded)
    opens, settle_i = np.ma.getdata(opens), _int(settlements["i"])
    return x | {"entry_us": entry_us, "entry_price": _at(opens, _rows(b, entry)),
                "target_us": target, "exit_us": exit_us, "exit_price": _at(opens, _rows(b, exit_)),
                "funded": funded, "entry_settle": _at(settle_i, _rows(f, entry_j)),
                "exit_settle": _at(settle_i, _rows(f, exit_j))}


def settlements(funding: Columns, bars: Series, opens: np.ndarray) -> Columns:
    """(sid, us, rm) of the funding rows (sid, us, rate, mark; in (sid, us) order): `rm` is
    rate·mark, a missing mark being the open of the first bar at or after the settlement
    (NULL while there is none). Recomputed from the rows on each call, so a bar appended
    after a settlement without a mark gives it its mark."""
    sid, us = _int(funding["sid"]), _int(funding["us"])
    mark = np.ma.masked_array(np.ma.getdata(funding["mark"]).astype(np.float64),
                              mask=np.ma.getmaskarray(funding["mark"]).copy())
    none = np.flatnonzero(np.ma.getmaskarray(mark))
    if len(none):
        pos = at_or_after(bars, sid[none], us[none], np.ones(len(none), dtype=bool))
        found = pos != NONE
        mark[none[found]] = opens[_rows(bars, pos[found])]
    rate = np.asarray(np.ma.getdata(funding["rate"]), dtype=np.float64)
    return {"sid": sid, "us": us, "rm": rate * mark}


def funding_totals(settlements: Columns) -> Columns:
    """`settlements` (sid, us, rm; in (sid, us) order) with `i` (the row's position: the key
    `exits` reports) and `cum`, the running sum of `rm` per market, added settlement by
    settlement in time order (a missing `rm` adds nothing). Appending later settlements
    leaves every earlier total as it was, so C(exit) − C(entry) does not depend on when a
    leg was priced; the scan is the same on every engine."""
    sid = _int(settlements["sid"])
    rm = np.ma.filled(np.ma.masked_invalid(settlements["rm"]).astype(np.float64), 0.0)
    cum = segmented_accumulate(np.add, np.asarray(rm, dtype=np.float64), starts_of(sid))
    return {"i": np.arange(len(sid), dtype=np.int64), "sid": sid,
            "us": _int(settlements["us"]), "rm": settlements["rm"], "cum": cum}


@dataclass(frozen=True)
class Bars:
    """The chosen bars laid out by market then time, each market followed by room for bars
    appended later, so a pass that adds a few bars writes only those (`appended`) instead of
    sorting and copying every bar again. Market `m` is `us[lo[m]:hi[m]]`, its opens at the
    same positions; `hi[m]:end[m]` is free. `series`/`opens` are what `exits` searches (the
    series' `order` is the identity: a position is its own row)."""

    us: np.ndarray
    open: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    end: np.ndarray
    min_room: int
    ident: np.ndarray  # arange(capacity): the series' `order`

    @staticmethod
    def of(sid: np.ndarray, us: np.ndarray, opens: np.ndarray, min_room: int = 0) -> Bars:
        """Rows (sid, us, open) in any order; each market gets `room(n, min_room)` free
        positions after its `n` rows (none when `min_room` is 0: the batch layout)."""
        s = Series.of(sid, us)
        return Bars._laid_out(s.us, np.ma.getdata(opens)[s.order], s.hi - s.lo, min_room)

    @staticmethod
    def _laid_out(us: np.ndarray, opens: np.ndarray, counts: np.ndarray, min_room: int
                  ) -> Bars:
        """Rows sorted by (market, time), `counts[m]` of market m, laid out with room."""
        counts = np.asarray(counts, dtype=np.int64)
        room = np.maximum(min_room, counts // 4) if min_room else np.zeros_like(counts)
        end = np.cumsum(counts + room)
        lo = end - counts - room
        src_lo = np.cumsum(counts) - counts
        dest = np.arange(len(us), dtype=np.int64) + np.repeat(lo - src_lo, counts)
        cap = int(end[-1]) if len(end) else 0
        u, o = np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.float64)
        u[dest], o[dest] = us, opens
        return Bars(u, o, lo, lo + counts, end, min_room, np.arange(cap, dtype=np.int64))

    @property
    def series(self) -> Series:
        return Series(self.us, self.lo, self.hi, self.ident)

    @property
    def opens(self) -> np.ndarray:
        return self.open

    def appended(self, sid: np.ndarray, us: np.ndarray, opens: np.ndarray) -> Bars:
        """These bars plus rows (sid, us, open) sorted by (sid, us), each later than its
        market's last bar, of markets this layout has. Written into the room (positions no
        other `Bars` of this buffer reads: their `hi` is older), else laid out anew."""
        sid = np.asarray(sid, dtype=np.int64)
        add = np.bincount(sid, minlength=len(self.lo))
        if len(add) > len(self.lo):
            raise ValueError("bars of a market this layout does not have")
        hi = self.hi + add
        if np.any(hi > self.end):
            keep = np.concatenate([np.arange(a, b) for a, b in zip(self.lo, self.hi, strict=True)]
                                  ) if len(self.lo) else np.zeros(0, dtype=np.int64)
            old = np.repeat(np.arange(len(self.lo)), self.hi - self.lo)
            order = by_market_then_time(np.concatenate([old, sid]),
                                        np.concatenate([self.us[keep], us]))
            return Bars._laid_out(np.concatenate([self.us[keep], us])[order],
                                  np.concatenate([self.open[keep], opens])[order],
                                  hi - self.lo, self.min_room)
        dest = np.arange(len(sid), dtype=np.int64) + np.repeat(
            self.hi - (np.cumsum(add) - add), add)
        self.us[dest], self.open[dest] = us, opens
        return Bars(self.us, self.open, self.lo, hi, self.end, self.min_room, self.ident)

    def last_us(self) -> np.ndarray:
        """The time of each market's last bar (-1: none)."""
        has = self.hi > self.lo
        return np.where(has, self.us[np.maximum(self.hi - 1, 0)] if len(self.us) else -1, -1)
