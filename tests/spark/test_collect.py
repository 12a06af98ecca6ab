"""Spark's maxResultSize refusal, as a forensics run at 10M runs met it, becomes an InputError
that names the setting and how to select fewer runs (engines/spark/collect.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from alphatrace.engines.spark.collect import too_big

# The message Spark 4.3 gave (bench/RESULTS.md, session of 2026-12-04 19:24, addendum)
SEEN = ("An error occurred while calling o180.getResult.\n: org.apache.spark.SparkException: "
        "Exception thrown in awaitResult: \n\tat org.apache.spark.util.SparkThreadUtils$"
        ".awaitResult(SparkThreadUtils.scala:56)\nCaused by: org.apache.spark.SparkException: "
        "Job aborted due to stage failure: Total size of serialized results of 3 tasks "
        "(1060.2 MiB) is bigger than spark.driver.maxResultSize (1024.0 MiB)\n\tat org.apache")


def test_the_refusal_is_read_from_sparks_message() -> None:
    assert too_big(SEEN) == ("1060.2 MiB", "1024.0 MiB")
    assert too_big("Job aborted due to stage failure: Task 3 failed 4 times") is None


# A session of its own (the limit is the SparkContext's, fixed at its start), in a process of
# its own: a collect of ~8 MB against a limit of 1 MiB, then one within it.
_SCRIPT = textwrap.dedent("""
    from pyspark.sql import SparkSession
    from alphatrace.engines.spark.collect import to_driver
    from alphatrace.errors import InputError
    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.driver.maxResultSize", "1m").getOrCreate())
    big = spark.range(0, 300_000).selectExpr("id", "repeat('x', 20) AS s")
    try:
        to_driver(big, "the selected runs' features", "select fewer runs (--agent)")
        print("NO ERROR")
    except InputError as e:
        print("INPUT ERROR:", e)
    print("ROWS:", to_driver(spark.range(0, 3), "rows", "fewer").num_rows)
    spark.stop()
""")


@pytest.mark.slow
def test_a_collect_over_the_drivers_limit_says_what_to_change() -> None:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    err = next(ln for ln in lines if ln.startswith(("INPUT ERROR:", "NO ERROR")))
    assert err.startswith("INPUT ERROR: the selected runs' features reached "), err
    assert "above spark.driver.maxResultSize (1024.0 KiB)" in err, err
    assert "--conf spark.driver.maxResultSize=4g" in err and "--agent" in err
    assert "ROWS: 3" in lines
