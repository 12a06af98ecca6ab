"""The Spark session alphatrace runs on (pyspark imported here and in the runners only)."""

from __future__ import annotations

import os
import sys
from typing import Any

from alphatrace.errors import InputError


def session() -> Any:
    """The active Spark session, or a new local one. Either way the session time zone is UTC
    (the store's instants) and Parquet timestamps are written as microseconds (what the
    embedded engine and `alphatrace export` read and write)."""
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
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    return spark
