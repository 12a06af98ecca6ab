"""The ledger (docs/architecture.md §Ledger): one row per run from legs, telemetry and pnl (SQL text, no I/O).

Rules (docs/ledger.md has the full text):
- status: `no_signal` without alpha events; else `unpriced` if any leg is, else `open` if any
  leg is, else `realized`.
- weights: a run's bps (gross, fee, funding, paper) are the size-weighted means of its non-FLAT
  legs (FLAT deploys no capital, so it carries no weight); USD is the sum. All-FLAT runs are 0.
- external pnl: per (run, market symbol) the latest event wins (highest revision, then later
  ts, then later ingest). A run-level event (no symbol) is the run's figure; otherwise the
  per-symbol figures are size-weighted, each by its symbol's legs (by the agent's default size
  when the run has no leg on that symbol, or only FLAT ones: FLAT carries no size).
- realized_pnl_bps = external when present, else paper (realized runs only).
- bar_interval: the labels of the bar intervals its legs were priced with, finest first,
  comma-joined (NULL when no leg was priced against bars: unpriced, FLAT).
- known_ts (knowledge time: when the run's PnL became known): a reconciled run's latest exit
  bar open time over its legs (its signal ts when every leg is FLAT); an external figure's
  latest ts over the pnl events it uses (each event's file arrival time when it has no ts),
  never before the run's ts; NULL when there is no realized PnL.
- telemetry: tokens, cost and errors are sums; latency is the sum of latencies unless every
  record has start_ts and end_ts, then max(end) − min(start).

Most runs have one alpha event, one telemetry record and one pnl event: those rows pass
through as they are, and only runs with several are aggregated. Floating-point sums are the
dialect's `exact_sum` (terms in ascending order of value), so the result does not depend on how
the engine split rows between threads or executors: a rebuild is bit-identical, and so is the
same ledger built on Spark. The SQL is written once over a `Dialect` (`engines`), in the subset
DuckDB and Spark share plus the dialect's primitives.
"""

from __future__ import annotations

from collections.abc import Mapping

from alphatrace.engines.dialect import Dialect
from alphatrace.engines.duckdb import DUCKDB
from alphatrace.market.symbols import norm_sql
from alphatrace.sql import lit

LEDGER_COLUMNS = (
    "run_id", "agent", "strategy", "ts", "symbols", "direction", "score_final", "regime",
    "latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "model", "entry_price",
    "exit_price", "gross_bps", "fee_bps", "funding_bps", "paper_pnl_bps", "realized_pnl_bps",
    "pnl_source", "size_usd", "pnl_usd", "net_usd", "net_bps", "execution_gap_bps", "status",
    "policy_hash", "n_legs", "n_telemetry", "n_pnl", "entry_ts", "exit_ts",
    "external_pnl_bps", "reason", "bar_interval", "known_ts",
)

_LEG_ORDER = "ts NULLS LAST, file_id NULLS LAST, line NULLS LAST, event_id"
_TEL_ORDER = "coalesce(ts, start_ts) NULLS LAST, file_id NULLS LAST, line NULLS LAST, event_id"
_PNL_ORDER = "ts NULLS LAST, file_id NULLS LAST, line NULLS LAST, event_id"
_W = "CASE WHEN direction <> 'FLAT' THEN size_usd END"
_NO_DOUBLE = "CAST(NULL AS DOUBLE)"
_NO_BIGINT = "CAST(NULL AS BIGINT)"
# When a pnl event's figure existed: its ts, else the time its file arrived.
_KTS = "coalesce(p.ts, f.ingested_at)"


