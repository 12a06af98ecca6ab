"""Rows that scale with the runs come to the driver a partition at a time
(engines/spark/collect.py `to_driver`): a collect larger than `spark.driver.maxResultSize`
succeeds when each partition is within it, gives what `toArrow()` gives, and a single
partition above the limit still stops with an InputError that says what to change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from alphatrace.engines.spark.collect import too_big
from tests.spark.test_forensics_parity import POLICY, _ok, _synthetic

# The message Spark 4.3 gave (bench/RESULTS.md, session of 2026-12-04 19:24, addendum)
SEEN = ("An error occurred while calling o180.getResult.\n: org.apache.spark.SparkException: "
        "Exception thrown in awaitResult: \n\tat org.apache.spark.util.SparkThreadUtils$"
        ".awaitResult(SparkThreadUtils.scala:56)\nCaused by: org.apache.spark.SparkException: "
        "Job aborted due to stage failure: Total size of serialized results of 3 tasks "
        "(1060.2 MiB) is bigger than spark.driver.maxResultSize (1024.0 MiB)\n\tat org.apache")


def test_the_refusal_is_read_from_sparks_message() -> None:
    assert too_big(SEEN) == ("1060.2 MiB", "1024.0 MiB")
    assert too_big("Job aborted due to stage failure: Task 3 failed 4 times") is None


def test_the_rows_are_what_to_arrow_gives(spark: Any) -> None:
    """Same schema, same rows in the same order: timestamps, arrays, maps, NULLs, empty
    partitions, large strings when the session asks for them, no rows at all."""
    from alphatrace.engines.spark.collect import to_driver

    df = spark.range(0, 5000, numPartitions=9).where("id < 2000 OR id >= 4500").selectExpr(
        "id", "CASE WHEN id % 7 = 0 THEN NULL ELSE id * 0.5 END AS x",
        "timestamp_micros(id * 1000003) AS ts", "CAST(id AS STRING) AS s",
        "array(id, id + 1) AS a", "map('k', id) AS m")
    want = df.toArrow()
    got = to_driver(df, "rows", "fewer")
    assert got.schema == want.schema and got.equals(want)
    assert got.num_rows == 2500
    assert to_driver(df.where("id < 0"), "rows", "fewer").equals(df.where("id < 0").toArrow())
    spark.conf.set("spark.sql.execution.arrow.useLargeVarTypes", "true")
    try:
        got = to_driver(df, "rows", "fewer")
        assert got.schema.field("s").type == pa.large_string() and got.equals(df.toArrow())
    finally:
        spark.conf.unset("spark.sql.execution.arrow.useLargeVarTypes")


# A session of its own (the limit is the SparkContext's, fixed at its start), in a process of
# its own, whose limit is 1 MiB: ~12 MB of rows in 40 partitions (~300 KB each), the same
# rows in one partition, and the old single action over all of them.
_SCRIPT = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from pyspark.sql import SparkSession
    from alphatrace.engines.spark.collect import to_driver, too_big
    from alphatrace.errors import InputError
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.maxResultSize", "1m").getOrCreate())
    spark.sparkContext.setLogLevel("OFF")
    def rows(parts):
        return spark.range(0, 300_000, numPartitions=parts).selectExpr(
            "id", "id * 3 + 1 AS y", "repeat('x', CAST(id % 50 AS INT)) AS s")
    try:
        rows(40).toArrow()
        print("ONE ACTION: taken")
    except Exception as e:
        print("ONE ACTION: refused" if too_big(str(e)) else f"ONE ACTION: {e}")
    got = to_driver(rows(40), "the selected runs' features", "select fewer runs (--agent)")
    with pa.OSFile(sys.argv[1], "wb") as f, pa.ipc.new_file(f, got.schema) as w:
        w.write_table(got)
    try:
        to_driver(rows(1), "the selected runs' features", "select fewer runs (--agent)")
        print("NO ERROR")
    except InputError as e:
        print("INPUT ERROR:", e)
    spark.stop()
""")


