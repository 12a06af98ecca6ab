"""Pricing alpha events into legs (docs/architecture.md §Reconciliation), as relations (SQL text, no I/O); the entry
and exit bars and funding settlements of each signal come from `locate`.

Per leg, with direction d (LONG +1, SHORT −1) and fee rate f per side:
- entry: the first bar opening at or after the signal; exit: the first bar opening at or after
  entry + horizon (holes in the data: the next bar that exists; none yet: the leg stays open);
- price leg, freqtrade-style: LONG ((exit·(1−f)) / (entry·(1+f)) − 1)·1e4,
  SHORT (1 − (exit·(1+f)) / (entry·(1−f)))·1e4; gross is the same with f = 0, and
  fee_bps = price leg − gross;
- funding: −d · Σ rate_t·mark_t / entry · 1e4 over settlements entry < t ≤ exit;
- paper_pnl_bps = price leg + funding; pnl_usd = paper · size_usd / 1e4.
FLAT opens nothing: realized at 0 with no prices. A leg that cannot be priced (no ts — FLAT
included —, symbol not resolved, no bars, signal one bar or more before the first bar, so its
entry bar is unknown) is `unpriced` with a one-line reason. A leg priced or awaiting prices
records the label of the bar interval it is priced with (`bar_interval`, e.g. '15m'), and
the reasons of open legs name it.

The SQL is written once over a `Dialect` (`alphatrace.engines`): the embedded engine runs it on
the store, `alphatrace reconcile --engine spark` on Spark, with the same `locate` kernel between
the two halves. A signal's key through the steps is its `event_id` (no engine row ids). The
`fingerprint` column is not SQL: `ledger.fingerprint` adds it to the rows this builds.
"""

from __future__ import annotations

from dataclasses import dataclass

from alphatrace.engines.dialect import Dialect
from alphatrace.engines.duckdb import DUCKDB
from alphatrace.sql import lit


@dataclass(frozen=True)
class Relations:
    """Names of the relations one reconcile prepared (temp tables / registered Arrow)."""

    todo: str = "_rc_todo"          # alpha events to price
    params: str = "_rc_params"      # effective policy values per agent (NULL agent: default)
    symmap: str = "_rc_symmap"      # (alias, symbol, status, candidates)
    markets: str = "_rc_markets"    # chosen bar series per symbol
    settlements: str = "_rc_settle"  # funding settlements with their running sums (cum)


# A signal's entry bar is unknown when the signal is one bar or more before the first bar we
# have (first − t ≥ one bar): it would enter a bar we do not have. Exactly one bar before, it
# enters that missing bar, not the first one a bar late. Ticks have no bar length: any signal
# before the first tick.
_BEFORE_DATA = "{first} - {t} >= greatest({iv}, 1)"


def classify_sql(r: Relations, bar_interval_s: int | None, d: Dialect = DUCKDB) -> str:
    """Signals joined to their policy values and market, with the reason a leg is unpriced.

    `event_id` (the signal's key) is what the pricing steps carry and join on.
    """
    no_bars = ("'no bars for ' || symbol" if bar_interval_s is None
               else f"'no {int(bar_interval_s)}s bars for ' || symbol || ' (policy bar_interval)'")
    before_data = _BEFORE_DATA.format(t="t_us", first="first_us", iv="iv_us")
    first_bar = d.format_ts(d.ts_from_us("first_us"))
    return f"""
SELECT *, CASE
    WHEN ts IS NULL THEN 'signal has no ts'
    WHEN direction NOT IN ('LONG', 'SHORT', 'FLAT') THEN 'unknown direction ' || direction
    WHEN sym_status = 'ambiguous' THEN 'ambiguous symbol ' || event_symbol || ' (matches '
         || {d.join_array("candidates", ", ")} || '); add an alias'
    WHEN symbol IS NULL THEN 'unknown symbol ' || coalesce(event_symbol, 'NULL')
         || ': no imported market matches it'
    WHEN d = 0 THEN NULL
    WHEN sid IS NULL THEN {no_bars}
    WHEN {before_data}
      THEN 'signal before the first bar of ' || symbol || ' (' || bar_interval
         || ' bars from ' || {first_bar}
         || '): its entry bar is unknown'
  END AS reason
FROM (
  SELECT a.event_id, a.run_id, a.agent, a.strategy, a.ts,
         a.symbol AS event_symbol, sm.symbol, sm.status AS sym_status, sm.candidates,
         upper(trim(a.direction)) AS direction,
         CASE upper(trim(a.direction)) WHEN 'LONG' THEN 1 WHEN 'SHORT' THEN -1 ELSE 0 END AS d,
         a.score_final, a.regime,
         coalesce(a.size_usd, po.size_usd, pd.size_usd) AS size_usd,
         coalesce(a.horizon_s, po.horizon_s, pd.horizon_s) AS horizon_s,
         coalesce(po.fee_rate, pd.fee_rate) AS fee_rate,
         coalesce(po.include_funding, pd.include_funding) AS include_funding,
         m.sid, m.interval_s, m.bar_interval, m.first_us, m.iv_us, {d.epoch_us("a.ts")} AS t_us,
         a.file_id, a.line
  FROM {r.todo} a
  LEFT JOIN {r.symmap} sm ON sm.alias = a.symbol
  LEFT JOIN {r.params} po ON po.agent = a.agent
  CROSS JOIN (SELECT * FROM {r.params} WHERE agent IS NULL) pd
  LEFT JOIN {r.markets} m ON m.symbol = sm.symbol
)"""


