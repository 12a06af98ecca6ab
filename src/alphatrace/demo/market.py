"""Bars and funding as numpy arrays per symbol, plus the past-only signals strategies read.

The simulator takes Arrow tables (from the store, the shipped slice or a test) and works on
arrays; everything a strategy may look at is computed here from bars that have already closed
at the signal time, so no simulated rule can peek at the future by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.demo.paper import F64, I64
from alphatrace.errors import InputError

DAY_MS = 86_400_000
LOOKBACK_BARS_S = 24 * 3600  # momentum / mean-reversion window


@dataclass(frozen=True)
class Market:
    symbol: str
    bar_ms: I64  # bar open times, sorted, epoch ms UTC
    open: F64
    close: F64
    interval_ms: int
    funding_ms: I64 | None = None
    funding_rate: F64 | None = None
    funding_mark: F64 | None = None

    def last_closed(self, t_ms: I64) -> I64:
        """Index of the newest bar whose close time is ≤ t (−1 when none)."""
        idx: I64 = np.searchsorted(self.bar_ms + self.interval_ms, t_ms, side="right") - 1
        return idx

    def past_return(self, t_ms: I64, window_ms: int) -> F64:
        """close(last closed bar) / close(window earlier) − 1; NaN without enough history."""
        i = self.last_closed(t_ms)
        k = max(1, round(window_ms / self.interval_ms))
        j = i - k
        ok = j >= 0
        out: F64 = np.where(ok, self.close[np.maximum(i, 0)] / self.close[np.maximum(j, 0)] - 1, np.nan)
        return out

    def past_vol(self, t_ms: I64, window_ms: int) -> F64:
        """Standard deviation of the log bar returns over the window before t."""
        logret = np.diff(np.log(self.close), prepend=np.nan)
        k = max(2, round(window_ms / self.interval_ms))
        csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(logret))])
        csq = np.concatenate([[0.0], np.cumsum(np.nan_to_num(logret) ** 2)])
        i = self.last_closed(t_ms) + 1  # exclusive end
        j = np.maximum(i - k, 1)
        n = np.maximum(i - j, 1)
        mean = (csum[i] - csum[j]) / n
        var = np.maximum((csq[i] - csq[j]) / n - mean**2, 0.0)
        out: F64 = np.sqrt(var)
        return out

    def funding_signal(self, t_ms: I64) -> F64:
        """Latest settled funding rate minus its trailing 7-day mean (positive: longs crowded).

        Without funding data the 72h return stands in: funding follows the premium, and the
        premium follows a run-up.
        """
        if self.funding_ms is None or self.funding_rate is None or not len(self.funding_ms):
            return self.past_return(t_ms, 3 * DAY_MS)
        i = np.searchsorted(self.funding_ms, t_ms, side="right") - 1
        csum = np.concatenate([[0.0], np.cumsum(self.funding_rate)])
        j = np.maximum(i + 1 - 21, 0)
        n = np.maximum(i + 1 - j, 1)
        trailing = (csum[i + 1] - csum[j]) / n
        out: F64 = np.where(i >= 0, self.funding_rate[np.maximum(i, 0)] - trailing, np.nan)
        return out


def _epoch_ms(col: pa.ChunkedArray | pa.Array) -> I64:
    t = col.type
    if pa.types.is_timestamp(t):
        arr = pc.cast(col, pa.timestamp("ms", tz=t.tz), safe=False)
        out: I64 = np.asarray(pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        return out
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        v = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        ms = np.where(np.abs(v) >= 1e11, v, v * 1000)
        return np.round(ms).astype(np.int64)
    raise InputError(f"ts column has type {t}; expected a timestamp or epoch seconds/milliseconds")


def _split(table: pa.Table | dict[str, pa.Table], what: str) -> dict[str, pa.Table]:
    if isinstance(table, dict):
        return dict(sorted(table.items()))
    if "symbol" not in table.column_names:
        raise InputError(f"{what} table needs a symbol column (or pass a dict symbol -> table)")
    out = {}
    for sym in sorted(set(table.column("symbol").to_pylist())):
        out[str(sym)] = table.filter(pc.equal(table.column("symbol"), sym))
    return out


def _need(table: pa.Table, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in table.column_names]
    if missing:
        raise InputError(f"{what} table lacks column(s): {', '.join(missing)}")


def markets(
    bars: pa.Table | dict[str, pa.Table],
    funding: pa.Table | dict[str, pa.Table] | None = None,
) -> dict[str, Market]:
    """One Market per symbol with sorted arrays; funding is optional per symbol."""
    by_sym = _split(bars, "bars")
    if not by_sym:
        raise InputError("no bars given: the simulator needs at least one symbol's bars")
    fund = _split(funding, "funding") if funding is not None else {}
    out: dict[str, Market] = {}
    for sym, t in by_sym.items():
        _need(t, ("ts", "open"), f"bars of {sym}")
        ms = _epoch_ms(t.column("ts"))
        order = np.argsort(ms, kind="stable")
        ms = ms[order]
        if len(ms) < 48:
            raise InputError(f"bars of {sym}: {len(ms)} bars; the simulator needs at least 48")
        open_ = np.asarray(t.column("open").to_numpy(zero_copy_only=False), dtype=np.float64)[order]
        close_col = t.column("close") if "close" in t.column_names else None
        close = (
            np.asarray(close_col.to_numpy(zero_copy_only=False), dtype=np.float64)[order]
            if close_col is not None
            else np.append(open_[1:], open_[-1])
        )
        interval = int(np.median(np.diff(ms)))
        f_ms = f_rate = f_mark = None
        ft = fund.get(sym)
        if ft is not None and ft.num_rows:
            _need(ft, ("ts", "funding_rate"), f"funding of {sym}")
            f_ms = _epoch_ms(ft.column("ts"))
            fo = np.argsort(f_ms, kind="stable")
            f_ms = f_ms[fo]
            f_rate = np.asarray(ft.column("funding_rate").to_numpy(zero_copy_only=False), dtype=np.float64)[fo]
            if "mark_price" in ft.column_names:
                mark = ft.column("mark_price").to_numpy(zero_copy_only=False)
                f_mark = np.asarray(mark, dtype=np.float64)[fo]
        out[sym] = Market(sym, ms, open_, close, interval, f_ms, f_rate, f_mark)
    return out
