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

Most runs have one alpha event, one telemetry record and one pnl event: those rows pass
through as they are, and only runs with several are aggregated. Floating-point sums add their
terms in ascending order of value (`_fsum`), so the result does not depend on how the engine
split rows between threads: a rebuild is bit-identical.
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
_PNL_ORDER = "ts NULLS LAST, file_id NULLS LAST, line NULLS LAST, event_id"
_W = "CASE WHEN direction <> 'FLAT' THEN size_usd END"
_NORM = ("nullif(regexp_replace(upper(split_part(trim({x}), ':', 1)), '[^A-Z0-9]', '', 'g'), "
         "'')")


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _fsum(expr: str, where: str | None = None) -> str:
    """A deterministic float sum: terms sorted by value, then added (NULLs ignored)."""
    filt = f" FILTER (WHERE {where})" if where else ""
    return f"list_sum(list_sort(list({expr}){filt}))"


def _wmean(part: str) -> str:
    """Size-weighted mean of a leg column over a run's legs: 0 when all are FLAT, a single
    weighted leg's own value exactly, else Σ size·x / Σ size."""
    return (f"CASE WHEN count({_W}) = 0 THEN 0.0 "
            f"WHEN count({_W}) = 1 THEN any_value({part}) FILTER (WHERE direction <> 'FLAT') "
            f"ELSE {_fsum(f'{_W} * {part}')} / {_fsum(_W)} END")


def _legs_sql() -> str:
    """Per run: identity, symbols, direction, status counts and the weighted numbers."""
    return f"""
leg_n AS (SELECT run_id, count(*) AS n FROM legs GROUP BY run_id),
leg_1 AS (SELECT * FROM legs SEMI JOIN (SELECT run_id FROM leg_n WHERE n = 1) c USING (run_id)),
leg_m AS (SELECT * FROM legs SEMI JOIN (SELECT run_id FROM leg_n WHERE n > 1) c USING (run_id)),
leg_run AS (
  SELECT run_id, 1 AS n_legs, agent, strategy, ts,
    coalesce(market_symbol, symbol) AS symbols, direction, score_final, regime,
    CASE WHEN status = 'unpriced' THEN 1 ELSE 0 END AS n_unpriced,
    CASE WHEN status = 'open' THEN 1 ELSE 0 END AS n_open,
    reason, entry_price, exit_price, entry_ts, exit_ts,
    {_W} AS deployed_usd, gross_bps, fee_bps, funding_bps, paper_pnl_bps,
    pnl_usd AS paper_usd
  FROM leg_1
  UNION ALL
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
    NULL::DOUBLE AS entry_price, NULL::DOUBLE AS exit_price,
    min(entry_ts) AS entry_ts, max(exit_ts) AS exit_ts,
    {_fsum(_W)} AS deployed_usd,
    {_wmean("gross_bps")} AS gross_bps,
    {_wmean("fee_bps")} AS fee_bps,
    {_wmean("funding_bps")} AS funding_bps,
    {_wmean("paper_pnl_bps")} AS paper_pnl_bps,
    {_fsum("pnl_usd")} AS paper_usd
  FROM leg_m GROUP BY run_id
)"""