# A zero entry price (bad data) gives NULL numbers rather than a division error.
_E = "nullif(entry_price, 0)"
PRICE_LEG = f"""CASE d
    WHEN 1 THEN ((exit_price * (1 - fee_rate)) / ({_E} * (1 + fee_rate)) - 1) * 1e4
    ELSE (1 - (exit_price * (1 + fee_rate)) / ({_E} * (1 - fee_rate))) * 1e4 END"""
GROSS = f"""CASE d WHEN 1 THEN (exit_price / {_E} - 1) * 1e4
    ELSE (1 - exit_price / {_E}) * 1e4 END"""
FUNDING = f"-d * (c_exit - c_entry) / {_E} * 1e4"

LEG_COLUMNS = (
    "event_id", "run_id", "agent", "strategy", "ts", "symbol", "market_symbol", "direction",
    "score_final", "regime", "size_usd", "horizon_s", "fee_rate", "include_funding",
    "interval_s", "bar_interval", "entry_ts", "entry_price", "exit_ts", "exit_price",
    "gross_bps", "fee_bps", "funding_bps", "paper_pnl_bps", "pnl_usd", "status", "reason",
    "policy_hash", "fingerprint", "file_id", "line",
)
# What `priced_legs_sql` returns: every leg column but the fingerprint (`ledger.fingerprint`).
PRICED_COLUMNS = tuple(c for c in LEG_COLUMNS if c != "fingerprint")


def horizon_us(seconds: str) -> str:
    """SQL: a horizon in seconds as the whole microseconds `locate` adds to the entry: the one
    rounding the pricing (either engine) and reconcile's staleness test use."""
    return f"CAST(round({seconds} * 1e6) AS BIGINT)"


def narrow_sql(r: Relations, d: Dialect = DUCKDB) -> str:
    """The priceable signals (ts, resolved symbol with bars, not before the data, not FLAT)
    with only what pricing needs. Same conditions as `classify_sql` leaving `reason` NULL and
    d ≠ 0, restated so the wide relation is scanned once and never materialized."""
    t_us = d.epoch_us("a.ts")
    before_data = _BEFORE_DATA.format(t=t_us, first="m.first_us", iv="m.iv_us")
    return f"""
SELECT a.event_id, m.sid,
       CASE upper(trim(a.direction)) WHEN 'LONG' THEN 1 ELSE -1 END AS d,
       {t_us} AS t_us,
       {horizon_us("coalesce(a.horizon_s, po.horizon_s, pd.horizon_s)")} AS h_us,
       coalesce(po.fee_rate, pd.fee_rate) AS fee_rate,
       coalesce(po.include_funding, pd.include_funding) AS include_funding
FROM {r.todo} a
JOIN {r.symmap} sm ON sm.alias = a.symbol AND sm.symbol IS NOT NULL AND sm.status <> 'ambiguous'
JOIN {r.markets} m ON m.symbol = sm.symbol
LEFT JOIN {r.params} po ON po.agent = a.agent
CROSS JOIN (SELECT * FROM {r.params} WHERE agent IS NULL) pd
WHERE a.ts IS NOT NULL AND upper(trim(a.direction)) IN ('LONG', 'SHORT')
  AND NOT ({before_data})"""


_PRICED_KEEP = "event_id, entry_us, entry_price, exit_us, exit_price, target_us, c_entry, c_exit"


def priced_sql(r: Relations, exits: str, keep: str = _PRICED_KEEP) -> str:
    """(`keep`: event_id, entry/exit prices, running sums; then gross, price leg, funding) from
    `exits`: signals with their bars and settlements (`locate.exits`); a signal without them
    gets NULLs. C(x) is the running sum of the settlement found for x, 0 when there is none."""
    zero = "CAST(0 AS DOUBLE)"
    return f"""
with_cum AS (
  SELECT x.*,
    CASE WHEN x.funded THEN coalesce(se.cum, {zero}) END AS c_entry,
    CASE WHEN x.funded THEN coalesce(sx.cum, {zero}) END AS c_exit
  FROM {exits} x
  LEFT JOIN {r.settlements} se ON se.i = x.entry_settle
  LEFT JOIN {r.settlements} sx ON sx.i = x.exit_settle
),
priced AS (
  SELECT {keep},
    CASE WHEN exit_price IS NOT NULL THEN {GROSS} END AS gross_bps,
    CASE WHEN exit_price IS NULL THEN NULL WHEN include_funding THEN {FUNDING} ELSE 0.0 END
      AS funding_bps,
    CASE WHEN exit_price IS NOT NULL THEN {PRICE_LEG} END AS price_bps
  FROM with_cum
)"""


