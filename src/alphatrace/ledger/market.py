"""What reconciliation needs to know about the market data, as relations (SQL text, no I/O).

The chosen bar series per symbol (profiled, with a content digest for change detection) and the
funding settlements, whose running total (`locate.funding_totals`) gives the funding paid
between entry and exit: `C(exit) − C(entry)` where `C(x)` is the sum of `rate·mark` over
settlements at or before x.
Finding the bars and settlements a signal needs is a binary search (`locate`), not SQL.

Time is handled as epoch microseconds (BIGINT) inside the pipeline: exact integer arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable

from alphatrace.market.names import interval_label

US = 1_000_000


def profile_sql(bar_interval_s: int | None) -> str:
    """One row per (symbol, interval) of `bars`: size, span and a content digest.

    `chosen` marks the interval reconciliation prices with: the policy's `bar_interval` when
    set, else the finest the symbol has. `digest` (xor of row hashes) and the prefix columns
    against the stored state let reconcile tell "new bars appended" from "history changed".
    """
    chosen = (f"interval_s = {int(bar_interval_s)}" if bar_interval_s is not None
              else "interval_s = min(interval_s) OVER (PARTITION BY symbol)")
    return f"""
SELECT *, {chosen} AS chosen FROM (
  SELECT b.symbol, b.interval_s, count(*) AS n,
         min(epoch_us(b.ts)) AS first_us, max(epoch_us(b.ts)) AS last_us,
         bit_xor(hash(b.ts, b.open)) AS digest,
         count(*) FILTER (WHERE b.ts <= s.bars_last) AS prefix_n,
         bit_xor(hash(b.ts, b.open)) FILTER (WHERE b.ts <= s.bars_last) AS prefix_digest
  FROM bars b
  LEFT JOIN ledger_market_state s ON s.symbol = b.symbol AND s.interval_s = b.interval_s
  GROUP BY b.symbol, b.interval_s
)"""


def label_sql(intervals: Iterable[int]) -> str:
    """`interval_s` as the label `alphatrace market symbols` shows (900 → '15m', 0 → 'tick'),
    a CASE over the given intervals (the few a store has)."""
    whens = " ".join(f"WHEN {int(s)} THEN '{interval_label(int(s))}'"
                     for s in sorted(set(intervals)))
    return f"CASE interval_s {whens} END" if whens else "NULL::VARCHAR"


def markets_sql(profile: str, label: str) -> str:
    """The chosen bar series per symbol, with `bar_interval`, the label of its interval
    (`label`: a `label_sql` expression). `sid` is a small integer id (joins on it are cheaper
    than on text)."""
    return f"""
SELECT CAST(row_number() OVER (ORDER BY symbol) AS INTEGER) AS sid, symbol, interval_s,
       interval_s * {US}::BIGINT AS iv_us, {label} AS bar_interval, n, first_us, last_us,
       digest
FROM {profile} WHERE chosen"""


def chosen_bars_sql(markets: str) -> str:
    """(sid, us, open) of the bars reconciliation prices with, in no particular order."""
    return f"""
SELECT m.sid, epoch_us(b.ts) AS us, b.open
FROM bars b JOIN {markets} m ON m.symbol = b.symbol AND m.interval_s = b.interval_s"""


def funding_profile_sql(markets: str) -> str:
    """Per funding symbol: count, span, digest, the prefix aggregates against the stored state
    (see profile_sql), and the market's sid."""
    return f"""
SELECT m.sid, f.* FROM (
  SELECT f.symbol, count(*) AS n, min(epoch_us(f.ts)) AS first_us,
         max(epoch_us(f.ts)) AS last_us,
         count(*) FILTER (WHERE f.mark_price IS NULL) AS null_marks,
         bit_xor(hash(f.ts, f.funding_rate, f.mark_price)) AS digest,
         count(*) FILTER (WHERE f.ts <= s.funding_last) AS prefix_n,
         bit_xor(hash(f.ts, f.funding_rate, f.mark_price)) FILTER (WHERE f.ts <= s.funding_last)
           AS prefix_digest
  FROM funding f LEFT JOIN ledger_market_state s ON s.symbol = f.symbol
  GROUP BY f.symbol
) f LEFT JOIN {markets} m ON m.symbol = f.symbol"""


def settlements_sql(fprofile: str, mark_fallback: str | None) -> str:
    """(sid, us, rm) for funding of priced markets, each settlement's `rate·mark`, in (sid,
    us) order: the order `locate.funding_totals` adds them in.

    `mark_fallback`, when given, is a relation (sid, us, open) with the open of the first bar at
    or after each settlement whose mark price is missing.
    """
    mark = "f.mark_price"
    join = ""
    if mark_fallback:
        mark = "coalesce(f.mark_price, mf.open)"
        join = f"LEFT JOIN {mark_fallback} mf ON mf.sid = fp.sid AND mf.us = epoch_us(f.ts)"
    return f"""
SELECT fp.sid, epoch_us(f.ts) AS us, f.funding_rate * {mark} AS rm
FROM funding f JOIN {fprofile} fp ON fp.symbol = f.symbol AND fp.sid IS NOT NULL {join}
ORDER BY sid, us, rm NULLS FIRST"""