def _telemetry_sql() -> str:
    """Per run: sums of tokens, cost and errors; latency as the sum, or wall time."""
    wall = "date_diff('microsecond', {s}, {e}) / 1000.0"
    return f"""
tel_n AS (SELECT run_id, count(*) AS n FROM telemetry GROUP BY run_id),
tel_1 AS (SELECT * FROM telemetry SEMI JOIN (SELECT run_id FROM tel_n WHERE n = 1) c USING (run_id)),
tel_m AS (SELECT * FROM telemetry SEMI JOIN (SELECT run_id FROM tel_n WHERE n > 1) c USING (run_id)),
tel AS (
  SELECT run_id, 1 AS n_telemetry, agent, strategy, coalesce(ts, start_ts) AS ts,
    CASE WHEN start_ts IS NOT NULL AND end_ts IS NOT NULL
         THEN {wall.format(s="start_ts", e="end_ts")} ELSE latency_ms END AS latency_ms,
    tokens_in, tokens_out, cost_usd, errors, nullif(model, '') AS model
  FROM tel_1
  UNION ALL
  SELECT run_id, count(*) AS n_telemetry,
    first(agent ORDER BY {_TEL_ORDER}) AS agent,
    first(strategy ORDER BY strategy IS NULL, {_TEL_ORDER}) AS strategy,
    min(coalesce(ts, start_ts)) AS ts,
    CASE WHEN count(start_ts) = count(*) AND count(end_ts) = count(*)
         THEN {wall.format(s="min(start_ts)", e="max(end_ts)")}
         ELSE {_fsum("latency_ms")} END AS latency_ms,
    sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
    {_fsum("cost_usd")} AS cost_usd, sum(errors) AS errors,
    nullif(array_to_string(list_sort(list_distinct(list(nullif(model, '')))), ','), '') AS model
  FROM tel_m GROUP BY run_id
)"""


def _pnl_sql(pnl_symmap: str) -> str:
    """Per run: identity and the latest external figure(s). Per-symbol figures carry the size
    of their market's legs as weight; figures without such a leg are summed apart (`u_*`) and
    weighted by the agent's default size later, where the run's agent is known."""
    key = f"CASE WHEN p.symbol IS NOT NULL THEN coalesce(sm.symbol, {_NORM.format(x='p.symbol')}) END"
    order = ("revision DESC, ts DESC NULLS LAST, file_id DESC NULLS LAST, line DESC NULLS LAST, "
             "event_id DESC")
    return f"""
pnl_n AS (SELECT run_id, count(*) AS n FROM pnl GROUP BY run_id),
pnl_1 AS (SELECT * FROM pnl SEMI JOIN (SELECT run_id FROM pnl_n WHERE n = 1) c USING (run_id)),
pnl_m AS (SELECT * FROM pnl SEMI JOIN (SELECT run_id FROM pnl_n WHERE n > 1) c USING (run_id)),
pnl_run AS (
  SELECT run_id, 1 AS n_pnl, agent, strategy, ts FROM pnl_1
  UNION ALL
  SELECT run_id, count(*) AS n_pnl,
    first(agent ORDER BY agent IS NULL, {_PNL_ORDER}) AS agent,
    first(strategy ORDER BY strategy IS NULL, {_PNL_ORDER}) AS strategy,
    min(ts) AS ts
  FROM pnl_m GROUP BY run_id
),
pnl_latest AS (
  SELECT p.run_id, {key} AS key, p.realized_pnl_bps AS bps
  FROM pnl_1 p LEFT JOIN {pnl_symmap} sm ON sm.alias = p.symbol
  UNION ALL
  SELECT run_id, key, bps FROM (
    SELECT p.*, {key} AS key, p.realized_pnl_bps AS bps
    FROM pnl_m p LEFT JOIN {pnl_symmap} sm ON sm.alias = p.symbol)
  QUALIFY row_number() OVER (PARTITION BY run_id, key ORDER BY {order}) = 1
),
pnl_w AS (
  SELECT p.run_id, p.bps, lw.w
  FROM pnl_latest p
  LEFT JOIN (
    SELECT l.run_id, l.market_symbol, {_fsum(_W)} AS w
    FROM legs l SEMI JOIN pnl_latest q ON q.run_id = l.run_id AND q.key = l.market_symbol
    GROUP BY l.run_id, l.market_symbol
  ) lw ON lw.run_id = p.run_id AND lw.market_symbol = p.key
  WHERE p.key IS NOT NULL
),
ext_run AS (
  SELECT run_id, bps AS run_level_bps FROM pnl_latest WHERE key IS NULL
),
ext_sym AS (
  SELECT run_id, count(*) AS n_sym, any_value(bps) AS one_bps,
         {_fsum("bps * w")} AS k_bw, {_fsum("w")} AS k_w, {_fsum("bps", "w IS NULL")} AS u_b,
         count(*) FILTER (WHERE w IS NULL) AS u_n
  FROM pnl_w GROUP BY run_id
)"""


