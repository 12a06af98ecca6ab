"""Pricing alpha events into legs (DESIGN.md §4), as one relational query (SQL text, no I/O).

Per leg, with direction d (LONG +1, SHORT −1) and fee rate f per side:
- entry: the first bar opening at or after the signal; exit: the first bar opening at or after
  entry + horizon (holes in the data: the next bar that exists; none yet: the leg stays open);
- price leg, freqtrade-style: LONG ((exit·(1−f)) / (entry·(1+f)) − 1)·1e4,
  SHORT (1 − (exit·(1+f)) / (entry·(1−f)))·1e4; gross is the same with f = 0, and
  fee_bps = price leg − gross;
- funding: −d · Σ rate_t·mark_t / entry · 1e4 over settlements entry < t ≤ exit;
- paper_pnl_bps = price leg + funding; pnl_usd = paper · size_usd / 1e4.
FLAT opens nothing: realized at 0 with no prices. A leg that cannot be priced (no ts, symbol not
resolved, no bars, signal before the data) is `unpriced` with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from alphatrace.ledger.market import (
    chosen_bars_sql,
    funding_cum_sql,
    next_bar_sql,
)


@dataclass(frozen=True)
class Relations:
    """Names of the relations one reconcile prepared (temp tables / registered Arrow)."""

    todo: str = "_rc_todo"          # alpha events to price
    params: str = "_rc_params"      # effective policy values per agent (NULL agent: default)
    symmap: str = "_rc_symmap"      # (alias, symbol, status, candidates)
    markets: str = "_rc_markets"    # chosen bar series per symbol
    fprofile: str = "_rc_fprofile"  # funding profile per symbol
    fgrid: str = "_rc_fgrid"        # hourly running funding sums
    settlements: str = "_rc_settle"
    missing: str | None = None      # missing grid slots (None: no holes anywhere)
    irregular: str | None = None    # bars of symbols priced by ASOF (None: none)
    off_hour_funding: bool = False


def _str_lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def classify_sql(r: Relations, bar_interval_s: int | None) -> str:
    """Signals joined to their policy values and market, with the reason a leg is unpriced."""
    no_bars = ("'no bars for ' || symbol" if bar_interval_s is None
               else f"'no {int(bar_interval_s)}s bars for ' || symbol || ' (policy bar_interval)'")
    return f"""
SELECT *, CASE
    WHEN ts IS NULL THEN 'signal has no ts'
    WHEN direction NOT IN ('LONG', 'SHORT', 'FLAT') THEN 'unknown direction ' || direction
    WHEN sym_status = 'ambiguous' THEN 'ambiguous symbol ' || event_symbol || ' (matches '
         || array_to_string(candidates, ', ') || '); add an alias'
    WHEN symbol IS NULL THEN 'unknown symbol ' || coalesce(event_symbol, 'NULL')
         || ': no imported market matches it'
    WHEN d = 0 THEN NULL
    WHEN interval_s IS NULL THEN {no_bars}
    WHEN t_us < first_us - iv_us THEN 'signal before the first bar of ' || symbol
         || ' (' || strftime(make_timestamp(first_us), '%Y-%m-%dT%H:%M:%SZ') || ')'
  END AS reason
FROM (
  SELECT a.event_id, a.run_id, a.agent, a.strategy, a.ts, a.symbol AS event_symbol,
         sm.symbol, sm.status AS sym_status, sm.candidates,
         upper(trim(a.direction)) AS direction,
         CASE upper(trim(a.direction)) WHEN 'LONG' THEN 1 WHEN 'SHORT' THEN -1 ELSE 0 END AS d,
         a.score_final, a.regime,
         coalesce(a.size_usd, po.size_usd, pd.size_usd) AS size_usd,
         coalesce(a.horizon_s, po.horizon_s, pd.horizon_s) AS horizon_s,
         coalesce(po.fee_rate, pd.fee_rate) AS fee_rate,
         coalesce(po.include_funding, pd.include_funding) AS include_funding,
         m.interval_s, m.first_us, m.iv_us, epoch_us(a.ts) AS t_us, a.file_id, a.line
  FROM {r.todo} a
  LEFT JOIN {r.symmap} sm ON sm.alias = a.symbol
  LEFT JOIN {r.params} po ON po.agent = a.agent
  CROSS JOIN (SELECT * FROM {r.params} WHERE agent IS NULL) pd
  LEFT JOIN {r.markets} m ON m.symbol = sm.symbol
)"""


PRICE_LEG = """CASE d
    WHEN 1 THEN ((exit_price * (1 - fee_rate)) / (entry_price * (1 + fee_rate)) - 1) * 1e4
    ELSE (1 - (exit_price * (1 + fee_rate)) / (entry_price * (1 - fee_rate))) * 1e4 END"""
GROSS = """CASE d WHEN 1 THEN (exit_price / entry_price - 1) * 1e4
    ELSE (1 - exit_price / entry_price) * 1e4 END"""
FUNDING = "-d * (c_exit - c_entry) / entry_price * 1e4"

LEG_COLUMNS = (
    "event_id", "run_id", "agent", "strategy", "ts", "symbol", "market_symbol", "direction",
    "score_final", "regime", "size_usd", "horizon_s", "fee_rate", "include_funding",
    "interval_s", "entry_ts", "entry_price", "exit_ts", "exit_price", "gross_bps", "fee_bps",
    "funding_bps", "paper_pnl_bps", "pnl_usd", "status", "reason", "policy_hash",
    "fingerprint", "file_id", "line",
)


def priced_legs_sql(r: Relations, policy_hash: str, bar_interval_s: int | None) -> str:
    """Every signal of `r.todo` as a leg row with the columns of the `legs` table."""
    entry = next_bar_sql("pricable", "t_us", "entry_us", r.markets, r.missing, r.irregular)
    exit_ = next_bar_sql("targets", "target_us", "exit_us", r.markets, r.missing, r.irregular)
    bars = chosen_bars_sql(r.markets)
    c_entry = funding_cum_sql("priced", "f_entry_us", "c_entry", r.fprofile, r.fgrid,
                              r.settlements, r.off_hour_funding)
    c_exit = funding_cum_sql("with_entry_cum", "f_exit_us", "c_exit", r.fprofile, r.fgrid,
                             r.settlements, r.off_hour_funding)
    ph = _str_lit(policy_hash)
    return f"""