def _split(d: Dialect, table: str, name: str, runs: str | None = None,
           single: bool = False, rows: str | None = None) -> str:
    """`{name}_1`: rows of runs with one row in `table`; `{name}_m`: rows of runs with several.
    The few runs with several rows are found first; both halves are then joins against that
    small set (semi / anti), never against the million single-row runs. With `runs`, only the
    rows of those runs take part (`{name}_rows`, found once, or the relation `rows` that
    already holds them): the work follows the runs that changed. `single`: no run has several
    rows (the caller knows; `single_sources`), so `{name}_1` is every row and there is no
    `{name}_m`."""
    head = ""
    if rows is not None:
        table = rows
    elif runs is not None:
        head = (f"{name}_rows AS {d.materialized()}(SELECT * FROM {table} "
                f"{d.semi_join()} {runs} USING (run_id)),\n")
        table = f"{name}_rows"
    if single:
        return f"""
{head}{name}_1 AS (SELECT * FROM {table})"""
    return f"""
{head}{name}_multi AS (SELECT run_id FROM {table} GROUP BY run_id HAVING count(*) > 1),
{name}_1 AS (SELECT * FROM {table} {d.anti_join()} {name}_multi USING (run_id)),
{name}_m AS (SELECT * FROM {table} {d.semi_join()} {name}_multi USING (run_id))"""


def _wmean(d: Dialect, part: str) -> str:
    """Size-weighted mean of a leg column over a run's legs: 0 when all are FLAT, a single
    weighted leg's own value exactly, else Σ size·x / Σ size."""
    return (f"CASE WHEN count({_W}) = 0 THEN 0.0 "
            f"WHEN count({_W}) = 1 THEN {d.any_value(part)} FILTER (WHERE direction <> 'FLAT') "
            f"ELSE {d.exact_sum(f'{_W} * {part}')} / {d.exact_sum(_W)} END")


def _halves(name: str, columns: list[tuple[str, str, str]], single: bool = False) -> str:
    """Per run, from `_split`'s halves: each column as (name, its value for a run with one row,
    its aggregate over a run's several rows), so the two halves are written once, side by
    side, and cannot drift apart. `single`: the one-row half only (`_split`)."""
    one = ",\n    ".join(f"{single_value} AS {col}" for col, single_value, _ in columns)
    if single:
        return f"  SELECT run_id,\n    {one}\n  FROM {name}_1"
    many = ",\n    ".join(f"{agg} AS {col}" for col, _, agg in columns)
    return (f"  SELECT run_id,\n    {one}\n  FROM {name}_1\n  UNION ALL\n"
            f"  SELECT run_id,\n    {many}\n  FROM {name}_m GROUP BY run_id")


def _legs_sql(d: Dialect, runs: str | None, single: bool = False,
              rows: str | None = None) -> str:
    """Per run: identity, symbols, direction, status counts and the weighted numbers."""
    columns = [
        ("n_legs", "1", "count(*)"),
        ("agent", "agent", d.first_by("agent", _LEG_ORDER)),
        ("strategy", "strategy", d.first_by("strategy", f"strategy IS NULL, {_LEG_ORDER}")),
        ("ts", "ts", "min(ts)"),
        ("symbols", "coalesce(market_symbol, symbol)",
         d.sorted_distinct_join("coalesce(market_symbol, symbol)")),
        ("direction", "direction",
         "CASE WHEN min(direction) = max(direction) THEN min(direction) ELSE 'MIXED' END"),
        ("score_final", "score_final", d.first_by("score_final", _LEG_ORDER)),
        ("regime", "regime", d.first_by("regime", _LEG_ORDER)),
        ("n_unpriced", "CASE WHEN status = 'unpriced' THEN 1 ELSE 0 END",
         "count(*) FILTER (WHERE status = 'unpriced')"),
        ("n_open", "CASE WHEN status = 'open' THEN 1 ELSE 0 END",
         "count(*) FILTER (WHERE status = 'open')"),
        ("reason", "reason",
         d.first_by("reason", f"status <> 'unpriced', reason IS NULL, {_LEG_ORDER}")),
        ("entry_price", "entry_price", "CAST(NULL AS DOUBLE)"),
        ("exit_price", "exit_price", "CAST(NULL AS DOUBLE)"),
        ("entry_ts", "entry_ts", "min(entry_ts)"),
        ("exit_ts", "exit_ts", "max(exit_ts)"),
        ("deployed_usd", _W, d.exact_sum(_W)),
        *[(c, c, _wmean(d, c)) for c in ("gross_bps", "fee_bps", "funding_bps",
                                         "paper_pnl_bps")],
        ("paper_usd", "pnl_usd", d.exact_sum("pnl_usd")),
        ("leg_market", "market_symbol", "CAST(NULL AS STRING)"),
        ("bar_interval", "bar_interval",
         f"nullif({d.sorted_labels('interval_s', 'bar_interval', 'bar_interval IS NOT NULL')},"
         " '')"),
    ]
    return f"""
{_split(d, "legs", "leg", runs, single, rows)},
leg_run AS (
{_halves("leg", columns, single)}
)"""


