"""Reconcile on Spark: the legs of an export's signals priced against its market, and the
ledger built from them, by the embedded engine's own definitions.

The steps are those of `ledger.reconcile` in full (every signal priced, nothing stored):
the driver builds the small relations and the market (`small.pricing_relations`, DuckDB over
the export); Spark runs `pricing.classified_sql`, then `locate.exits` per partition over every
signal (`locate.exits_in_partitions`), then `pricing.wide_legs_sql` (the rows of
`pricing.priced_legs_sql`, without its join), all in the `SPARK` dialect;
the fingerprint kernel runs per partition too; the ledger is `ledger.build.ledger_sql` over
those legs (`ledger.ledger_over_views`). Legs equal the embedded engine's by event_id and the
ledger by run_id, doubles bit for bit (tests/spark/test_reconcile_parity.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from alphatrace.engines.spark.dialect import SPARK
from alphatrace.engines.spark.kept import materialized, release
from alphatrace.engines.spark.lake import Lake, lake
from alphatrace.engines.spark.ledger import ledger_over_views, read_views, small_view
from alphatrace.engines.spark.locate import exits_in_partitions
from alphatrace.engines.spark.small import Pricing, pricing_relations
from alphatrace.ledger.fingerprint import with_fingerprints_batch
from alphatrace.ledger.policy import ReconcileConfig
from alphatrace.ledger.pricing import LEG_COLUMNS, Relations, classified_sql, wide_legs_sql

INPUTS = ("alpha", "telemetry", "pnl", "ingested_files")
# The driver's relations as Spark views: (name in `Pricing.relations`, view, Spark schema).
_VIEWS = (
    ("params", "_rc_params", "agent STRING, fee_rate DOUBLE, horizon_s DOUBLE, "
                             "size_usd DOUBLE, include_funding BOOLEAN"),
    ("symmap", "_rc_symmap", "alias STRING, symbol STRING, status STRING, "
                             "candidates ARRAY<STRING>"),
    ("markets", "_rc_markets", "sid INT, symbol STRING, interval_s INT, iv_us BIGINT, "
                               "bar_interval STRING, first_us BIGINT"),
    ("settlements", "_rc_settle", "i BIGINT, cum DOUBLE"),
)


@dataclass(frozen=True)
class Frames:
    """The legs (columns LEG_COLUMNS) and the ledger (LEDGER_COLUMNS) as Spark DataFrames. The
    legs are computed once and kept on the executors (`materialized`): `release` them when
    done."""

    legs: Any
    ledger: Any

    def release(self) -> None:
        """Drop the kept legs from the executors' storage (`kept.release`)."""
        release(self.legs)


def fingerprinted(legs: Any) -> Any:
    """`legs` (the rows of `priced_legs_sql`) with their `fingerprint`, computed per partition
    by the embedded engine's kernel (`ledger.fingerprint`)."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    tz = legs.sparkSession.conf.get("spark.sql.session.timeZone")
    schema = pa.schema([*to_arrow_schema(legs.schema, timezone=tz), ("fingerprint", pa.int64())])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if b.num_rows:
                yield with_fingerprints_batch(b)

    return legs.mapInArrow(run, from_arrow_schema(schema))


def priced_legs(spark: Any, tables: Path | Lake, cfg: ReconcileConfig) -> tuple[Any, Pricing]:
    """The legs of the export in `tables` priced with `cfg`, as a plan not yet run (columns
    LEG_COLUMNS), and the driver's `Pricing` it reads. Each signal is read once and stays in
    its partition: joined by broadcast to the driver's relations, through the two kernels
    (`locate.exits`, the fingerprints), never shuffled."""
    lk = lake(tables)
    read_views(spark, lk, INPUTS)
    symbols = spark.sql("SELECT DISTINCT symbol FROM alpha").toArrow()
    pricing = pricing_relations(lambda t: lk.driver_source(spark, t), cfg, symbols)
    for name, view, schema in _VIEWS:
        small_view(spark, pricing.relations[name], schema, view)
    rel = Relations(todo="alpha")
    signals = spark.sql(classified_sql(rel, cfg.bar_interval_s, SPARK))
    exits_in_partitions(signals, pricing.market).createOrReplaceTempView("_rc_exits")
    priced = spark.sql(wide_legs_sql(rel, cfg.hash, "_rc_exits", SPARK))
    return fingerprinted(priced).select(*LEG_COLUMNS), pricing


def reconcile_frames(spark: Any, tables: Path | Lake, cfg: ReconcileConfig) -> Frames:
    """Legs and ledger of the export in `tables`, priced with `cfg`. The legs are computed here,
    once (the ledger and the caller both read them): `Frames.release` them when done."""
    legs_plan, pricing = priced_legs(spark, tables, cfg)
    legs = materialized(legs_plan)
    legs.createOrReplaceTempView("legs")
    return Frames(legs, ledger_over_views(spark, pricing.relations, cfg))
