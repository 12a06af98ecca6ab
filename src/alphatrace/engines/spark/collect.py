"""Rows brought to the driver a partition at a time, so no single Spark action's results hold
them all; Spark's size limit, where one partition still meets it, turned into an error that
says what to do.

Spark refuses a job whose task results add up to more than `spark.driver.maxResultSize` (1 GiB
by default) with a Py4J `SparkException` and a Java stack. `forensics --engine spark` collects
every selected run's features to the driver (~120 MB per million runs, docs/spark.md): with
one `toArrow()` that was 1,060 MiB at 10M runs, and Spark refused it (bench/RESULTS.md,
session of 2026-12-04 19:24). `to_driver` fetches the same rows with one job per partition
instead (each job's results are one partition's), so the limit bounds a partition, not the
whole; the driver still ends up holding every row, as with `toArrow()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from alphatrace.engines.spark.kept import materialized, release
from alphatrace.engines.spark.session import spark_context
from alphatrace.errors import InputError

_TOO_BIG = re.compile(r"Total size of serialized results of \d+ tasks \(([^)]+)\) is bigger "
                      r"than spark\.driver\.maxResultSize \(([^)]+)\)")
# The one column each partition's rows cross in: Arrow IPC streams, one per Arrow batch.
_IPC = "ipc binary"
T = TypeVar("T")


def too_big(message: str) -> tuple[str, str] | None:
    """(collected, limit) as Spark spells them when `message` is its maxResultSize refusal."""
    m = _TOO_BIG.search(message)
    return None if m is None else (m.group(1), m.group(2))


def to_driver(df: Any, what: str, narrow: str) -> pa.Table:
    """The rows of `df` on the driver: what `df.toArrow()` gives (its schema, its rows in its
    order: partition after partition), fetched without one action over every partition.

    Spark computes `df` once, in parallel as `toArrow()` would, each partition's Arrow batches
    written as Arrow IPC streams into one binary column (`mapInArrow`), and keeps those on the
    executors' local disk (a local checkpoint); the driver then reads them one partition per
    job (`toLocalIterator`, the next partition fetched while this one is read) and
    concatenates them. So `spark.driver.maxResultSize` bounds the largest partition's rows
    (in IPC form) rather than all rows; a partition above it still stops the run with an
    `InputError` naming `what`, the setting and `narrow` (how to select fewer rows). On Spark
    Connect (no SparkContext on the client: no local checkpoint of ours to fetch from, and
    its `toLocalIterator` is one execution anyway) this is `toArrow()`, with the same error.
    """
    if spark_context(df.sparkSession) is None:
        return _refused(df.toArrow, what, narrow)
    schema = _arrow_schema(df)
    blobs = materialized(df.mapInArrow(_ipc, _IPC), disk_only=True)
    try:
        batches = _refused(lambda: [b for row in blobs.toLocalIterator(prefetchPartitions=True)
                                    for b in pa.ipc.open_stream(pa.py_buffer(row[0]))],
                           what, narrow)
    finally:
        release(blobs)
    tbl = pa.Table.from_batches(batches) if batches else schema.empty_table()
    return tbl.cast(schema)


def _arrow_schema(df: Any) -> pa.Schema:
    """The Arrow schema `df.toArrow()` gives (instants flagged UTC; large strings and binaries
    when the session asks for them)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    large = df.sparkSession.conf.get("spark.sql.execution.arrow.useLargeVarTypes") == "true"
    return to_arrow_schema(df.schema, error_on_duplicated_field_names_in_struct=True,
                           timezone="UTC", prefers_large_types=large)


def _ipc(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Each non-empty batch of a partition (in a Python worker) as one row: its Arrow IPC
    stream."""
    for b in batches:
        if not b.num_rows:
            continue
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, b.schema) as w:
            w.write_batch(b)
        data = sink.getvalue()
        offsets = pa.py_buffer(np.array([0, data.size], np.int32).tobytes())
        yield pa.RecordBatch.from_arrays(
            [pa.Array.from_buffers(pa.binary(), 1, [None, offsets, data])], names=["ipc"])


def _refused(fetch: Callable[[], T], what: str, narrow: str) -> T:
    """`fetch()`; Spark's maxResultSize refusal becomes an InputError that says what to do."""
    try:
        return fetch()
    except Exception as e:
        sizes = too_big(str(e))
        if sizes is None:
            raise
        raise InputError(
            f"{what}: one partition reached {sizes[0]} on the driver, above "
            f"spark.driver.maxResultSize ({sizes[1]}) (the rows are fetched a partition at "
            f"a time): raise it and the driver's memory (e.g. "
            f"PYSPARK_SUBMIT_ARGS=\"--driver-memory 8g --conf spark.driver.maxResultSize=4g "
            f"pyspark-shell\", or the cluster's settings), split the rows into more "
            f"partitions (spark.sql.files.maxPartitionBytes, spark.sql.shuffle.partitions), "
            f"or {narrow}") from None