def _telemetry_sql(d: Dialect, runs: str | None, single: bool = False,
                   rows: str | None = None) -> str:
    """Per run: sums of tokens, cost and errors; latency as the sum, or wall time."""
    def wall(s: str, e: str) -> str:
        return f"CAST({d.epoch_us(e)} - {d.epoch_us(s)} AS DOUBLE) / 1e3"

    model = "nullif(model, '')"
    columns = [
        ("n_telemetry", "1", "count(*)"),
        ("agent", "agent", d.first_by("agent", _TEL_ORDER)),
        ("strategy", "strategy", d.first_by("strategy", f"strategy IS NULL, {_TEL_ORDER}")),
        ("ts", "coalesce(ts, start_ts)", "min(coalesce(ts, start_ts))"),
        ("latency_ms",
         "CASE WHEN start_ts IS NOT NULL AND end_ts IS NOT NULL "
         f"THEN {wall('start_ts', 'end_ts')} ELSE latency_ms END",
         "CASE WHEN count(start_ts) = count(*) AND count(end_ts) = count(*) "
         f"THEN {wall('min(start_ts)', 'max(end_ts)')} ELSE {d.exact_sum('latency_ms')} END"),
        ("tokens_in", "tokens_in", "sum(tokens_in)"),
        ("tokens_out", "tokens_out", "sum(tokens_out)"),
        ("cost_usd", "cost_usd", d.exact_sum("cost_usd")),
        ("errors", "errors", "sum(errors)"),
        ("model", model, f"nullif({d.sorted_distinct_join(model)}, '')"),
    ]
    return f"""
{_split(d, "telemetry", "tel", runs, single, rows)},
tel AS (
{_halves("tel", columns, single)}
)"""


def pnl_keys_sql(pnl_symmap: str) -> str:
    """(alias, key) per distinct pnl symbol of `pnl_symmap` (a `resolution_sql` relation over
    them): the resolved market symbol, else the normalised spelling. Computed once per
    distinct symbol rather than per event."""
    return f"SELECT alias, coalesce(symbol, nullif({norm_sql('alias')}, '')) AS key FROM {pnl_symmap}"


