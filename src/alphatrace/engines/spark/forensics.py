"""`forensics` and `explain` on Spark, over an export (`alphatrace export --to parquet DIR`).

Spark selects the rows that scale with the runs; the embedded engine's own code computes on
them, so each document has one definition:

- `forensics`: Spark selects the included runs (`forensics.data.Filters`: not excluded, the
  agent, strategy and since filters) and, for the loss clusters, their feature columns and
  the `attrs` of their events; these go to the driver, where `Forensics.forensics` runs the
  slice search (`forensics.clusters`, numpy) on an in-memory DuckDB holding only them; a
  search over at least `slices.MIN_ROWS` runs makes its histogram passes, the part that
  reads every row once per feature combination, on the executors (`slices.passes_on`). The
  change points run on Spark: each agent's runs are in one partition, where
  `forensics.api.changes` (ruptures, Welch, the metric registry on an in-memory DuckDB in the
  Python worker) finds the confirmed changes of all the partition's agents in one call
  (`governance.by_partition`).
- `explain`: one run. Spark selects its ledger row, its agent's `history_runs` newest
  included runs before it (`forensics.data.history_sql`), its legs, events and exclusion;
  the market (bars, funding, aliases) is read on the driver by DuckDB from the export's
  Parquet, as reconcile on Spark reads it (`engines/spark/small.py`). `Forensics.explain`
  then runs on an in-memory DuckDB holding them.

Timestamps cross from Spark to Python as UTC instants and are made naive UTC (the store's
form) before the embedded code sees them; a change point's time comes back as epoch
microseconds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.engines.spark.collect import to_driver
from alphatrace.engines.spark.governance import (
    EXCLUSIONS_VIEW,
    by_partition,
    from_micros,
    micros,
    naive_utc,
)
from alphatrace.engines.spark.lake import Lake, lake
from alphatrace.engines.spark.slices import MIN_ROWS, passes_on
from alphatrace.engines.spark.small import create_views
from alphatrace.forensics import changepoints as cpmod
from alphatrace.forensics import data
from alphatrace.forensics.api import Forensics, PolicyArg, Progress, changes, load_config
from alphatrace.forensics.config import ForensicsConfig
from alphatrace.forensics.slices import PassesOn
from alphatrace.parse import parse_since
from alphatrace.store import Store

CHANGES = ("agent string, metric string, run_index bigint, run_id string, ts_us bigint, "
           "before double, after double, p double")
_CHANGES = pa.schema([
    ("agent", pa.string()), ("metric", pa.string()), ("run_index", pa.int64()),
    ("run_id", pa.string()), ("ts_us", pa.int64()), ("before", pa.float64()),
    ("after", pa.float64()), ("p", pa.float64())])
_NO_EXCLUSIONS = "CREATE TABLE run_exclusions (run_id VARCHAR, rule VARCHAR, reason VARCHAR, policy_hash VARCHAR)"
_MARKET = ("bars", "funding", "symbol_aliases")
_FEWER = "select fewer runs (--agent, --strategy, --since)"


def _aware(v: Any) -> Any:
    """A naive-UTC datetime as an aware one: pyspark reads a naive one in the local zone."""
    return v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v


class _Export:
    """The export's tables on Spark: the ledger as a view (read `AS ledger`, the name the
    embedded SQL uses), the exclusions as `run_exclusions` (empty when not exported)."""

    def __init__(self, spark: Any, tables: Path | Lake) -> None:
        self.spark = spark
        self.tables = lake(tables)
        self.view = f"_alphatrace_fx_ledger_{uuid.uuid4().hex}"
        self.tables.require(spark, "ledger").createOrReplaceTempView(self.view)
        exclusions = self.tables.read(spark, "run_exclusions")
        if exclusions is not None:
            exclusions.createOrReplaceTempView(EXCLUSIONS_VIEW)
        else:
            spark.sql("SELECT CAST(NULL AS STRING) AS run_id, CAST(NULL AS STRING) AS rule, "
                      "CAST(NULL AS STRING) AS reason, CAST(NULL AS STRING) AS policy_hash "
                      "WHERE false").createOrReplaceTempView(EXCLUSIONS_VIEW)

    def sql(self, text: str, params: list[Any]) -> Any:
        """`text` (embedded SQL over `ledger`, `?` parameters) on Spark."""
        return self.spark.sql(text.replace("FROM ledger", f"FROM {self.view} AS ledger"),
                              args=[_aware(p) for p in params])

    def runs(self, f: data.Filters, extra: list[str] | None = None) -> Any:
        """The included runs `f` selects (every ledger column)."""
        where, params = f.where(extra)
        return self.sql(f"SELECT * FROM ledger WHERE {where}", params)

    def events(self, name: str, run_ids: Any, attrs: bool = False) -> pa.Table | None:
        """The rows of event table `name` whose run is in `run_ids` (a frame with run_id);
        with `attrs`, only (run_id, attrs) of the rows that have attrs, for every selected run
        (they scale with the runs: fetched a partition at a time, `collect.to_driver`)."""
        table = self.tables.read(self.spark, name)
        if table is None:
            return None
        df = table.join(run_ids, "run_id", "left_semi")
        if not attrs:
            return naive_utc(df.toArrow())
        df = df.where("attrs IS NOT NULL").select("run_id", "attrs")
        return naive_utc(to_driver(df, f"the selected runs' {name} attrs", _FEWER))


def names(spark: Any, tables: Path, scope: str) -> set[str]:
    """The agents or strategies (`scope`) of the export's ledger."""
    ex = _Export(spark, tables)
    return {str(r[0]) for r in ex.sql(
        f"SELECT DISTINCT {scope} FROM ledger WHERE {scope} IS NOT NULL", []).collect()}


