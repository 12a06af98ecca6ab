"""What reconciliation needs to know about the market data, as relations (SQL text, no I/O).

Bars are almost always a regular grid (one bar every `interval` seconds, aligned), so "the first
bar opening at or after t" is arithmetic — round t up to the grid — plus a correction when the
rounded slot falls in a hole of the data. That turns two ASOF joins over millions of bars into a
hash join on exact keys, which is what makes a 1M-signal reconcile fast. Symbols whose bars are
not on one grid (ticks, irregular timestamps) use an ASOF join instead; both paths mean the
same thing and the tests check they agree.

Funding is summed over settlements with a running total: the funding paid between entry and exit
is `C(exit) − C(entry)` where `C(x)` is the sum of `rate·mark` over settlements at or before x.
Settlements are on the hour (DESIGN.md §3), so `C` is tabulated per hour and looked up by key.

Time is handled as epoch microseconds (BIGINT) inside the pipeline: exact integer arithmetic.
"""

from __future__ import annotations

US = 1_000_000
HOUR_US = 3600 * US
CUM_TYPE = "DECIMAL(38, 18)"
# A gap of a regular symbol is indexed slot by slot; past this many missing slots in one
# symbol, that symbol is priced with an ASOF join instead (same answers, no huge index).
MAX_MISSING_SLOTS = 2_000_000


def profile_sql(bar_interval_s: int | None) -> str:
    """One row per (symbol, interval) of `bars`: size, span, grid alignment and a content digest.

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
         min(CASE WHEN b.interval_s > 0 THEN epoch_us(b.ts) % (b.interval_s * {US}::BIGINT) END)
           AS min_mod,
         max(CASE WHEN b.interval_s > 0 THEN epoch_us(b.ts) % (b.interval_s * {US}::BIGINT) END)
           AS max_mod,
         bit_xor(hash(b.ts, b.open)) AS digest,
         count(*) FILTER (WHERE b.ts <= s.bars_last) AS prefix_n,
         bit_xor(hash(b.ts, b.open)) FILTER (WHERE b.ts <= s.bars_last) AS prefix_digest
  FROM bars b
  LEFT JOIN ledger_market_state s ON s.symbol = b.symbol AND s.interval_s = b.interval_s
  GROUP BY b.symbol, b.interval_s
)"""


def markets_sql(profile: str) -> str:
    """The chosen bar series per symbol, with the facts the next-bar arithmetic needs.

    `sid` is a small integer id (joins on it are cheaper than on text). `regular`: every bar
    sits on one grid (same phase modulo the interval). `gappy`: regular but with fewer bars
    than slots between the first and the last.
    """
    return f"""
SELECT CAST(row_number() OVER (ORDER BY symbol) AS INTEGER) AS sid, symbol, interval_s,
       interval_s * {US}::BIGINT AS iv_us, n, first_us, last_us, digest,
       coalesce(min_mod, 0) AS phase_us,
       (interval_s > 0 AND min_mod = max_mod) AS regular,
       (interval_s > 0 AND min_mod = max_mod
        AND n < (last_us - first_us) // nullif(interval_s * {US}::BIGINT, 0) + 1) AS gappy
FROM {profile} WHERE chosen"""


def chosen_bars_sql(markets: str, where: str = "") -> str:
    """(sid, us, open) of the bars reconciliation prices with."""
    cond = f"WHERE {where}" if where else ""
    return f"""
SELECT m.sid, epoch_us(b.ts) AS us, b.open
FROM bars b JOIN (SELECT sid, symbol, interval_s FROM {markets} {cond}) m
  ON m.symbol = b.symbol AND m.interval_s = b.interval_s"""


def gaps_sql(markets: str) -> str:
    """Holes in the regular series of gappy symbols: (sid, after_us, next_us, missing)."""
    return f"""
SELECT sid, prev_us AS after_us, us AS next_us, (us - prev_us) // iv_us - 1 AS missing
FROM (
  SELECT c.sid, c.us, m.iv_us, lag(c.us) OVER (PARTITION BY c.sid ORDER BY c.us) AS prev_us
  FROM ({chosen_bars_sql(markets, "gappy")}) c JOIN {markets} m ON m.sid = c.sid
)
WHERE us - prev_us > iv_us"""


def missing_slots_sql(markets: str, gaps: str) -> str:
    """(sid, slot_us, next_us): every missing grid slot, and the bar that ends its hole."""
    return f"""
SELECT g.sid, unnest(range(g.after_us + m.iv_us, g.next_us, m.iv_us)) AS slot_us, g.next_us
FROM {gaps} g JOIN {markets} m ON m.sid = g.sid"""


def grid_ceil_sql(t: str, m: str = "m") -> str:
    """The first grid slot at or after `t` (µs) for market alias `m`, never before its first bar."""
    x = f"greatest({t}, {m}.first_us)"
    return (f"({m}.phase_us + ({x} - {m}.phase_us + {m}.iv_us - 1) // nullif({m}.iv_us, 0) "
            f"* {m}.iv_us)")