def priced_legs_sql(r: Relations, policy_hash: str, bar_interval_s: int | None,
                    exits: str, d: Dialect = DUCKDB) -> str:
    """Every signal of `r.todo` as a leg row with the columns of the `legs` table but the
    fingerprint (`PRICED_COLUMNS`); `exits` is the result of `locate.exits` on
    `narrow_sql(r)`."""
    return f"""
WITH classified AS ({classify_sql(r, bar_interval_s, d)}),
{priced_sql(r, exits)}
{_legs_select(policy_hash, d, 'c', 'p')}FROM classified c LEFT JOIN priced p ON p.event_id = c.event_id"""


def classified_sql(r: Relations, bar_interval_s: int | None, d: Dialect = DUCKDB) -> str:
    """Every signal of `r.todo` classified (`classify_sql`), with the columns the leg rows read
    and what `locate.exits` needs (`sid`, `t_us`, `h_us`, `include_funding`), `priceable`
    where `narrow_sql` keeps the signal (no reason, not FLAT). One pass of `locate` over
    these rows, pricing the priceable ones, gives what `wide_legs_sql` reads: the pricing
    then needs no join of the signals with their exits (on Spark, a broadcast of every priced
    signal or a shuffle of every signal on both sides)."""
    return f"""
SELECT event_id, run_id, agent, strategy, ts, event_symbol, symbol, direction, d, score_final,
       regime, size_usd, horizon_s, fee_rate, include_funding, interval_s, bar_interval, reason,
       file_id, line, sid, t_us, {horizon_us("horizon_s")} AS h_us,
       coalesce(reason IS NULL AND d <> 0, false) AS priceable
FROM ({classify_sql(r, bar_interval_s, d)}) c"""


def wide_legs_sql(r: Relations, policy_hash: str, exits: str, d: Dialect = DUCKDB) -> str:
    """`priced_legs_sql` over `exits`, the rows of `classified_sql(r)` with the columns of
    `locate.exits` (NULL where the signal is not priceable): the same rows, without a join."""
    return f"""
WITH {priced_sql(r, exits, keep="*")}
{_legs_select(policy_hash, d, "w", "w")}FROM priced w"""


def _legs_select(policy_hash: str, d: Dialect, c: str, p: str) -> str:
    """The SELECT list of a leg row: `c` names the classified signal, `p` its prices."""
    ph = lit(policy_hash)
    target = d.format_ts(d.ts_from_us(f"{p}.target_us"))
    return f"""SELECT {c}.event_id, {c}.run_id, {c}.agent, {c}.strategy, {c}.ts, {c}.event_symbol AS symbol,
       {c}.symbol AS market_symbol, {c}.direction, {c}.score_final, {c}.regime, {c}.size_usd,
       {c}.horizon_s, {c}.fee_rate, {c}.include_funding, {c}.interval_s,
       CASE WHEN {c}.reason IS NULL AND {c}.d <> 0 THEN {c}.bar_interval END AS bar_interval,
       {d.ts_from_us(p + ".entry_us")} AS entry_ts, {p}.entry_price,
       {d.ts_from_us(p + ".exit_us")} AS exit_ts, {p}.exit_price,
       CASE WHEN {c}.reason IS NULL AND {c}.d = 0 THEN 0.0 ELSE {p}.gross_bps END AS gross_bps,
       CASE WHEN {c}.reason IS NULL AND {c}.d = 0 THEN 0.0 ELSE {p}.price_bps - {p}.gross_bps END
         AS fee_bps,
       CASE WHEN {c}.reason IS NULL AND {c}.d = 0 THEN 0.0 ELSE {p}.funding_bps END AS funding_bps,
       CASE WHEN {c}.reason IS NULL AND {c}.d = 0 THEN 0.0 ELSE {p}.price_bps + {p}.funding_bps END
         AS paper_pnl_bps,
       CASE WHEN {c}.reason IS NULL AND {c}.d = 0 THEN 0.0
            ELSE ({p}.price_bps + {p}.funding_bps) * {c}.size_usd / 1e4 END AS pnl_usd,
       CASE WHEN {c}.reason IS NOT NULL THEN 'unpriced'
            WHEN {c}.d = 0 OR {p}.exit_price IS NOT NULL THEN 'realized'
            ELSE 'open' END AS status,
       CASE WHEN {c}.reason IS NOT NULL THEN {c}.reason
            WHEN {c}.d = 0 OR {p}.exit_price IS NOT NULL THEN NULL
            WHEN {p}.entry_us IS NULL THEN 'no bar of ' || {c}.symbol || ' at or after the signal yet'
                 || ' (' || {c}.bar_interval || ' bars)'
            ELSE 'awaiting the exit bar of ' || {c}.symbol || ' at or after ' || {target}
                 || ' (' || {c}.bar_interval || ' bars)' END AS reason,
       {ph} AS policy_hash, {c}.file_id, {c}.line
"""
