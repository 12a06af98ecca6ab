"""`engines.spark.session.session()`: a session it starts gets two shuffle partitions per core
instead of Spark's 200, and its JVM the JIT options (`JIT_OPTIONS`); one the user configured
keeps the user's number and Java options. Run in child processes: the tests' shared session
(conftest) is already running, and `session()` rightly leaves a running session as it is."""

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
    print(s.sparkContext.getConf().get("spark.driver.defaultJavaOptions"))
    print(" ".join(s._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                   .getInputArguments()))
    s.stop()
    SparkContext(conf=SparkConf().setMaster("local[2]").setAppName("user")
                 .set("spark.sql.shuffle.partitions", "3"))
    print(session().conf.get("spark.sql.shuffle.partitions"))
""")


def _child(script: str, submit_args: str) -> list[str]:
    """The lines `script` prints in a new Python process with `PYSPARK_SUBMIT_ARGS`."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17+ (not on PATH)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_")}
    env.update(PYSPARK_PYTHON=sys.executable,
               PYSPARK_SUBMIT_ARGS=f"--master local[2] --conf spark.ui.enabled=false "
                                   f"{submit_args} pyspark-shell")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600, check=True).stdout.split("\n")


@pytest.fixture(scope="module")
def plain() -> list[str]:
    """What `_CHILD` prints when the user set neither partitions nor Java options."""
    return _child(_CHILD, "")


def test_a_new_session_sizes_its_shuffle_partitions_to_the_cores(plain: list[str]) -> None:
    partitions, cores = plain[0].split()
    assert (int(cores), int(partitions)) == (2, 4)
    assert plain[3] == "3"


def test_a_new_session_starts_its_jvm_with_the_jit_options(plain: list[str]) -> None:
    from alphatrace.engines.spark.session import JIT_OPTIONS

    assert plain[1] == JIT_OPTIONS
    assert set(JIT_OPTIONS.split()) <= set(plain[2].split())


def test_java_options_the_user_gives_are_kept() -> None:
    """A user's `spark.driver.defaultJavaOptions` is kept and ours are not added; a user's
    `spark.driver.extraJavaOptions` follow ours on the JVM's command line, so their flags
    win where both set one."""
    out = _child(_CHILD, "--conf spark.driver.defaultJavaOptions=-Dalphatrace.probe=1")
    assert out[1] == "-Dalphatrace.probe=1"
    args = out[2].split()
    assert "-Dalphatrace.probe=1" in args
    assert not any(a.startswith("-XX:Tier4") for a in args)
    out = _child(_CHILD, "--conf spark.driver.extraJavaOptions=-XX:Tier4CompileThreshold=7")
    args = out[2].split()
    assert args.index("-XX:Tier4CompileThreshold=7") > args.index(
        "-XX:Tier4CompileThreshold=150000")
