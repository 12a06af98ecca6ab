"""The ledger (DESIGN.md §5): one row per run from legs, telemetry and pnl (SQL text, no I/O).

Rules (docs/ledger.md has the full text):
- status: `no_signal` without alpha events; else `unpriced` if any leg is, else `open` if any
  leg is, else `realized`.
- weights: a run's bps (gross, fee, funding, paper) are the size-weighted means of its non-FLAT
  legs (FLAT deploys no capital, so it carries no weight); USD is the sum. All-FLAT runs are 0.
- external pnl: per (run, market symbol) the latest event wins (highest revision, then later
  ts, then later ingest). A run-level event (no symbol) is the run's figure; otherwise the
  per-symbol figures are size-weighted, each by its symbol's legs (by the agent's default size
  when the run has no leg on that symbol).
- realized_pnl_bps = external when present, else paper (realized runs only).
- telemetry: tokens, cost and errors are sums; latency is the sum of latencies unless every
  record has start_ts and end_ts, then max(end) − min(start).
Floating-point sums add their terms in ascending order of value (`_fsum`): the result does not
depend on how the engine split the rows between threads, so a rebuild is bit-identical.
"""

from __future__ import annotations

LEDGER_COLUMNS = (
    "run_id", "agent", "strategy", "ts", "symbols", "direction", "score_final", "regime",
    "latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "model", "entry_price",
    "exit_price", "gross_bps", "fee_bps", "funding_bps", "paper_pnl_bps", "realized_pnl_bps",
    "pnl_source", "size_usd", "pnl_usd", "net_usd", "net_bps", "execution_gap_bps", "status",
    "policy_hash", "n_legs", "n_telemetry", "n_pnl", "entry_ts", "exit_ts",
    "external_pnl_bps", "reason",
)

_LEG_ORDER = "ts NULLS LAST, file_id NULLS LAST, line NULLS LAST, event_id"
_TEL_ORDER = "coalesce(ts, start_ts) NULLS LAST, file_id NULLS LAST, line NULLS LAST, event_id"


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _fsum(expr: str, where: str | None = None) -> str:
    """A deterministic float sum: terms sorted by value, then added (NULLs ignored)."""
    filt = f" FILTER (WHERE {where})" if where else ""
    return f"list_sum(list_sort(list({expr}){filt}))"


def _weighted(part: str) -> str:
    """Size-weighted run bps of realized runs: a single weighted leg's own value (exactly), the
    weighted mean for several, 0 when every leg is FLAT."""
    return (f"CASE WHEN status <> 'realized' THEN NULL WHEN n_weighted = 0 THEN 0.0 "
            f"WHEN n_weighted = 1 THEN one_{part} ELSE w_{part} / deployed_usd END")