def _pnl_sql(d: Dialect, pnl_keys: str, runs: str | None, single: bool = False,
             single_legs: bool = False, rows: str | None = None) -> str:
    """Per run: identity and the latest external figure(s) — `run_level_bps` for a run-level
    event, else per-symbol figures, each weighted by the size of its market's legs (`k_*`);
    figures without such a leg are summed apart (`u_*`) and weighted by the agent's default
    size later, where the run's agent is known.

    A run with one pnl event (the usual case) takes it as it is (`key1`, `bps1`); its weight is
    settled after the join with the run's legs (`mw1`: the weight when the run has several
    legs). Only runs with several pnl events are ranked and aggregated here (`*_m`).
    `single` / `single_legs`: no run has several pnl events / legs (`_split`), so those parts
    are left out (with one leg at most per run, `mw1`, the weight of several legs, is NULL)."""
    key = "CASE WHEN p.symbol IS NOT NULL THEN sm.key END"
    order = ("p.revision DESC, p.ts DESC NULLS LAST, p.file_id DESC NULLS LAST, "
             "p.line DESC NULLS LAST, p.event_id DESC")
    many = f"""
pnl_latest_m AS (
  SELECT run_id, key, bps, kts FROM (
    SELECT p.*, {key} AS key, p.realized_pnl_bps AS bps, {_KTS} AS kts,
      row_number() OVER (PARTITION BY p.run_id, {key} ORDER BY {order}) AS _rank
    FROM pnl_m p LEFT JOIN {pnl_keys} sm ON sm.alias = p.symbol
    LEFT JOIN ingested_files f ON f.file_id = p.file_id) ranked
  WHERE _rank = 1
),
pnl_w_m AS (
  SELECT p.run_id, p.bps, p.kts, lw.w
  FROM pnl_latest_m p
  LEFT JOIN (
    SELECT l.run_id, l.market_symbol, {d.exact_sum(_W)} AS w
    FROM legs l {d.semi_join()} pnl_latest_m q ON q.run_id = l.run_id AND q.key = l.market_symbol
    GROUP BY l.run_id, l.market_symbol
  ) lw ON lw.run_id = p.run_id AND lw.market_symbol = p.key
  WHERE p.key IS NOT NULL
),"""
    many_runs = f"""
  UNION ALL
  SELECT r.run_id, r.n_pnl, r.agent, r.strategy, r.ts, er.run_level_bps,
         CAST(NULL AS STRING) AS key1, {_NO_DOUBLE} AS bps1, {_NO_DOUBLE} AS mw1,
         es.n_sym_m, es.one_bps_m, es.k_bw_m, es.k_w_m, es.u_b_m, es.u_n_m,
         CASE WHEN er.run_level_bps IS NOT NULL THEN er.kts ELSE es.kts_m END AS pnl_kts
  FROM (
    SELECT run_id, count(*) AS n_pnl,
      {d.first_by("agent", f"agent IS NULL, {_PNL_ORDER}")} AS agent,
      {d.first_by("strategy", f"strategy IS NULL, {_PNL_ORDER}")} AS strategy,
      min(ts) AS ts
    FROM pnl_m GROUP BY run_id
  ) r
  LEFT JOIN (SELECT run_id, bps AS run_level_bps, kts FROM pnl_latest_m WHERE key IS NULL) er
    ON er.run_id = r.run_id
  LEFT JOIN (
    SELECT run_id, count(*) AS n_sym_m, {d.any_value("bps")} AS one_bps_m,
           {d.exact_sum("bps * w")} AS k_bw_m, {d.exact_sum("w")} AS k_w_m,
           {d.exact_sum("bps", "w IS NULL")} AS u_b_m, count(*) FILTER (WHERE w IS NULL) AS u_n_m,
           max(kts) AS kts_m
    FROM pnl_w_m GROUP BY run_id
  ) es ON es.run_id = r.run_id"""
    weight = (f"{_NO_DOUBLE} AS mw1" if single_legs else "lw.w AS mw1")
    legs_weight = "" if single_legs else f"""
  LEFT JOIN (
    SELECT run_id, market_symbol, {d.exact_sum(_W)} AS w FROM leg_m GROUP BY run_id, market_symbol
  ) lw ON lw.run_id = p.run_id AND lw.market_symbol = {key}"""
    return f"""
{_split(d, "pnl", "pnl", runs, single, rows)},{"" if single else many}
pnl_run AS (
  SELECT p.run_id, CAST(1 AS BIGINT) AS n_pnl, p.agent, p.strategy, p.ts,
    CASE WHEN {key} IS NULL THEN p.realized_pnl_bps END AS run_level_bps,
    {key} AS key1, p.realized_pnl_bps AS bps1, {weight},
    {_NO_BIGINT} AS n_sym_m, {_NO_DOUBLE} AS one_bps_m, {_NO_DOUBLE} AS k_bw_m,
    {_NO_DOUBLE} AS k_w_m, {_NO_DOUBLE} AS u_b_m, {_NO_BIGINT} AS u_n_m, {_KTS} AS pnl_kts
  FROM pnl_1 p LEFT JOIN {pnl_keys} sm ON sm.alias = p.symbol
  LEFT JOIN ingested_files f ON f.file_id = p.file_id{legs_weight}{"" if single else many_runs}
)"""


SOURCES = {"leg": "legs", "tel": "telemetry", "pnl": "pnl"}  # name in the SQL: table