def _driver(tables: dict[str, pa.Table | None]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (UTC) with `tables` as tables (None: left out) and an empty
    `run_exclusions` unless given."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, tbl in tables.items():
        if tbl is not None:
            con.register("_fx_in", tbl)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _fx_in')
            con.unregister("_fx_in")
    if tables.get("run_exclusions") is None:
        con.execute(_NO_EXCLUSIONS)
    return con


class SparkForensics(Forensics):
    """`Forensics` whose store holds the runs Spark selected, whose change points run on
    Spark, each agent's runs in one partition, and whose slice searches over at least `min_rows` runs make
    their histogram passes on the executors (`slices.passes_on`)."""

    def __init__(self, store: Store, export: _Export, min_rows: int = MIN_ROWS) -> None:
        super().__init__(store)
        self.export = export
        self.min_rows = min_rows

    def _passes_on(self) -> PassesOn:
        return passes_on(self.export.spark, self.min_rows)

    def _changes(self, f: data.Filters, cfg: ForensicsConfig) -> list[cpmod.Change]:
        runs = self.export.runs(f, ["agent IS NOT NULL"])
        got = by_partition(runs, ["agent"], partial(_changes_partition, cfg),
                           CHANGES).toArrow().to_pylist()
        out = [cpmod.Change(r["agent"], r["metric"], int(r["run_index"]), r["run_id"],
                            None if r["ts_us"] is None else from_micros(int(r["ts_us"])),
                            r["before"], r["after"], float(r["p"])) for r in got]
        out.sort(key=lambda c: (c.agent, c.run_index, c.metric))
        return out


def _changes_partition(cfg: ForensicsConfig, tbl: pa.Table) -> pa.Table:
    """A partition's runs (in a Python worker): the confirmed change points of its agents
    (`changes` puts each agent's runs in its own order)."""
    con = _driver({"ledger": naive_utc(tbl)})
    try:
        found = changes(con, data.Filters(), cfg)
    finally:
        con.close()
    return pa.table({
        "agent": [c.agent for c in found], "metric": [c.metric for c in found],
        "run_index": [c.run_index for c in found], "run_id": [c.run_id for c in found],
        "ts_us": [None if c.ts is None else micros(c.ts) for c in found],
        "before": [c.before for c in found], "after": [c.after for c in found],
        "p": [c.p for c in found]}, schema=_CHANGES)


def forensics(spark: Any, tables: Path, agent: str | None = None, strategy: str | None = None,
              since: str | dt.datetime | dt.date | None = None, holdout: float | None = None,
              depth: int | None = None, *, policy: PolicyArg = None,
              progress: Progress | None = None, min_rows: int = MIN_ROWS) -> dict[str, Any]:
    """`alphatrace forensics` over the export in `tables` (the same document); searches over
    at least `min_rows` runs make their histogram passes on the executors."""
    cfg, _ = load_config(policy)
    ex = _Export(spark, tables)
    f = data.Filters(agent, strategy, parse_since(since))
    cc = cfg.clusters
    wanted = ["run_id", "ts", "agent", "strategy", cfg.target,
              *(c for c in cc.features if data.BASE_COLUMNS[c] == c)]
    runs = ex.runs(f, [f"{cfg.target} IS NOT NULL"]).select(*dict.fromkeys(wanted))
    ledger = naive_utc(to_driver(runs, "the selected runs' features (~120 MB per million runs)",
                                 _FEWER))
    ids = runs.select("run_id")
    attrs = ({name: ex.events(name, ids, attrs=True) for name in ("alpha", "telemetry")}
             if cc.attrs else {})
    for name in ("alpha", "telemetry"):  # the attrs SQL reads both: an empty one if absent
        if attrs.get(name) is None:
            attrs[name] = pa.table({"run_id": pa.array([], pa.string()),
                                    "attrs": pa.array([], pa.string())})
    con = _driver({"ledger": ledger, **attrs})
    try:
        fx = SparkForensics(Store(read_only=True, con=con), ex, min_rows)
        return fx.forensics(agent, strategy, f.since, holdout, depth, policy=policy,
                            progress=progress)
    finally:
        con.close()


def explain(spark: Any, tables: Path, run_id: str, *, policy: PolicyArg = None) -> dict[str, Any]:
    """`alphatrace explain RUN_ID` over the export in `tables` (the same document)."""
    cfg, _ = load_config(policy)
    ex = _Export(spark, tables)
    row = naive_utc(ex.sql("SELECT * FROM ledger WHERE run_id = ?", [run_id]).toArrow())
    ledger = row
    if row.num_rows:
        hist_sql, params = data.history_sql(row.to_pylist()[0], cfg.explain.history_runs)
        ledger = pa.concat_tables([row, naive_utc(ex.sql(hist_sql, params).toArrow())])
    this = spark.createDataFrame([(run_id,)], "run_id string")
    got: dict[str, pa.Table | None] = {"ledger": ledger}
    for name in ("alpha", "telemetry", "pnl", "legs", "run_exclusions"):
        got[name] = ex.events(name, this)
    if got["legs"] is None:  # the embedded code reads the legs only when the table exists
        del got["legs"]
    con = _driver(got)
    try:
        create_views(con, lambda t: ex.tables.driver_source(spark, t), list(_MARKET))
        return Forensics(Store(read_only=True, con=con)).explain(run_id, policy=policy)
    finally:
        con.close()
