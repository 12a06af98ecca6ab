"""Paper PnL of simulated signals with the docs/architecture.md §Reconciliation formula, vectorised over numpy arrays.

The simulator needs the true paper PnL before any event exists: to give an agent a known edge
(it trades the realised move with some probability), to plant the loss cluster and the quality
break, and to derive the external pnl events (paper + slippage). It works on plain arrays of
one symbol so it stays independent of the store and of the reconcile area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

FEE = 0.0005  # per side, docs/architecture.md §Reconciliation default


@dataclass(frozen=True)
class Legs:
    """Per signal: bar indices (-1 when there is no such bar yet) and the PnL parts in bps."""

    entry_idx: I64
    exit_idx: I64
    entry_price: F64
    exit_price: F64
    gross_long_bps: F64  # (exit / entry − 1)·1e4: the move a LONG captures before fees
    pnl_bps: F64  # price leg with fees + funding; NaN while the leg is open or FLAT
    funding_bps: F64

    @property
    def closed(self) -> npt.NDArray[np.bool_]:
        return self.exit_idx >= 0


def price_leg_bps(direction: I64, entry: F64, exit_: F64, fee: float = FEE) -> F64:
    """Freqtrade-style price leg with fees on both sides; 0 for FLAT (direction 0)."""
    long_ = (exit_ * (1 - fee)) / (entry * (1 + fee)) - 1
    short = 1 - (exit_ * (1 + fee)) / (entry * (1 - fee))
    out: F64 = np.where(direction > 0, long_, np.where(direction < 0, short, 0.0)) * 1e4
    return out


def legs(
    bar_ms: I64,
    bar_open: F64,
    signal_ms: I64,
    horizon_ms: I64,
    direction: I64,
    funding_ms: I64 | None = None,
    funding_rate: F64 | None = None,
    funding_mark: F64 | None = None,
    fee: float = FEE,
) -> Legs:
    """Entry at the first bar opening at or after the signal, exit at the first bar opening at
    or after entry + horizon; funding settlements in (entry, exit] add −d·rate·mark/entry.

    `bar_ms` must be sorted; a NaN funding mark falls back to the bar open at the settlement.
    """
    n = len(bar_ms)
    entry_idx = np.searchsorted(bar_ms, signal_ms, side="left").astype(np.int64)
    has_entry = entry_idx < n
    e = np.minimum(entry_idx, n - 1)
    exit_idx = np.searchsorted(bar_ms, bar_ms[e] + horizon_ms, side="left").astype(np.int64)
    closed = has_entry & (exit_idx < n)
    x = np.minimum(exit_idx, n - 1)
    entry_price = np.where(has_entry, bar_open[e], np.nan)
    exit_price = np.where(closed, bar_open[x], np.nan)
    with np.errstate(invalid="ignore"):
        gross = (exit_price / entry_price - 1) * 1e4
        price = price_leg_bps(direction, entry_price, exit_price, fee)
    funding = np.zeros(len(signal_ms))
    if funding_ms is not None and funding_rate is not None and len(funding_ms):
        mark = funding_mark if funding_mark is not None else np.full(len(funding_ms), np.nan)
        at_bar = np.clip(np.searchsorted(bar_ms, funding_ms, side="left"), 0, n - 1)
        mark = np.where(np.isnan(mark), bar_open[at_bar], mark)
        cum = np.concatenate([[0.0], np.cumsum(funding_rate * mark)])
        lo = np.searchsorted(funding_ms, bar_ms[e], side="right")
        hi = np.searchsorted(funding_ms, bar_ms[x], side="right")
        with np.errstate(invalid="ignore"):
            funding = np.where(closed, -direction * (cum[hi] - cum[lo]) / entry_price * 1e4, 0.0)
    pnl = np.where(closed & (direction != 0), price + funding, np.nan)
    return Legs(
        entry_idx=np.where(has_entry, entry_idx, -1),
        exit_idx=np.where(closed, exit_idx, -1),
        entry_price=entry_price,
        exit_price=exit_price,
        gross_long_bps=np.where(closed, gross, np.nan),
        pnl_bps=pnl,
        funding_bps=np.where(closed, funding, np.nan),
    )