def _python(script: str, *args: str) -> list[str]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         timeout=1200, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


@pytest.mark.slow
def test_a_collect_over_the_drivers_limit_comes_a_partition_at_a_time(tmp_path: Path) -> None:
    lines = _python(_SCRIPT, str(tmp_path / "got.arrow"))
    # the rows are more than the limit: one action over all of them is refused
    assert "ONE ACTION: refused" in lines, lines
    with pa.memory_map(str(tmp_path / "got.arrow")) as f:
        got = pa.ipc.open_file(f).read_all()
    assert got.nbytes > 10 * 2**20
    ids = np.arange(300_000)
    assert np.array_equal(got.column("id").to_numpy(), ids)  # every row, in order
    assert np.array_equal(got.column("y").to_numpy(), ids * 3 + 1)
    assert got.column("s").to_pylist() == ["x" * int(i % 50) for i in ids]
    # one partition above the limit: the error says what to change
    err = next(ln for ln in lines if ln.startswith(("INPUT ERROR:", "NO ERROR")))
    assert err.startswith("INPUT ERROR: the selected runs' features: one partition reached "), err
    assert "above spark.driver.maxResultSize (1024.0 KiB)" in err, err
    assert "--conf spark.driver.maxResultSize=4g" in err and "--agent" in err
    assert "spark.sql.shuffle.partitions" in err


# forensics over the synthetic export, its tables written by Spark in 8 files each, in a session
# whose limit is below the runs' features and attrs together but above any one partition.
_FORENSICS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pyspark.sql import SparkSession
    from alphatrace.engines.spark.collect import too_big
    from alphatrace.engines.spark.forensics import forensics
    from alphatrace.forensics import data
    from alphatrace.forensics.api import load_config
    import json
    lake, snap, pol = (Path(a) for a in sys.argv[1:4])
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "7")
             .config("spark.sql.files.maxPartitionBytes", "16k")  # a partition per file
             .config("spark.driver.maxResultSize", sys.argv[4]).getOrCreate())
    spark.sparkContext.setLogLevel("OFF")
    for f in sorted(lake.glob("*.parquet")):
        spark.read.parquet(str(f)).repartition(8).write.parquet(str(snap / f.name))
    cfg, _ = load_config(pol)
    cols = ["run_id", "ts", "agent", "strategy", cfg.target,
            *(c for c in cfg.clusters.features if data.BASE_COLUMNS[c] == c)]
    try:  # the features forensics selects, in one action
        spark.read.parquet(str(snap / "ledger.parquet")).select(*dict.fromkeys(cols)).toArrow()
        print("ONE ACTION: taken")
    except Exception as e:
        print("ONE ACTION: refused" if too_big(str(e)) else f"ONE ACTION: {e}")
    print("DOC:", json.dumps(forensics(spark, snap, policy=pol), sort_keys=True, default=str))
    spark.stop()
""")


@pytest.mark.slow
def test_forensics_with_a_small_result_limit_is_the_embedded_document(tmp_path: Path) -> None:
    from alphatrace.forensics.api import Forensics
    from alphatrace.store import Store

    db, lake, pol = tmp_path / "syn.duckdb", tmp_path / "lake", tmp_path / "p.yaml"
    pol.write_text(POLICY)
    _synthetic(db)
    _ok("export", "--to", "parquet", str(lake), "--db", str(db), "--json")
    with Store(db, read_only=True) as store:
        want = Forensics(store).forensics(policy=pol)
    lines = _python(_FORENSICS, str(lake), str(tmp_path / "snap"), str(pol), "256k")
    assert "ONE ACTION: refused" in lines, lines  # the features are more than the limit
    doc = next(ln for ln in lines if ln.startswith("DOC: "))[len("DOC: "):]
    assert doc == json.dumps(want, sort_keys=True, default=str)
    assert want["clusters"] and want["changepoints"]
