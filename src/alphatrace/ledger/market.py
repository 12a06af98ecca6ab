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


def funding_rows_sql(fprofile: str) -> str:
    """(sid, us, rate, mark) of the funding of priced markets, in (sid, us) order: what
    `locate.settlements` prices and `locate.funding_totals` adds up, in that order."""
    return f"""
SELECT fp.sid, epoch_us(f.ts) AS us, f.funding_rate AS rate, f.mark_price AS mark
FROM funding f JOIN {fprofile} fp ON fp.symbol = f.symbol AND fp.sid IS NOT NULL
ORDER BY sid, us"""


# The rows a table gained since a pass, found by row id (DuckDB assigns row ids in commit
# order and answers `rowid >=` without a scan), from the last row the pass saw (`rowid` =
# `$from` - 1, to check it is still that row) on, with the hash its profile digest adds up.
DELTA_SQL = {
    "bars": """
SELECT rowid AS rid, symbol, interval_s, epoch_us(ts) AS us, open, hash(ts, open) AS h,
       NULL::DOUBLE AS rate, NULL::DOUBLE AS mark
FROM bars WHERE rowid >= $from ORDER BY rowid""",
    "funding": """
SELECT rowid AS rid, symbol, NULL::INTEGER AS interval_s, epoch_us(ts) AS us,
       NULL::DOUBLE AS open, hash(ts, funding_rate, mark_price) AS h,
       funding_rate AS rate, mark_price AS mark
FROM funding WHERE rowid >= $from ORDER BY rowid""",
}