def runs_rows_sql(table: str, runs: str) -> str:
    """The rows of `table` (a `SOURCES` table) of the runs in `runs`: what `ledger_sql` reads of
    it for those runs, and what `single_sources` looks at (DuckDB)."""
    return f"SELECT * FROM {table} SEMI JOIN {runs} USING (run_id)"


def single_sources(rows: Mapping[str, str]) -> str:
    """A query of one row, a boolean per `SOURCES` name (in order): whether no run has several
    rows in that source's relation `rows[name]` (its `runs_rows_sql`; `ledger_sql`'s
    `single`)."""
    return "SELECT " + ", ".join(
        f"NOT EXISTS (SELECT run_id FROM {rows[name]} GROUP BY run_id HAVING count(*) > 1) "
        f"AS {name}" for name in SOURCES)


def ledger_sql(policy_hash: str, pnl_keys: str = "_rc_pnlkeys",
               params: str = "_rc_params", runs: str | None = None,
               dialect: Dialect = DUCKDB, single: frozenset[str] = frozenset(),
               rows: Mapping[str, str] | None = None) -> str:
    """Ledger rows with the columns LEDGER_COLUMNS (unordered: readers order by ts, run_id).
    `runs`: a relation with a `run_id` column; only those runs' rows are built (None: all).
    Relations `legs`, `telemetry`, `pnl` and `ingested_files` are read by those names.
    `single`: the sources (`SOURCES`) in which no run of `runs` has several rows, as
    `single_sources` finds them: their aggregation over several rows is left out of the text,
    the same rows for a statement DuckDB plans in half the time (bench/RESULTS.md, session of
    2026-12-03, lead). `rows`: per `SOURCES` name, a relation already holding that source's
    rows of `runs` (`runs_rows_sql`), read instead of finding them again."""
    d = dialect
    got = rows or {}
    realized = "CASE WHEN status = 'realized' THEN {x} END"
    return f"""
WITH
{_legs_sql(d, runs, "leg" in single, got.get("leg"))},
{_telemetry_sql(d, runs, "tel" in single, got.get("tel"))},
{_pnl_sql(d, pnl_keys, runs, "pnl" in single, "leg" in single, got.get("pnl"))},
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
    pr.run_level_bps, pr.key1, pr.bps1,
    CASE WHEN lr.n_legs = 1 THEN CASE WHEN lr.leg_market = pr.key1 THEN lr.deployed_usd END
         ELSE pr.mw1 END AS w1,
    pr.n_sym_m, pr.one_bps_m, pr.k_bw_m, pr.k_w_m, pr.u_b_m, pr.u_n_m, pr.pnl_kts,
    coalesce(lr.n_legs, 0) AS n_legs, coalesce(t.n_telemetry, 0) AS n_telemetry,
    coalesce(pr.n_pnl, 0) AS n_pnl, lr.entry_ts, lr.exit_ts, lr.bar_interval,
    CASE WHEN lr.run_id IS NOT NULL THEN lr.reason
         WHEN t.run_id IS NOT NULL THEN 'no alpha event (telemetry only)'
         ELSE 'no alpha event (pnl only: unknown run)' END AS reason
  FROM leg_run lr
  FULL JOIN tel t ON t.run_id = lr.run_id
  FULL JOIN pnl_run pr ON pr.run_id = coalesce(lr.run_id, t.run_id)
),
weighed AS (
  SELECT j.*,
    CASE WHEN key1 IS NOT NULL THEN 1 ELSE n_sym_m END AS n_sym,
    CASE WHEN key1 IS NOT NULL THEN bps1 ELSE one_bps_m END AS one_bps,
    CASE WHEN key1 IS NOT NULL THEN bps1 * w1 ELSE k_bw_m END AS k_bw,
    CASE WHEN key1 IS NOT NULL THEN w1 ELSE k_w_m END AS k_w,
    CASE WHEN key1 IS NOT NULL THEN CASE WHEN w1 IS NULL THEN bps1 END ELSE u_b_m END AS u_b,
    CASE WHEN key1 IS NOT NULL THEN CASE WHEN w1 IS NULL THEN 1 ELSE 0 END ELSE u_n_m END
      AS u_n
  FROM joined j
),
valued AS (
  SELECT j.*,
    {realized.format(x="g")} AS gross_bps,
    {realized.format(x="f")} AS fee_bps,
    {realized.format(x="fu")} AS funding_bps,
    {realized.format(x="p")} AS paper_pnl_bps,
    coalesce(j.run_level_bps,
             CASE WHEN j.n_sym = 1 THEN j.one_bps
                  ELSE (coalesce(j.k_bw, 0.0) + coalesce(j.u_b, 0.0) * j.dflt_size)
                       / (coalesce(j.k_w, 0.0) + j.u_n * j.dflt_size) END) AS external_pnl_bps,
    CASE WHEN j.run_level_bps IS NOT NULL
           THEN coalesce(nullif(j.deployed_usd, 0), j.dflt_size)
         WHEN j.n_sym IS NOT NULL
           THEN coalesce(j.k_w, 0.0) + j.u_n * j.dflt_size END AS external_size_usd
  FROM (
    SELECT w.*, coalesce(po.size_usd, d0.size_usd) AS dflt_size
    FROM weighed w
    LEFT JOIN {params} po ON po.agent = w.agent
    CROSS JOIN (SELECT size_usd FROM {params} WHERE agent IS NULL) d0
  ) j
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
       status, {lit(policy_hash)} AS policy_hash, n_legs, n_telemetry, n_pnl, entry_ts,
       exit_ts, external_pnl_bps, reason, bar_interval,
       CASE WHEN pnl_source = 'external' THEN greatest(ts, pnl_kts)
            WHEN pnl_source = 'reconciled' THEN coalesce(exit_ts, ts) END AS known_ts
FROM usd"""


