"""The Spark session alphatrace runs on (pyspark imported here and in the runners only)."""

from __future__ import annotations

import os
import sys
from typing import Any

from alphatrace.errors import InputError

_PARTITIONS = "spark.sql.shuffle.partitions"


def session() -> Any:
    """The active Spark session, or a new local one. Either way the session time zone is UTC
    (the store's instants) and Parquet timestamps are written as microseconds (what the
    embedded engine and `alphatrace export` read and write).

    A new session whose configuration does not set `spark.sql.shuffle.partitions` gets two per
    core (`defaultParallelism`) instead of Spark's 200: adaptive execution coalesces small
    partitions only on the reading side, so every map task still writes 200 pieces, and most
    of Spark's CPU here is per task and per stage, not per row (docs/spark.md). A session the
    user configured, one already running, or a Spark Connect session (the server's settings)
    keeps its setting."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("--engine spark needs pyspark: pip install 'alphatrace[spark]' "
                         "(and Java 17+)") from None
    spark = SparkSession.getActiveSession()
    if spark is None:
        # A new session's Python workers run this interpreter, which has alphatrace (pyspark
        # would start `python3` from PATH); a cluster's session says where its own is.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = SparkSession.builder.appName("alphatrace").getOrCreate()
        sc = spark_context(spark)
        if sc is not None and not sc.getConf().contains(_PARTITIONS):
            spark.conf.set(_PARTITIONS, str(2 * sc.defaultParallelism))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    return spark


def spark_context(spark: Any) -> Any | None:
    """The session's SparkContext, or None on Spark Connect, which has none on the client."""
    try:
        return spark.sparkContext
    except Exception:  # pyspark's Connect session raises its own not-implemented error
        return None
