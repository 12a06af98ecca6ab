"""Every run metric, defined once: the per-agent summary, gates, forensics and the dashboard all
read them from here, so a number means the same thing wherever it is shown.

A metric is a SQL aggregate over a group of ledger rows (an agent's runs, a gate's window of the
last N runs, a strategy class). Path-dependent metrics (drawdown, losing streak, last-N sums)
read helper columns that `compute` derives per group in (ts, run_id) order before aggregating:
`_seq` (1 = oldest), `_rn_desc` (a realized run's rank among the realized runs, 1 = the
newest), `_cum_bps`/`_peak_bps`, `_cum_usd`/`_peak_usd` (net USD), `_streak` (consecutive losing
runs ending at this row), `_pnl0` (the group's first realized PnL, the shift of the variance
sums).

PnL metrics use `realized_pnl_bps` (the external figure when there is one, else the reconciled
one) and ignore runs without it, for their counts, windows and time spans alike; cost and
latency metrics use every row they are given. Inference money is spent whether or not the
trade is realized, so `net_usd` counts the cost of every run; `unrealized_cost_usd` is the part
spent on runs whose PnL is not known yet (`pnl_usd` NULL: open or unpriced).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.arrays import floats
from alphatrace.engines.duckdb import DUCKDB
from alphatrace.scan import segment_cumsum_int, segmented_accumulate
from alphatrace.store.connection import registered
from alphatrace.store.statements import query_table

PNL = "realized_pnl_bps"
_sum = DUCKDB.exact_sum


# How a metric's value reads in a table (server/dashboard/fmt.py maps each to its formatter):
# signed bps, signed USD, a cost (small amounts keep their digits), an unsigned USD amount, a
# percentage of a ratio, or a number with 0-3 decimals.
FORMATS = ("bps", "usd", "cost", "amount_usd", "pct", "n0", "n1", "n2", "n3")


@dataclass(frozen=True)
class Metric:
    name: str
    sql: str
    unit: str
    formula: str
    doc: str
    # For a mean over runs: the per-run value it averages (what a per-run series plots, e.g.
    # the forensics change points), so the two can never be spelled differently.
    per_run: str | None = None
    label: str = ""  # what a person reads in a sentence or a column head
    fmt: str = "n0"  # one of FORMATS

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"metric {self.name}: unknown format {self.fmt!r}")
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " "))


def _m(name: str, sql: str, unit: str, formula: str, doc: str, *, label: str = "",
       fmt: str = "n0") -> Metric:
    return Metric(name, sql, unit, formula, doc, label=label, fmt=fmt)


def _mean(name: str, per_run: str, unit: str, formula: str, doc: str, *,
          empty_is_zero: bool = False, label: str = "", fmt: str = "n0") -> Metric:
    """The exact mean of a per-run value (`exact_sum` / count), NULL over no runs unless
    `empty_is_zero`."""
    sql = DUCKDB.exact_mean(per_run)
    return Metric(name, f"coalesce({sql}, 0)" if empty_is_zero else sql, unit, formula, doc,
                  per_run, label, fmt)


# Same runs, same bytes: DuckDB aggregates a large group on several threads and adds their
# partial results in no fixed order, so a plain `sum`/`avg`/`stddev_samp` of doubles can
# change in the last digits from one run to the next (seen at 1M runs over 200 agents), and
# Spark splits the work differently again. Every sum and mean of doubles is the dialect's
# `exact_sum`: the terms sorted by value, then added in that order, the same bits on any
# split and either engine. The sample variance sums squares of PnL shifted by the group's
# first realized PnL (`_pnl0`, a path column): shifted by a value inside the data, the two
# sums do not cancel catastrophically, and a constant series gives exactly 0 (so its Sharpe
# is null).
_D = f"({PNL} - _pnl0)"
_SD = (f"sqrt(greatest(0, ({_sum(f'{_D} * {_D}')} - {_sum(_D)} * {_sum(_D)} / count({PNL})) "
       f"/ nullif(count({PNL}) - 1, 0)))")
# Days from the first to the last realized run (runs without PnL carry no return).
_DAYS = (f"date_diff('second', min(ts) FILTER (WHERE {PNL} IS NOT NULL), "
         f"max(ts) FILTER (WHERE {PNL} IS NOT NULL)) / 86400.0")
# A run whose PnL is not known yet (open, unpriced): its ledger net_usd is NULL, its cost spent.
_UNREALIZED = "pnl_usd IS NULL"

_METRICS: tuple[Metric, ...] = (
    _m("runs", "count(*)", "runs", "n", "runs in the group",
       label="runs", fmt="n0"),
    _m("realized_runs", f"count({PNL})", "runs", "n(pnl ≠ null)", "runs with realized PnL",
       label="realized runs", fmt="n0"),
    _mean("hit_rate", f"CASE WHEN {PNL} IS NULL THEN NULL WHEN {PNL} > 0 THEN 1.0 ELSE 0.0 END",
       "ratio", "#(pnl > 0) / #realized", "share of realized runs that made money (0 counts as a miss)",
       label="hit rate", fmt="pct"),
    _m("rolling_pnl_bps", f"coalesce({_sum(PNL)}, 0)", "bps", "Σ pnl",
       "sum of realized bps over the group (a gate's window: its last N runs)",
       label="rolling PnL", fmt="bps"),
    _mean("mean_pnl_bps", PNL, "bps", "Σ pnl / n", "mean realized bps per run",
       label="PnL", fmt="bps"),
    _m("median_pnl_bps", DUCKDB.quantile(PNL, 0.5), "bps", "median(pnl)", "median realized bps per run",
       label="median PnL", fmt="bps"),
    _mean("mean_net_bps", "net_bps", "bps", "mean(pnl_bps − cost_usd/size_usd·1e4)",
       "mean per-run bps after inference cost",
       label="mean net", fmt="bps"),
    _m("median_net_bps", DUCKDB.quantile("net_bps", 0.5), "bps", "median(net_bps)", "median per-run net bps",
       label="median net", fmt="bps"),
    _m("total_pnl_usd", f"coalesce({_sum('pnl_usd')}, 0)", "USD", "Σ pnl_usd", "trading PnL in dollars",
       label="trading PnL", fmt="usd"),
    _m("total_cost_usd", f"coalesce({_sum('cost_usd')}, 0)", "USD", "Σ cost_usd",
       "inference spend of every run, realized or not",
       label="inference cost", fmt="cost"),
    _m("unrealized_cost_usd", f"coalesce({_sum('cost_usd', _UNREALIZED)}, 0)", "USD",
       "Σ cost_usd where pnl_usd = null",
       "the part of total_cost_usd spent on runs whose PnL is not known yet (open, unpriced)",
       label="cost of unrealized runs", fmt="cost"),
    _m("net_usd",
       f"coalesce({_sum(f'CASE WHEN {_UNREALIZED} THEN -cost_usd ELSE net_usd END')}, 0)", "USD",
       "Σ pnl_usd − Σ cost_usd",
       "dollars after inference cost: the PnL known so far minus the cost of every run",
       label="net", fmt="usd"),
    _m("profit_factor",
       f"{_sum(f'CASE WHEN {PNL} > 0 THEN {PNL} ELSE 0 END')} / "
       f"nullif(-{_sum(f'CASE WHEN {PNL} < 0 THEN {PNL} ELSE 0 END')}, 0)",
       "ratio", "Σ winning bps / |Σ losing bps|", "null when there is no losing run",
       label="profit factor", fmt="n2"),
    _m("sharpe", f"{DUCKDB.exact_mean(PNL)} / nullif({_SD}, 0)", "ratio",
       "mean(pnl) / sd(pnl)", "per-run Sharpe ratio (sample sd); null under 2 runs or zero sd",
       label="Sharpe", fmt="n3"),
    _m("sharpe_annualised",
       f"{DUCKDB.exact_mean(PNL)} / nullif({_SD}, 0) * sqrt(365.0 * count({PNL}) / greatest({_DAYS}, 1.0))",
       "ratio", "sharpe · √(365 · runs per day)",
       "per-run Sharpe scaled by the observed run frequency (realized runs / days from the first "
       "to the last realized run, at least 1 day)",
       label="annualised Sharpe", fmt="n2"),
    _m("max_drawdown_bps", "coalesce(max(_peak_bps - _cum_bps), 0)", "bps",
       "max_t (max_{s≤t} C_s − C_t), C = cumulative pnl, C_0 = 0",
       "largest peak-to-trough fall of cumulative bps",
       label="max drawdown (bps)", fmt="n2"),
    _m("max_drawdown_usd", "coalesce(max(_peak_usd - _cum_usd), 0)", "USD",
       "same on the cumulative ledger net_usd of each run",
       "largest peak-to-trough fall of cumulative net dollars (a run counts once its PnL is known)",
       label="max drawdown", fmt="amount_usd"),
    _m("max_losing_streak", "coalesce(max(_streak), 0)", "runs",
       "longest run of consecutive pnl < 0", "runs without realized PnL neither extend nor break it",
       label="longest losing streak", fmt="n0"),
    _mean("error_rate", "CASE WHEN coalesce(errors, 0) > 0 THEN 1.0 ELSE 0.0 END",
          "ratio", "#(errors > 0) / n", "share of runs with at least one error",
          empty_is_zero=True,
       label="error rate", fmt="pct"),
    _mean("mean_latency_ms", "latency_ms", "ms", "mean(latency)", "mean run latency",
       label="latency", fmt="n0"),
    _m("median_latency_ms", DUCKDB.quantile("latency_ms", 0.5), "ms", "median(latency)", "median run latency",
       label="median latency", fmt="n0"),
    _m("p90_latency_ms", DUCKDB.quantile("latency_ms", 0.9), "ms", "90th percentile (linear)",
       "tail latency",
       label="p90 latency", fmt="n0"),
    _mean("cost_per_run", "coalesce(cost_usd, 0)", "USD", "Σ cost / n", "inference cost per run",
       label="cost per run", fmt="cost"),
    _mean("tokens_per_run", "coalesce(tokens_in, 0) + coalesce(tokens_out, 0)", "tokens",
       "Σ (tokens_in + tokens_out) / n", "tokens per run",
       label="tokens per run", fmt="n0"),
    _m("pnl_per_cost", f"{_sum('pnl_usd')} / nullif({_sum('cost_usd')}, 0)", "ratio",
       "Σ pnl_usd / Σ cost_usd", "trading dollars per dollar of inference; null without cost",
       label="PnL per cost dollar", fmt="n1"),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}


class View(IntEnum):
    """The views of the per-agent summary, narrowest first; each shows every metric of the
    views before it."""

    OVERVIEW = 1  # the dashboard overview's agent and strategy tables
    DEMO = 2      # the per-agent table `alphatrace demo` prints
    TABLE = 3     # the terminal table of `alphatrace agents`
    FULL = 4      # the whole summary: `agents --json`, db.agents(), GET /v1/agents, agent page


# The per-agent summary: each of its metrics with the narrowest view that shows it. Views list
# them in registry order.
_SUMMARY: dict[str, View] = {
    "runs": View.OVERVIEW, "realized_runs": View.OVERVIEW, "hit_rate": View.OVERVIEW,
    "mean_pnl_bps": View.FULL, "median_pnl_bps": View.FULL,
    "mean_net_bps": View.OVERVIEW, "median_net_bps": View.TABLE,
    "total_pnl_usd": View.OVERVIEW, "total_cost_usd": View.OVERVIEW,
    "unrealized_cost_usd": View.FULL, "net_usd": View.OVERVIEW,
    "profit_factor": View.TABLE, "sharpe": View.DEMO, "sharpe_annualised": View.FULL,
    "max_drawdown_bps": View.DEMO, "max_drawdown_usd": View.FULL,
    "max_losing_streak": View.TABLE, "mean_latency_ms": View.TABLE,
    "cost_per_run": View.FULL, "pnl_per_cost": View.DEMO,
}
assert set(_SUMMARY) <= set(METRICS), set(_SUMMARY) - set(METRICS)


def summary(view: View = View.FULL) -> tuple[str, ...]:
    """The summary metrics `view` shows, in registry order."""
    return tuple(n for n in METRICS if n in _SUMMARY and _SUMMARY[n] <= view)


SUMMARY = summary()  # every metric of the per-agent summary

_LAST_N = re.compile(r"^last_(\d+)_runs_pnl$")


def get(name: str) -> Metric:
    """A metric by name; `last_N_runs_pnl` exists for every N ≥ 1."""
    m = METRICS.get(name)
    if m is not None:
        return m
    lm = _LAST_N.match(name)
    if lm and int(lm.group(1)) >= 1:
        n = int(lm.group(1))
        return _m(name, f"coalesce({_sum(PNL, f'_rn_desc <= {n}')}, 0)", "bps",
                  f"Σ pnl over the newest {n} realized runs",
                  f"sum of realized bps over the last {n} runs with realized PnL",
                  label=f"PnL of the last {n} runs", fmt="bps")
    raise KeyError(name)


def names() -> list[str]:
    return [*METRICS, "last_N_runs_pnl"]


def is_metric(name: str) -> bool:
    try:
        get(name)
    except KeyError:
        return False
    return True


def select_list(metric_names: list[str]) -> str:
    """Counts stay integers; everything else is DOUBLE whatever the input column types."""
    out = []
    for n in metric_names:
        m = get(n)
        expr = m.sql if m.unit == "runs" else f"CAST({m.sql} AS DOUBLE)"
        out.append(f'{expr} AS "{n}"')
    return ", ".join(out)


def compute(
    con: duckdb.DuckDBPyConnection,
    source: str,
    group_by: list[str],
    metric_names: list[str] | None = None,
    params: list[object] | None = None,
    order: str = "ts, run_id",
) -> pa.Table:
    """Metrics per group of `source` (a SQL query over ledger rows), ordered by the group keys.

    `source` must have the ledger columns the chosen metrics read, plus the columns of
    `order` (the run order path metrics follow: default `ts, run_id`). The rows are fetched
    once in (groups, order) order, the path columns computed by `path_columns` (the same
    sequential scans `compute_one` uses, so both give the same bits), and the aggregates run
    over them.
    """
    chosen = metric_names or list(METRICS)
    keys = ", ".join(group_by)
    tail = f" GROUP BY {keys} ORDER BY {keys}" if group_by else ""
    if not any(reads_path(get(n)) for n in chosen):  # plain aggregates: no rows to fetch
        return query_table(con, f"SELECT {keys + ', ' if keys else ''}{select_list(chosen)} "
                                f"FROM ({source}){tail}", params or None)
    rows = con.sql(f"SELECT * FROM ({source}) ORDER BY {', '.join([*group_by, order])}",
                   params=params or None).to_arrow_table()  # a ledger's size: streamed
    starts = segment_starts(rows, group_by)
    with registered(con, _rows_view(), _with_path(rows, starts)) as view:
        return query_table(con, f"SELECT {keys + ', ' if keys else ''}{select_list(chosen)} "
                                f"FROM {view}{tail}")


PATH_COLUMNS = ("_seq", "_rn_desc", "_cum_bps", "_cum_usd", "_pnl0", "_peak_bps", "_peak_usd",
                "_streak")


def reads_path(m: Metric) -> bool:
    """Whether the metric reads a path column (then its rows are fetched in run order)."""
    return any(c in m.sql for c in PATH_COLUMNS)


def segment_starts(rows: pa.Table, keys: list[str]) -> npt.NDArray[np.int64]:
    """The first row of each run of equal `keys` values in `rows` (NULL equals NULL): the
    groups of rows sorted by those keys. No keys: one group (none when there are no rows)."""
    n = rows.num_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        codes = pc.dictionary_encode(rows.column(k).combine_chunks()).indices
        c = np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        change[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(change).astype(np.int64)


def path_columns(pnl: npt.NDArray[np.float64], net_usd: npt.NDArray[np.float64],
                 starts: npt.NDArray[np.int64] | None = None) -> dict[str, npt.NDArray[Any]]:
    """The path columns (see the module docstring) of rows already in run order within each
    group, a group starting at each of `starts` (default: one group), NaN for NULL.

    The one definition of the path: running sums add each run to the previous total in run
    order (numpy's sequential `cumsum`, never a tree of partial sums), so every engine that
    calls this gets the same bits. `_rn_desc` is meaningful on realized rows only, `_pnl0`
    is the group's first realized PnL."""
    n = len(pnl)
    if starts is None:
        starts = np.zeros(1 if n else 0, dtype=np.int64)
    lens = np.diff(np.append(starts, n))
    first = np.repeat(starts, lens)
    seq = np.arange(n, dtype=np.int64) - first + 1
    cum_bps = segmented_accumulate(np.add, np.nan_to_num(pnl, nan=0.0), starts)
    cum_usd = segmented_accumulate(np.add, np.nan_to_num(net_usd, nan=0.0), starts)
    with np.errstate(invalid="ignore"):
        loss, win = pnl < 0, pnl >= 0
    nloss = segment_cumsum_int(loss.astype(np.int64), starts)
    # Running max of the last non-losing row's count, restarted per group: the counts are
    # ≥ 0, so lifting each group above the previous ones by its index makes one scan do.
    lift = np.repeat(np.arange(len(starts), dtype=np.int64), lens) * (n + 1)
    last_break = np.maximum.accumulate(np.where(win, nloss, 0) + lift) - lift if n else nloss
    realized = ~np.isnan(pnl)
    n_realized = segment_cumsum_int(realized.astype(np.int64), starts)
    total = n_realized[np.append(starts[1:], n) - 1] if n else n_realized
    at = np.where(realized, np.arange(n), n)
    first_known = np.minimum.reduceat(at, starts) if n else at
    pnl0 = np.where(first_known < n, np.append(pnl, np.nan)[first_known], np.nan)
    return {
        "_seq": seq, "_rn_desc": np.repeat(total, lens) - n_realized + 1,
        "_cum_bps": cum_bps, "_cum_usd": cum_usd,
        "_pnl0": np.repeat(pnl0, lens),
        "_peak_bps": np.maximum(segmented_accumulate(np.maximum, cum_bps, starts), 0.0),
        "_peak_usd": np.maximum(segmented_accumulate(np.maximum, cum_usd, starts), 0.0),
        "_streak": np.where(loss, nloss - last_break, 0),
    }


def _with_path(rows: pa.Table, starts: npt.NDArray[np.int64]) -> pa.Table:
    """`rows` (in run order within each group of `starts`) with their path columns."""
    def col(name: str) -> npt.NDArray[np.float64]:
        if name not in rows.column_names:
            return np.full(rows.num_rows, np.nan)
        return floats(rows.column(name))

    extra = path_columns(col(PNL), col("net_usd"), starts)
    tbl = rows.drop_columns([c for c in extra if c in rows.column_names])
    for name, values in extra.items():
        tbl = tbl.append_column(name, pa.array(values))
    return tbl


def _rows_view() -> str:
    """The name the rows are registered under: one per thread, so that threads sharing a
    connection do not read each other's rows (`registered` keeps a small table's view)."""
    return f"_metrics_rows_{threading.get_ident()}"


def compute_one(con: duckdb.DuckDBPyConnection, rows: pa.Table,
                metric_names: list[str] | None = None) -> dict[str, Any]:
    """Metrics of one group given as Arrow rows in (ts, run_id) order (the dashboard's agent,
    fetched once): the same aggregates and path columns as `compute`."""
    tbl = _with_path(rows, segment_starts(rows, []))
    with registered(con, _rows_view(), tbl) as view:
        out = query_table(con, f"SELECT {select_list(metric_names or list(METRICS))} "
                               f"FROM {view}").to_pylist()
    return out[0]


def glossary_markdown() -> str:
    """The README's metric glossary, generated so docs and code cannot drift."""
    rows = ["| metric | unit | formula | meaning |", "|---|---|---|---|"]
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    for m in _METRICS:
        rows.append(f"| `{m.name}` | {m.unit} | {cell(m.formula)} | {cell(m.doc)} |")
    rows.append("| `last_N_runs_pnl` | bps | Σ pnl over the newest N realized runs | any N ≥ 1, "
                "e.g. `last_5_runs_pnl`; runs without realized PnL are skipped, not counted |")
    return "\n".join(rows)
