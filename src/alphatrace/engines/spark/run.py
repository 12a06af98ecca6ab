"""What `alphatrace ... --engine spark` runs: the ledger of an export written as Parquet
(`ledger`), and the reads `confidence` and `gates evaluate` make (`spark_reads`)."""

from __future__ import annotations

from pathlib import Path

from alphatrace.engines.spark.governance import SparkReads
from alphatrace.engines.spark.ledger import ledger_frame
from alphatrace.engines.spark.session import session
from alphatrace.ledger.policy import ReconcileConfig


def ledger_to_parquet(tables: Path, out: Path, cfg: ReconcileConfig) -> int:
    """Build the ledger of the export in `tables` on Spark and write it to the Parquet
    directory `out` (replaced), rows in (ts, run_id) order; the number of rows."""
    df = ledger_frame(session(), tables, cfg).orderBy("ts", "run_id").cache()
    try:
        df.write.mode("overwrite").parquet(str(out))
        return int(df.count())
    finally:
        df.unpersist()


def spark_reads(tables: Path) -> SparkReads:
    """The ledger of the export in `tables`, read on the session (`session()`)."""
    return SparkReads(session(), tables)