def next_bar_sql(rel: str, t: str, out: str, markets: str, missing: str | None,
                 irregular: str | None) -> str:
    """`rel` plus `out`: open time (µs) of the first chosen bar opening at or after `rel.t`.

    NULL when there is no such bar yet, or `t` is NULL. `rel` must have `sid` (a market of
    `markets`). `missing` is the missing-slots relation (None when no symbol has holes);
    `irregular` the bars of symbols priced by ASOF (None when there are none).
    """
    slot = grid_ceil_sql(f"r.{t}")
    fixed = f"coalesce(h.next_us, {slot})" if missing else slot
    hole = f"LEFT JOIN {missing} h ON h.sid = r.sid AND h.slot_us = {slot}" if missing else ""
    regular = f"""
SELECT r.*, CASE WHEN r.{t} IS NULL OR {slot} > m.last_us THEN NULL ELSE {fixed} END AS {out}
FROM {rel} r JOIN {markets} m ON m.sid = r.sid AND m.regular
{hole}"""
    if not irregular:
        return regular
    asof = f"""
SELECT r.*, b.us AS {out}
FROM (SELECT r.* FROM {rel} r SEMI JOIN {markets} m ON m.sid = r.sid AND NOT m.regular) r
ASOF LEFT JOIN {irregular} b ON b.sid = r.sid AND b.us >= r.{t}"""
    return f"({regular})\nUNION ALL\n({asof})"


def funding_profile_sql(markets: str) -> str:
    """Per funding symbol: count, span, digest, whether every settlement is on the hour, the
    prefix aggregates against the stored state (see profile_sql), and the market's sid."""
    return f"""
SELECT m.sid, f.* FROM (
  SELECT f.symbol, count(*) AS n, min(epoch_us(f.ts)) AS first_us,
         max(epoch_us(f.ts)) AS last_us,
         bool_and(epoch_us(f.ts) % {HOUR_US} = 0) AS on_hour,
         count(*) FILTER (WHERE f.mark_price IS NULL) AS null_marks,
         bit_xor(hash(f.ts, f.funding_rate, f.mark_price)) AS digest,
         count(*) FILTER (WHERE f.ts <= s.funding_last) AS prefix_n,
         bit_xor(hash(f.ts, f.funding_rate, f.mark_price)) FILTER (WHERE f.ts <= s.funding_last)
           AS prefix_digest
  FROM funding f LEFT JOIN ledger_market_state s ON s.symbol = f.symbol
  GROUP BY f.symbol
) f LEFT JOIN {markets} m ON m.symbol = f.symbol"""


def settlements_sql(fprofile: str, mark_fallback: str | None) -> str:
    """(sid, us, rm, cum) for funding of priced markets: each settlement's `rate·mark` and the
    running sum, in exact decimal arithmetic (terms rounded to 1e-18): the sum then does not
    depend on how the engine evaluates the window, so C(exit) − C(entry) is the same number
    whether a leg was priced before or after later settlements arrived.

    `mark_fallback`, when given, is a relation (sid, us, open) with the open of the first bar at
    or after each settlement whose mark price is missing.
    """
    mark = "f.mark_price"
    join = ""
    if mark_fallback:
        mark = "coalesce(f.mark_price, mf.open)"
        join = f"LEFT JOIN {mark_fallback} mf ON mf.sid = fp.sid AND mf.us = epoch_us(f.ts)"
    return f"""
SELECT sid, us, rm,
       sum(CAST(rm AS {CUM_TYPE})) OVER (PARTITION BY sid ORDER BY us ROWS UNBOUNDED PRECEDING)
         AS cum
FROM (SELECT fp.sid, epoch_us(f.ts) AS us, f.funding_rate * {mark} AS rm
      FROM funding f JOIN {fprofile} fp ON fp.symbol = f.symbol AND fp.sid IS NOT NULL {join})"""


def funding_grid_sql(settlements: str, fprofile: str) -> str:
    """(sid, hour_us, cum): the running sum as of every hour from a market's first settlement to
    its last (on-hour markets only), so `C(x)` is an exact-key lookup. Each settlement covers
    the hours up to the next one."""
    return f"""
SELECT s.sid, unnest(range(s.us, coalesce(s.next_us, s.us + {HOUR_US}), {HOUR_US})) AS hour_us,
       s.cum
FROM (SELECT *, lead(us) OVER (PARTITION BY sid ORDER BY us) AS next_us FROM {settlements}) s
SEMI JOIN {fprofile} fp ON fp.sid = s.sid AND fp.on_hour"""


def funding_cum_sql(rel: str, t: str, out: str, fprofile: str, grid: str,
                    settlements: str, off_hour: bool) -> str:
    """`rel` plus `out` = C(rel.t): 0 before the first settlement (or without funding), the
    total after the last. `rel` must have `sid`."""
    hour = f"(r.{t} // {HOUR_US} * {HOUR_US})"
    on_hour = f"""
SELECT r.*, CASE WHEN r.{t} IS NULL THEN NULL
                 WHEN fp.sid IS NULL OR r.{t} < fp.first_us THEN CAST(0 AS {CUM_TYPE})
                 ELSE g.cum END AS {out}
FROM {rel} r
LEFT JOIN {fprofile} fp ON fp.sid = r.sid
LEFT JOIN {grid} g ON g.sid = r.sid AND g.hour_us = least({hour}, fp.last_us)
WHERE fp.sid IS NULL OR fp.on_hour"""
    if not off_hour:
        return on_hour
    asof = f"""
SELECT r.*, CASE WHEN r.{t} IS NULL THEN NULL ELSE coalesce(s.cum, CAST(0 AS {CUM_TYPE})) END
         AS {out}
FROM (SELECT r.* FROM {rel} r SEMI JOIN {fprofile} fp ON fp.sid = r.sid AND NOT fp.on_hour) r
ASOF LEFT JOIN {settlements} s ON s.sid = r.sid AND s.us <= r.{t}"""
    return f"({on_hour})\nUNION ALL\n({asof})"