WITH classified AS ({classify_sql(r, bar_interval_s)}),
pricable AS (SELECT * FROM classified WHERE reason IS NULL AND d <> 0),
entries AS ({entry}),
targets AS (SELECT *, entry_us + CAST(round(horizon_s * 1e6) AS BIGINT) AS target_us FROM entries),
exits AS ({exit_}),
bars AS ({bars}),
priced AS (
  SELECT x.*, be.open AS entry_price, bx.open AS exit_price,
         CASE WHEN x.include_funding AND bx.open IS NOT NULL THEN x.entry_us END AS f_entry_us,
         CASE WHEN x.include_funding AND bx.open IS NOT NULL THEN x.exit_us END AS f_exit_us
  FROM exits x
  LEFT JOIN bars be ON be.symbol = x.symbol AND be.us = x.entry_us
  LEFT JOIN bars bx ON bx.symbol = x.symbol AND bx.us = x.exit_us
),
with_entry_cum AS ({c_entry}),
with_cum AS ({c_exit}),
computed AS (
  SELECT *,
    CASE WHEN exit_price IS NOT NULL THEN {GROSS} END AS gross_bps,
    CASE WHEN exit_price IS NOT NULL THEN {PRICE_LEG} END AS price_bps,
    CASE WHEN exit_price IS NULL THEN NULL WHEN include_funding THEN {FUNDING} ELSE 0.0 END
      AS funding_bps
  FROM with_cum
),
final_priced AS (
  SELECT *, price_bps - gross_bps AS fee_bps, price_bps + funding_bps AS paper_pnl_bps,
         CASE WHEN exit_price IS NOT NULL THEN 'realized' ELSE 'open' END AS status,
         CASE WHEN entry_us IS NULL THEN 'no bar of ' || symbol || ' at or after the signal yet'
              WHEN exit_price IS NULL THEN 'awaiting the exit bar of ' || symbol || ' at or after '
                   || strftime(make_timestamp(target_us), '%Y-%m-%dT%H:%M:%SZ') END AS reason2
  FROM computed
)
SELECT event_id, run_id, agent, strategy, ts, event_symbol AS symbol, symbol AS market_symbol,
       direction, score_final, regime, size_usd, horizon_s, fee_rate, include_funding,
       interval_s, make_timestamp(entry_us) AS entry_ts, entry_price,
       make_timestamp(exit_us) AS exit_ts, exit_price, gross_bps, fee_bps, funding_bps,
       paper_pnl_bps, paper_pnl_bps * size_usd / 1e4 AS pnl_usd, status, reason2 AS reason,
       {ph} AS policy_hash,
       hash({ph}, symbol, interval_s, size_usd, horizon_s, fee_rate, include_funding,
            entry_us, entry_price, exit_us, exit_price, c_entry, c_exit) AS fingerprint,
       file_id, line
FROM final_priced
UNION ALL
SELECT event_id, run_id, agent, strategy, ts, event_symbol AS symbol, symbol AS market_symbol,
       direction, score_final, regime, size_usd, horizon_s, fee_rate, include_funding,
       interval_s, NULL::TIMESTAMP AS entry_ts, NULL::DOUBLE AS entry_price,
       NULL::TIMESTAMP AS exit_ts, NULL::DOUBLE AS exit_price,
       CASE WHEN reason IS NULL THEN 0.0 END AS gross_bps,
       CASE WHEN reason IS NULL THEN 0.0 END AS fee_bps,
       CASE WHEN reason IS NULL THEN 0.0 END AS funding_bps,
       CASE WHEN reason IS NULL THEN 0.0 END AS paper_pnl_bps,
       CASE WHEN reason IS NULL THEN 0.0 END AS pnl_usd,
       CASE WHEN reason IS NULL THEN 'realized' ELSE 'unpriced' END AS status, reason,
       {ph} AS policy_hash,
       hash({ph}, symbol, interval_s, size_usd, horizon_s, fee_rate, include_funding, reason)
         AS fingerprint,
       file_id, line
FROM classified WHERE NOT (reason IS NULL AND d <> 0)"""
