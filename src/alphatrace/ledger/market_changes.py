"""How the market moved since the last reconcile, per symbol: what makes a leg stale.

The last reconcile recorded, per symbol, the bar series it priced against and the funding it
saw (`ledger_market_state`: count, last time, content digest). This pass's profiles
(`market.profile_sql`, or a live caller's snapshot: `market_cache.profile_rows`) give the same
aggregates now, and over the rows up to the recorded last time (`prefix_n`,
`prefix_digest`). Per symbol, the bars are then `same`, `appended` (the recorded series is
an exact prefix of this one: realized legs stay valid) or `changed` (another series was
chosen, one appeared or went, or rows inside the recorded history differ); likewise the
funding. `reconcile` reads which legs to price again from these (its `_stale_leg`).

The classification is a few comparisons over one row per symbol, so it is done here, in
Python, and lent to SQL as a small table (`to_arrow`): planning it as SQL, twice a pass, cost
a live pass ~10 ms at 1M runs (bench/RESULTS.md, "#14's 1M round: the market's changes and
the window's numbering in Python")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

SAME, APPENDED, CHANGED = "same", "appended", "changed"

# `ledger_market_state`'s columns, by position (migration 0006)
_IV, _BARS_N, _BARS_DIGEST, _FUND_N, _FUND_LAST, _FUND_DIGEST = 1, 2, 4, 5, 6, 7


@dataclass(frozen=True)
class Change:
    """One symbol's market since the last reconcile: its bars' kind and this pass's last bar
    time (`last_us`, None without a chosen series), its funding's kind and the recorded last
    settlement (`watermark`, None when none was recorded)."""

    symbol: str
    bars: str
    last_us: int | None
    funding: str
    watermark: Any


@dataclass(frozen=True)
class MarketChanges:
    """Every symbol of this pass's market or of the recorded state, with its `Change`."""

    rows: tuple[Change, ...]

    @property
    def moved(self) -> bool:
        """Some market's bars changed other than by appending, or some funding changed at all:
        an unpriced leg may now price (a market may have come or gone)."""
        return any(c.bars == CHANGED or c.funding != SAME for c in self.rows)

    @property
    def symbols(self) -> list[str]:
        """Symbols whose bars changed other than by appending or whose funding changed: they
        can move a realized leg."""
        return sorted(c.symbol for c in self.rows if c.bars == CHANGED or c.funding != SAME)

    @property
    def funded(self) -> dict[str, Any]:
        """Of `symbols`, those whose bars did not change and whose funding only gained
        settlements after the recorded last one, with that time (`watermark`; None: none was
        recorded): a settlement at t moves only a realized leg held across it, entry < t <=
        exit (`reconcile._first_new_settlements`, `reconcile._stale_legs_sql`)."""
        return {c.symbol: c.watermark for c in self.rows
                if c.bars != CHANGED and c.funding == APPENDED}

    @property
    def touched(self) -> list[str]:
        """Symbols whose bars or funding changed in any way: they can move a leg not
        realized."""
        return sorted(c.symbol for c in self.rows if c.bars != SAME or c.funding != SAME)

    def to_arrow(self) -> pa.Table:
        """The rows as SQL joins them on a leg's market symbol (symbol, bars_kind, last_us,
        funding_kind, watermark)."""
        return pa.table({
            "symbol": pa.array([c.symbol for c in self.rows], pa.string()),
            "bars_kind": pa.array([c.bars for c in self.rows], pa.string()),
            "last_us": pa.array([c.last_us for c in self.rows], pa.int64()),
            "funding_kind": pa.array([c.funding for c in self.rows], pa.string()),
            "watermark": pa.array([c.watermark for c in self.rows], pa.timestamp("us")),
        })


def _eq(a: object, b: object) -> bool:
    """SQL's `=` in a WHEN: NULL on either side is not equal."""
    return a is not None and b is not None and a == b


def _against(p: Mapping[str, Any], n: object, digest: object) -> str:
    """A profile row `p` against the recorded count and digest: the whole series, or its rows
    up to the recorded last time (`prefix_n`, `prefix_digest`), or neither."""
    if _eq(p["n"], n) and _eq(p["digest"], digest):
        return SAME
    if _eq(p["prefix_n"], n) and _eq(p["prefix_digest"], digest):
        return APPENDED
    return CHANGED


def _bars(m: Mapping[str, Any] | None, s: Sequence[Any] | None) -> str:
    """`m`: this pass's chosen series of the symbol (a profile row), `s`: its recorded state."""
    recorded = None if s is None else s[_IV]
    if m is None:
        return SAME if recorded is None else CHANGED
    if recorded is None or s is None or m["interval_s"] != recorded:
        return CHANGED
    return _against(m, s[_BARS_N], s[_BARS_DIGEST])


def _funding(f: Mapping[str, Any] | None, s: Sequence[Any] | None) -> str:
    recorded = 0 if s is None or s[_FUND_N] is None else s[_FUND_N]
    if f is None:
        return SAME if recorded == 0 else CHANGED
    if recorded == 0 or s is None:
        return APPENDED
    return _against(f, s[_FUND_N], s[_FUND_DIGEST])


def _rows(cols: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(cols, r, strict=True)) for r in zip(*cols.values(), strict=True)]


def classify(profile: Mapping[str, Sequence[Any]], fprofile: Mapping[str, Sequence[Any]],
             state: Iterable[Sequence[Any]]) -> MarketChanges:
    """The changes of this pass's market against the recorded `state` (`ledger_market_state`'s
    rows). `profile`, `fprofile`: the columns of `_rc_profile` (one row per bar series,
    `chosen` marking the one priced with) and `_rc_fprofile` (one per funding symbol)."""
    markets = {r["symbol"]: r for r in _rows(profile) if r["chosen"]}
    funding = {r["symbol"]: r for r in _rows(fprofile)}
    recorded = {r[0]: r for r in state}
    out = []
    for sym in sorted(markets.keys() | funding.keys() | recorded.keys()):
        m, f, s = markets.get(sym), funding.get(sym), recorded.get(sym)
        out.append(Change(sym, _bars(m, s), None if m is None else m["last_us"],
                          _funding(f, s), None if s is None else s[_FUND_LAST]))
    return MarketChanges(tuple(out))
