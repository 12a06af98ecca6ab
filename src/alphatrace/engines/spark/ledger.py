"""The ledger on Spark: `ledger.build.ledger_sql` in the Spark dialect over an export.

`alphatrace export --to parquet DIR` writes the store's tables; this reads `legs`,
`telemetry`, `pnl` and `ingested_files` from DIR as Spark views, adds the two small relations
(`small.small_relations`: computed on the driver) and runs the same SQL builder the embedded
engine runs, with `SPARK` primitives. The rows equal the embedded engine's ledger by run_id,
doubles bit for bit (tests/spark/test_ledger_parity.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from alphatrace.engines.spark.dialect import SPARK
from alphatrace.engines.spark.lake import Lake, lake
from alphatrace.engines.spark.small import small_relations
from alphatrace.ledger.build import LEDGER_COLUMNS, SOURCES, ledger_sql, single_sources
from alphatrace.ledger.policy import ReconcileConfig

INPUTS = ("legs", "telemetry", "pnl", "ingested_files")
_PARAMS = ("agent STRING, fee_rate DOUBLE, horizon_s DOUBLE, size_usd DOUBLE, "
           "include_funding BOOLEAN")


def read_views(spark: Any, tables: Lake, names: tuple[str, ...]) -> None:
    """Each `names` table of the export in `tables` as a Spark temp view of that name."""
    for name in names:
        tables.require(spark, name).createOrReplaceTempView(name)


def ledger_frame(spark: Any, tables: Path | Lake, cfg: ReconcileConfig) -> Any:
    """The ledger of the export in `tables` as a Spark DataFrame (columns LEDGER_COLUMNS)."""
    lk = lake(tables)
    read_views(spark, lk, INPUTS)
    return ledger_over_views(
        spark, small_relations(lambda t: lk.driver_source(spark, t), cfg), cfg)


def small_view(spark: Any, rows: pa.Table, schema: str, name: str) -> None:
    """The driver's `rows` as the Spark temp view `name`, joined by broadcast: a DataFrame made
    from local rows has no size Spark knows, so every join against it would otherwise be a
    sort-merge join that shuffles the large side (bench/RESULTS.md, session "sparkledger")."""
    from pyspark.sql import functions as F

    F.broadcast(spark.createDataFrame(rows.to_pylist(), schema=schema)
                ).createOrReplaceTempView(name)


def single_sources_on(spark: Any) -> frozenset[str]:
    """The sources (`ledger.build.SOURCES`) of the views in which no run has several rows, by
    the embedded engine's own query (`single_sources`), in one Spark job: the ledger's text
    then leaves out their several-row halves (`ledger_sql`'s `single`). Usually every source:
    a run has one signal, one telemetry record and one pnl event, and the halves cost a
    shuffle and a join each for no row (bench/RESULTS.md, session "sparkledger")."""
    row = spark.sql(single_sources(dict(SOURCES))).first()
    return frozenset(name for name in SOURCES if row[name])


def ledger_over_views(spark: Any, small: dict[str, pa.Table], cfg: ReconcileConfig) -> Any:
    """The ledger from the views `legs`, `telemetry`, `pnl` and `ingested_files`, with the
    small relations `params` and `pnl_keys` (`small.small_relations`)."""
    small_view(spark, small["params"], _PARAMS, "_sp_params")
    small_view(spark, small["pnl_keys"], "alias STRING, key STRING", "_sp_pnlkeys")
    sql = ledger_sql(cfg.hash, pnl_keys="_sp_pnlkeys", params="_sp_params", dialect=SPARK,
                     single=single_sources_on(spark))
    return spark.sql(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ({sql}) l")