def ledger_sql(policy_hash: str, pnl_symmap: str = "_rc_pnlmap",
               params: str = "_rc_params") -> str:
    """Ledger rows with the columns LEDGER_COLUMNS (unordered: readers order by ts, run_id)."""
    realized = "CASE WHEN status = 'realized' THEN {x} END"
    return f"""
WITH
{_legs_sql()},
{_telemetry_sql()},
{_pnl_sql(pnl_symmap)},
joined AS (
  SELECT coalesce(lr.run_id, t.run_id, pr.run_id) AS run_id,
    coalesce(lr.agent, t.agent, pr.agent) AS agent,
    coalesce(lr.strategy, t.strategy, pr.strategy) AS strategy,
    coalesce(lr.ts, least(t.ts, pr.ts)) AS ts,
    lr.symbols, lr.direction, lr.score_final, lr.regime,
    t.latency_ms, t.tokens_in, t.tokens_out, t.cost_usd, t.errors, t.model,
    lr.entry_price, lr.exit_price,
    CASE WHEN lr.run_id IS NULL THEN 'no_signal'
         WHEN lr.n_unpriced > 0 THEN 'unpriced'
         WHEN lr.n_open > 0 THEN 'open'
         ELSE 'realized' END AS status,
    lr.deployed_usd, lr.gross_bps AS g, lr.fee_bps AS f, lr.funding_bps AS fu,
    lr.paper_pnl_bps AS p, lr.paper_usd,
    er.run_level_bps, es.n_sym, es.one_bps, es.k_bw, es.k_w, es.u_b, es.u_n,
    coalesce(lr.n_legs, 0) AS n_legs, coalesce(t.n_telemetry, 0) AS n_telemetry,
    coalesce(pr.n_pnl, 0) AS n_pnl, lr.entry_ts, lr.exit_ts,
    CASE WHEN lr.run_id IS NOT NULL THEN lr.reason
         WHEN t.run_id IS NOT NULL THEN 'no alpha event (telemetry only)'
         ELSE 'no alpha event (pnl only: unknown run)' END AS reason
  FROM leg_run lr
  FULL JOIN tel t ON t.run_id = lr.run_id
  FULL JOIN pnl_run pr ON pr.run_id = coalesce(lr.run_id, t.run_id)
  LEFT JOIN ext_run er ON er.run_id = coalesce(lr.run_id, t.run_id, pr.run_id)
  LEFT JOIN ext_sym es ON es.run_id = coalesce(lr.run_id, t.run_id, pr.run_id)
),
valued AS (
  SELECT j.*,
    {realized.format(x="g")} AS gross_bps,
    {realized.format(x="f")} AS fee_bps,
    {realized.format(x="fu")} AS funding_bps,
    {realized.format(x="p")} AS paper_pnl_bps,
    coalesce(j.run_level_bps,
             CASE WHEN j.n_sym = 1 THEN j.one_bps
                  ELSE (coalesce(j.k_bw, 0.0) + coalesce(j.u_b, 0.0) * dflt.size_usd)
                       / (coalesce(j.k_w, 0.0) + j.u_n * dflt.size_usd) END) AS external_pnl_bps,
    CASE WHEN j.run_level_bps IS NOT NULL
           THEN coalesce(nullif(j.deployed_usd, 0), dflt.size_usd)
         WHEN j.n_sym IS NOT NULL
           THEN coalesce(j.k_w, 0.0) + j.u_n * dflt.size_usd END AS external_size_usd
  FROM joined j
  LEFT JOIN {params} po ON po.agent = j.agent
  CROSS JOIN (SELECT size_usd FROM {params} WHERE agent IS NULL) d0
  CROSS JOIN LATERAL (SELECT coalesce(po.size_usd, d0.size_usd) AS size_usd) dflt
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
FROM usd"""
