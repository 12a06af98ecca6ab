"""The Spark session alphatrace runs on (pyspark imported here and in the runners only)."""

from __future__ import annotations

import os
import sys
from typing import Any

from alphatrace.errors import InputError

_PARTITIONS = "spark.sql.shuffle.partitions"
_JAVA_OPTIONS = "spark.driver.defaultJavaOptions"
# The optimizing JIT (C2) compiles a method after 10x its default invocations and loop
# iterations (the quick C1 code runs until then): bench/RESULTS.md, session "sparkjvm".
JIT_OPTIONS = ("-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
               "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000")


def session() -> Any:
    """The active Spark session, or a new local one. Either way the session time zone is UTC
    (the store's instants) and Parquet timestamps are written as microseconds (what the
    embedded engine and `alphatrace export` read and write).

    A new session whose configuration does not set `spark.sql.shuffle.partitions` gets two per
    core (`defaultParallelism`) instead of Spark's 200: adaptive execution coalesces small
    partitions only on the reading side, so every map task still writes 200 pieces, and most
    of Spark's CPU here is per task and per stage, not per row (docs/spark.md). A session the
    user configured, one already running, or a Spark Connect session (the server's settings)
    keeps its setting.

    A new session whose JVM this call starts (in local mode that JVM does all the work) gets
    `JIT_OPTIONS` as `spark.driver.defaultJavaOptions`: its optimizing JIT (C2) waits 10x
    longer before compiling a method. C2 was a third of the JVM's CPU per stage at 100k runs,
    the largest fixed cost, much of it on methods that run too little to pay the compile
    back: with the higher thresholds a stage cost 5-19% less CPU from 100k to 1M runs and
    the tasks' own CPU was unchanged, where C1 alone (`-XX:TieredStopAtLevel=1`) saved more
    at 100k and lost at 1M (bench/RESULTS.md, session "sparkjvm"). Options the user gives
    (`spark.driver.extraJavaOptions`, `--driver-java-options`) come after these on the JVM's
    command line and win; a user who sets `spark.driver.defaultJavaOptions`
    (`PYSPARK_SUBMIT_ARGS`, `spark-defaults.conf`) keeps it, and a JVM already running is
    left as it is."""
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
        builder = SparkSession.builder.appName("alphatrace")
        if _starts_local_jvm() and not _java_defaults_set():
            builder = builder.config(_JAVA_OPTIONS, JIT_OPTIONS)
        spark = builder.getOrCreate()
        sc = spark_context(spark)
        if sc is not None and not sc.getConf().contains(_PARTITIONS):
            spark.conf.set(_PARTITIONS, str(2 * sc.defaultParallelism))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    return spark


def _starts_local_jvm() -> bool:
    """Whether creating a session now starts this process's Spark JVM: no JVM yet (pyspark
    keeps one after a session stops) and no Spark Connect server to talk to instead."""
    if any(os.environ.get(k) for k in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")):
        return False
    if os.environ.get("SPARK_API_MODE", "").lower() == "connect":
        return False
    try:
        from pyspark import SparkContext
    except ImportError:  # pyspark-client: Connect only
        return False
    return SparkContext._gateway is None


def _java_defaults_set() -> bool:
    """Whether the user may set `spark.driver.defaultJavaOptions` where Spark's launcher reads
    it: `PYSPARK_SUBMIT_ARGS` (it, or a `--properties-file` not read here), or the
    `spark-defaults.conf` of `SPARK_CONF_DIR` (else `SPARK_HOME/conf`)."""
    args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if _JAVA_OPTIONS in args or "--properties-file" in args:
        return True
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if conf_dir is None:
        try:
            from pyspark.find_spark_home import _find_spark_home
        except ImportError:
            return False
        conf_dir = os.path.join(_find_spark_home(), "conf")
    try:
        with open(os.path.join(conf_dir, "spark-defaults.conf"), encoding="utf-8") as f:
            return any(line.split(maxsplit=1)[:1] == [_JAVA_OPTIONS] for line in f)
    except OSError:
        return False


def spark_context(spark: Any) -> Any | None:
    """The session's SparkContext, or None on Spark Connect, which has none on the client."""
    try:
        return spark.sparkContext
    except Exception:  # pyspark's Connect session raises its own not-implemented error
        return None