def ledger_sql(policy_hash: str, pnl_symmap: str = "_rc_pnlmap",
               params: str = "_rc_params") -> str:
    """Ledger rows (columns LEDGER_COLUMNS) ordered by (ts, run_id)."""
    w = "CASE WHEN direction <> 'FLAT' THEN size_usd END"
    return f"""
WITH
leg_run AS (
  SELECT run_id, count(*) AS n_legs,
    first(agent ORDER BY {_LEG_ORDER}) AS agent,
    first(strategy ORDER BY strategy IS NULL, {_LEG_ORDER}) AS strategy,
    min(ts) AS ts,
    array_to_string(list_sort(list_distinct(list(coalesce(market_symbol, symbol)))), ',')
      AS symbols,
    CASE WHEN min(direction) = max(direction) THEN min(direction) ELSE 'MIXED' END AS direction,
    first(score_final ORDER BY {_LEG_ORDER}) AS score_final,
    first(regime ORDER BY {_LEG_ORDER}) AS regime,
    count(*) FILTER (WHERE status = 'unpriced') AS n_unpriced,
    count(*) FILTER (WHERE status = 'open') AS n_open,
    first(reason ORDER BY status <> 'unpriced', reason IS NULL, {_LEG_ORDER}) AS reason,
    any_value(entry_price) AS one_entry_price,
    any_value(exit_price) AS one_exit_price,
    min(entry_ts) AS entry_ts, max(exit_ts) AS exit_ts,
    count({w}) AS n_weighted,
    {_fsum(w)} AS deployed_usd,
    {_fsum(f"{w} * gross_bps")} AS w_gross,
    {_fsum(f"{w} * fee_bps")} AS w_fee,
    {_fsum(f"{w} * funding_bps")} AS w_funding,
    {_fsum(f"{w} * paper_pnl_bps")} AS w_paper,
    any_value(gross_bps) FILTER (WHERE direction <> 'FLAT') AS one_gross,
    any_value(fee_bps) FILTER (WHERE direction <> 'FLAT') AS one_fee,
    any_value(funding_bps) FILTER (WHERE direction <> 'FLAT') AS one_funding,
    any_value(paper_pnl_bps) FILTER (WHERE direction <> 'FLAT') AS one_paper,
    {_fsum("pnl_usd")} AS paper_usd
  FROM legs GROUP BY run_id
),
leg_sym AS (
  SELECT run_id, market_symbol, {_fsum(w)} AS size_usd
  FROM legs WHERE market_symbol IS NOT NULL GROUP BY run_id, market_symbol
),
tel AS (
  SELECT run_id, count(*) AS n_telemetry,
    first(agent ORDER BY {_TEL_ORDER}) AS agent,
    first(strategy ORDER BY strategy IS NULL, {_TEL_ORDER}) AS strategy,
    min(coalesce(ts, start_ts)) AS ts,
    CASE WHEN count(start_ts) = count(*) AND count(end_ts) = count(*)
         THEN date_diff('microsecond', min(start_ts), max(end_ts)) / 1000.0
         ELSE {_fsum("latency_ms")} END AS latency_ms,
    sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
    {_fsum("cost_usd")} AS cost_usd, sum(errors) AS errors,
    nullif(array_to_string(list_sort(list_distinct(list(model))), ','), '') AS model
  FROM telemetry GROUP BY run_id
),
pnl_keyed AS (
  SELECT p.*, CASE WHEN p.symbol IS NOT NULL THEN
           coalesce(sm.symbol, nullif(regexp_replace(upper(split_part(trim(p.symbol), ':', 1)),
                                                     '[^A-Z0-9]', '', 'g'), '')) END AS key
  FROM pnl p LEFT JOIN {pnl_symmap} sm ON sm.alias = p.symbol
),
pnl_latest AS (
  SELECT * FROM pnl_keyed
  QUALIFY row_number() OVER (
    PARTITION BY run_id, key
    ORDER BY revision DESC, ts DESC NULLS LAST, file_id DESC NULLS LAST, line DESC NULLS LAST,
             event_id DESC) = 1
),
pnl_run AS (
  SELECT p.run_id,
    first(p.agent ORDER BY p.ts NULLS LAST, p.file_id, p.line, p.event_id) AS agent,
    first(p.strategy ORDER BY p.strategy IS NULL, p.ts NULLS LAST, p.file_id, p.line,
          p.event_id) AS strategy,
    min(p.ts) AS ts,
    count(*) AS n_pnl
  FROM pnl p GROUP BY p.run_id
),
ext AS (
  SELECT l.run_id,
    max(l.realized_pnl_bps) FILTER (WHERE l.key IS NULL) AS run_level_bps,
    count(*) FILTER (WHERE l.key IS NOT NULL) AS n_symbols,
    {_fsum("l.realized_pnl_bps * coalesce(ls.size_usd, po.size_usd, d0.size_usd)",
           "l.key IS NOT NULL")} AS w_ext,
    {_fsum("coalesce(ls.size_usd, po.size_usd, d0.size_usd)", "l.key IS NOT NULL")} AS w_sum
  FROM pnl_latest l
  LEFT JOIN leg_sym ls ON ls.run_id = l.run_id AND ls.market_symbol = l.key
  LEFT JOIN leg_run lr ON lr.run_id = l.run_id
  LEFT JOIN pnl_run pr ON pr.run_id = l.run_id
  LEFT JOIN {params} po ON po.agent = coalesce(lr.agent, pr.agent)
  CROSS JOIN (SELECT size_usd FROM {params} WHERE agent IS NULL) d0
  GROUP BY l.run_id
),
runs AS (
  SELECT run_id FROM leg_run UNION SELECT run_id FROM tel UNION SELECT run_id FROM pnl_run
),
joined AS (
  SELECT r.run_id,
    coalesce(lr.agent, t.agent, pr.agent) AS agent,
    coalesce(lr.strategy, t.strategy, pr.strategy) AS strategy,
    coalesce(lr.ts, least(t.ts, pr.ts)) AS ts,
    lr.symbols, lr.direction, lr.score_final, lr.regime,
    t.latency_ms, t.tokens_in, t.tokens_out, t.cost_usd, t.errors, t.model,
    CASE WHEN lr.n_legs = 1 THEN lr.one_entry_price END AS entry_price,
    CASE WHEN lr.n_legs = 1 THEN lr.one_exit_price END AS exit_price,
    CASE WHEN lr.run_id IS NULL THEN 'no_signal'
         WHEN lr.n_unpriced > 0 THEN 'unpriced'
         WHEN lr.n_open > 0 THEN 'open'
         ELSE 'realized' END AS status,
    lr.deployed_usd, lr.n_weighted, lr.w_gross, lr.w_fee, lr.w_funding, lr.w_paper,
    lr.one_gross, lr.one_fee, lr.one_funding, lr.one_paper, lr.paper_usd,
    coalesce(e.run_level_bps, e.w_ext / nullif(e.w_sum, 0)) AS external_pnl_bps,
    CASE WHEN e.run_level_bps IS NOT NULL THEN coalesce(nullif(lr.deployed_usd, 0), po.size_usd, d0.size_usd)
         ELSE e.w_sum END AS external_size_usd,
    coalesce(lr.n_legs, 0) AS n_legs, coalesce(t.n_telemetry, 0) AS n_telemetry,
    coalesce(pr.n_pnl, 0) AS n_pnl, lr.entry_ts, lr.exit_ts,
    CASE WHEN lr.run_id IS NOT NULL THEN lr.reason
         WHEN t.run_id IS NOT NULL THEN 'no alpha event (telemetry only)'
         ELSE 'no alpha event (pnl only: unknown run)' END AS reason
  FROM runs r
  LEFT JOIN leg_run lr ON lr.run_id = r.run_id
  LEFT JOIN tel t ON t.run_id = r.run_id
  LEFT JOIN pnl_run pr ON pr.run_id = r.run_id
  LEFT JOIN ext e ON e.run_id = r.run_id
  LEFT JOIN {params} po ON po.agent = coalesce(lr.agent, t.agent, pr.agent)
  CROSS JOIN (SELECT size_usd FROM {params} WHERE agent IS NULL) d0
),
valued AS (
  SELECT *,
    {_weighted("gross")} AS gross_bps,
    {_weighted("fee")} AS fee_bps,
    {_weighted("funding")} AS funding_bps,
    {_weighted("paper")} AS paper_pnl_bps
  FROM joined
),
sourced AS (
  SELECT *,
    coalesce(external_pnl_bps, paper_pnl_bps) AS realized_pnl_bps,
    CASE WHEN external_pnl_bps IS NOT NULL THEN 'external'
         WHEN paper_pnl_bps IS NOT NULL THEN 'reconciled' END AS pnl_source,
    CASE WHEN external_pnl_bps IS NOT NULL THEN external_size_usd
         WHEN status = 'no_signal' THEN NULL
         ELSE coalesce(deployed_usd, 0.0) END AS size_usd_
  FROM valued
),
usd AS (
  SELECT *,
    CASE WHEN pnl_source = 'external' THEN external_pnl_bps * size_usd_ / 1e4
         WHEN pnl_source = 'reconciled' THEN paper_usd
         WHEN status = 'no_signal' THEN 0.0 END AS pnl_usd
  FROM sourced
)
SELECT run_id, agent, strategy, ts, symbols, direction, score_final, regime, latency_ms,
       tokens_in, tokens_out, cost_usd, errors, model, entry_price, exit_price, gross_bps,
       fee_bps, funding_bps, paper_pnl_bps, realized_pnl_bps, pnl_source,
       size_usd_ AS size_usd, pnl_usd,
       pnl_usd - coalesce(cost_usd, 0.0) AS net_usd,
       CASE WHEN realized_pnl_bps IS NOT NULL AND size_usd_ > 0
            THEN realized_pnl_bps - coalesce(cost_usd, 0.0) / size_usd_ * 1e4 END AS net_bps,
       external_pnl_bps - paper_pnl_bps AS execution_gap_bps,
       status, {_lit(policy_hash)} AS policy_hash, n_legs, n_telemetry, n_pnl, entry_ts,
       exit_ts, external_pnl_bps, reason
FROM usd
ORDER BY ts NULLS LAST, run_id"""
