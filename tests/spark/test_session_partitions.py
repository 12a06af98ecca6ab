"""`engines.spark.session.session()`: a session it starts gets two shuffle partitions per core
instead of Spark's 200; one the user configured keeps the user's number. Run in a child
process: the tests' shared session (conftest) is already running, and `session()` rightly
leaves a running session as it is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

_CHILD = textwrap.dedent("""
    from pyspark import SparkConf, SparkContext
    from alphatrace.engines.spark.session import session
    s = session()
    print(s.conf.get("spark.sql.shuffle.partitions"), s.sparkContext.defaultParallelism)
    s.stop()
    SparkContext(conf=SparkConf().setMaster("local[2]").setAppName("user")
                 .set("spark.sql.shuffle.partitions", "3"))
    print(session().conf.get("spark.sql.shuffle.partitions"))
""")


def test_a_new_session_sizes_its_shuffle_partitions_to_the_cores() -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17+ (not on PATH)")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false pyspark-shell"}
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout.split("\n")
    partitions, cores = out[0].split()
    assert (int(cores), int(partitions)) == (2, 4)
    assert out[1] == "3"
