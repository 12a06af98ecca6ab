"""Bulk ingest scaled out on Spark: each input file validated in an executor by the embedded
ingest (`store.shard.validate_file`), then one deduplication across files on the event identity
(kind, event_id), the earliest (file, line) kept: what `alphatrace ingest` of the same files, in
the same order, into an empty store accepts, counts as duplicate and quarantines.

The output is a folder of Parquet tables the Spark engine reads (`--tables DIR`): `telemetry`,
`alpha`, `pnl`, `quarantine` and `ingested_files`, each `<table>.parquet` (a Spark output
folder), or those tables in a catalog namespace (`--tables catalog.schema`, `lake.py`), with the file ids a fresh store would give (1, 2, … in input order). Per-file counts in
`ingested_files` are the global ones: a line first seen in an earlier file is a duplicate of
its own file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from alphatrace.engines.spark.lake import lake
from alphatrace.engines.spark.session import session
from alphatrace.store.ingest import IngestReport
from alphatrace.store.shard import EVENT_TABLES, ShardReport, shard_dir, validate_file

STAGING = "_shards"


def ingest_sharded(files: list[str], out: Path, kind: str | None = None) -> IngestReport:
    """Ingest `files` (resolved, in input order) into the tables of `out` (replaced): a
    folder of Parquet tables, or a catalog namespace (`lake.lake`), on the session `session()`
    gives (its UTC zone and microsecond timestamps). The shards are staged in `out/_shards`,
    or, for a namespace, in a temporary folder of this machine (`TMPDIR`: on a cluster, one
    the executors see too)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = session()
    lk = lake(out)
    if lk.folder is not None:
        lk.folder.mkdir(parents=True, exist_ok=True)
        staging = lk.folder / STAGING
    else:
        staging = Path(tempfile.mkdtemp(prefix="alphatrace-shards-"))
    shutil.rmtree(staging, ignore_errors=True)
    shards = _validate_files(spark, files, str(staging), kind)

    def staged(table: str) -> Any:
        return spark.read.parquet(*(str(shard_dir(staging, s.key) / f"{table}.parquet")
                                    for s in shards))

    # Range-partitioned on event_id once: the window's partitions and the output's order
    # both follow from it, so Spark shuffles the rows once (a window by event_id, then a sort,
    # shuffled them twice).
    first = Window.partitionBy("event_id").orderBy("file_id", "line")
    accepted: dict[int, int] = {}
    by_kind: dict[str, int] = {}
    for table in EVENT_TABLES:
        lk.write(staged(table).repartitionByRange("event_id")
                 .withColumn("_n", F.row_number().over(first))
                 .where("_n = 1").drop("_n").orderBy("event_id"), table)
        # Counted from what was written (one column's scan), not by running the deduplication
        # again or caching its rows.
        n = 0
        for row in lk.require(spark, table).groupBy("file_id").count().collect():
            accepted[int(row["file_id"])] = accepted.get(int(row["file_id"]), 0) + int(row["count"])
            n += int(row["count"])
        if n:
            by_kind[table] = n
    lk.write(staged("quarantine").orderBy("file_id", "line"), "quarantine")
    report = IngestReport(files=len(shards), by_kind=by_kind)
    fixed = []
    for s in shards:
        new = accepted.get(s.key, 0)
        report.accepted += new
        report.duplicates += s.accepted + s.duplicates - new
        report.quarantined += s.quarantined
        fixed.append((s.key, new, s.accepted + s.duplicates - new))
    counts = spark.createDataFrame(fixed, "file_id LONG, accepted_g LONG, duplicates_g LONG")
    lk.write(staged("ingested_files").join(counts, "file_id")
             .withColumn("accepted", F.col("accepted_g"))
             .withColumn("duplicates", F.col("duplicates_g"))
             .drop("accepted_g", "duplicates_g").orderBy("file_id"), "ingested_files")
    shutil.rmtree(staging, ignore_errors=True)
    return report


# What each shard's task returns: `ShardReport`'s fields.
SHARDS = pa.schema([("key", pa.int64()), ("path", pa.string()), ("accepted", pa.int64()),
                    ("duplicates", pa.int64()), ("quarantined", pa.int64())])


def _validate_files(spark: Any, files: list[str], staging: str, kind: str | None
                    ) -> list[ShardReport]:
    """`validate_file` of each file (key 1, 2, … in input order) in an executor, one file a
    partition. Through the DataFrame API (`mapInArrow`), not `sparkContext`: a Spark Connect
    session has no SparkContext."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            reports = [validate_file(path, key, staging, kind) for key, path in
                       zip(b.column(0).to_pylist(), b.column(1).to_pylist(), strict=True)]
            yield pa.RecordBatch.from_pylist([asdict(r) for r in reports], schema=SHARDS)

    jobs = spark.createDataFrame(list(enumerate(files, 1)), "key LONG, path STRING")
    rows = (jobs.repartition(max(1, len(files)))
            .mapInArrow(run, from_arrow_schema(SHARDS)).collect())
    return sorted((ShardReport(**r.asDict()) for r in rows), key=lambda s: s.key)