def telemetry_only_sql(policy_hash: str, rows: str, single: bool = False) -> str:
    """`ledger_sql`'s rows (LEDGER_COLUMNS) for runs that have telemetry and nothing else (no
    alpha event, so no leg, and no pnl event), from `rows`, every telemetry row of those runs:
    a projection of the runs' telemetry (`_telemetry_sql`), the rest of the row fixed by the
    rules above for a run without signal or pnl (status `no_signal`, pnl_usd 0, no knowledge
    time). A live round of OTLP telemetry builds its rows with this statement, a fraction of
    the full one to plan (`ledger.telemetry_pass`); `tests/ledger/test_telemetry_pass.py`
    checks it against `ledger_sql` on the same rows. `single`: no run has several rows."""
    null = {"symbols": "STRING", "direction": "STRING", "score_final": "DOUBLE",
            "regime": "STRING", "entry_price": "DOUBLE", "exit_price": "DOUBLE",
            "gross_bps": "DOUBLE", "fee_bps": "DOUBLE", "funding_bps": "DOUBLE",
            "paper_pnl_bps": "DOUBLE", "realized_pnl_bps": "DOUBLE", "pnl_source": "STRING",
            "size_usd": "DOUBLE", "net_bps": "DOUBLE", "execution_gap_bps": "DOUBLE",
            "entry_ts": "TIMESTAMP", "exit_ts": "TIMESTAMP", "external_pnl_bps": "DOUBLE",
            "bar_interval": "STRING", "known_ts": "TIMESTAMP"}
    value = {
        "pnl_usd": "CAST(0.0 AS DOUBLE)",
        "net_usd": "CAST(0.0 AS DOUBLE) - coalesce(cost_usd, 0.0)",
        "status": "'no_signal'",
        "policy_hash": lit(policy_hash),
        "n_legs": "CAST(0 AS BIGINT)",
        "n_pnl": "CAST(0 AS BIGINT)",
        "reason": "'no alpha event (telemetry only)'",
        **{c: f"CAST(NULL AS {t})" for c, t in null.items()},
    }
    cols = ",\n  ".join(f"{value[c]} AS {c}" if c in value else c for c in LEDGER_COLUMNS)
    return f"""
WITH
{_telemetry_sql(DUCKDB, None, single, rows)}
SELECT
  {cols}
FROM tel"""
