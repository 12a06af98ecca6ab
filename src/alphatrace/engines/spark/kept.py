"""Rows computed once and kept on the executors (a local checkpoint), and their release."""

from __future__ import annotations

from typing import Any


def materialized(df: Any, disk_only: bool = False) -> Any:
    """`df` computed now, once, and kept on the executors as a plan of its own (a local
    checkpoint); `disk_only` keeps the rows on the executors' local disk only (rows read once,
    which in local mode would otherwise sit in the driver's JVM heap). Not `cache()`: Spark
    finds a cached plan only where the same plan is read again, and the ledger SQL reads the
    legs in several CTEs, where the analyzer gives each read new attribute ids; no read
    matched, so every read of the legs priced every signal again (the two Python kernels and
    their joins, four times over; bench/RESULTS.md, session "sparkledger"). A checkpoint is a
    plain scan of stored rows wherever it is read. Like a cache on local disk, it is lost with
    its executor: a job that then reads it fails instead of recomputing it."""
    if not disk_only:
        return df.localCheckpoint(eager=True)
    from pyspark import StorageLevel

    return df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)


def release(df: Any) -> None:
    """Drop the rows `materialized` kept for `df` from the executors' storage. On Spark
    Connect the server drops them when the client's DataFrame goes."""
    jdf = getattr(df, "_jdf", None)
    if jdf is not None:
        jdf.queryExecution().logical().rdd().unpersist(False)
