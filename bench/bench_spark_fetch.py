"""Rows to the driver on Spark: one `toArrow()` against `collect.to_driver` (a partition per job,
through Arrow IPC and a disk-only local checkpoint), at N runs shaped like forensics' features:
CPU-seconds, the driver's and the JVM's peak memory, and the bits.

Data: N rows (run_id, ts, agent, strategy and 11 doubles, ~120 bytes a run as forensics
selects them), written once to Parquet in row groups of 100k, read in partitions of ≤ 16 MB
(`spark.sql.files.maxPartitionBytes`), untimed. Each measurement runs in its own process with
its own local[2] session, `spark.driver.memory` 2g and Spark's default maxResultSize, the two
paths alternated; CPU-seconds are the process's and every process under it (the JVM, the
Python workers), from /proc, around each fetch only (after a warm-up job), for the session's
first fetch and a second one (its Python workers and JIT warm). Peak memory is the VmHWM of
the driver (Python) and of the JVM over the second fetch (both reset before it; the first
table is dropped before). Both paths must give the same table.

    python bench/bench_spark_fetch.py [--runs 1000000] [--rounds 2] [--record]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_spark import peak_mib, reset_peak, tree_cpu
from common import machine, record

HERE = Path(__file__).resolve().parent


def prepare(n: int, out: Path) -> None:
    """N feature-like rows → out/rows.parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    cols: dict[str, Any] = {
        "run_id": pa.array([f"r{i:09d}" for i in range(n)]),
        "ts": pa.array(np.arange(n, dtype=np.int64) * 1_000_000 + 1_700_000_000_000_000,
                       pa.timestamp("us", "UTC")),
        "agent": pa.array([f"Agent{i % 40:02d}" for i in range(n)]),
        "strategy": pa.array([("TREND", "CARRY", "MEANREV")[i % 3] for i in range(n)]),
    }
    for k in range(11):
        cols[f"x{k}"] = rng.standard_normal(n)
    pq.write_table(pa.table(cols), out / "rows.parquet", row_group_size=100_000)


def child(mode: str, data: Path) -> dict[str, Any]:
    """One measurement (in its own process)."""
    import pyarrow as pa
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("bench-fetch")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.files.maxPartitionBytes", str(16 << 20)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    jvm = spark.sparkContext._gateway.proc.pid
    df = spark.read.parquet(str(data))
    df.limit(1).collect()  # warm: the JVM's first job
    from alphatrace.engines.spark.collect import to_driver

    cpu = []
    for _ in range(2):  # the first in the session, then again (Python workers and JIT warm)
        for pid in (os.getpid(), jvm):
            reset_peak(pid)
        tbl = None
        cpu0 = tree_cpu(os.getpid())
        tbl = df.toArrow() if mode == "toArrow" else to_driver(df, "rows", "fewer")
        cpu.append(tree_cpu(os.getpid()) - cpu0)
        peaks = (peak_mib(os.getpid()), peak_mib(jvm))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, tbl.schema) as w:
        w.write_table(tbl.combine_chunks())
    res = {"mode": mode, "cpu_s": cpu[0], "cpu_again_s": cpu[1], "rows": tbl.num_rows, "mb": tbl.nbytes / 2**20,
           "partitions": df.rdd.getNumPartitions(), "driver_peak_mb": peaks[0],
           "jvm_peak_mb": peaks[1], "digest": hashlib.sha256(sink.getvalue()).hexdigest()}
    spark.stop()
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    env_line = machine("pyspark", "pyarrow")
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.runs, Path(tmp))
        data = str(Path(tmp) / "rows.parquet")
        results: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            for mode in ("toArrow", "to_driver"):
                p = subprocess.run([sys.executable, __file__, "--child", mode, data],
                                   capture_output=True, text=True)
                if p.returncode:
                    sys.exit(f"{mode} failed:\n{p.stderr[-3000:]}")
                results.append(json.loads(p.stdout.strip().splitlines()[-1]))
                print(results[-1], flush=True)
    assert len({r["digest"] for r in results}) == 1, "the two paths gave different tables"
    r0 = results[0]
    lines = [f"### bench_spark_fetch.py: {args.runs:,} rows ({r0['mb']:.0f} MB in Arrow, "
             f"{r0['partitions']} partitions), {args.rounds} rounds alternated",
             "", env_line, "",
             "| round | path | CPU-s, first fetch | CPU-s, second fetch | driver peak MB "
             "(second) | JVM peak MB (second) |",
             "|---|---|---|---|---|---|"]
    for i, r in enumerate(results):
        lines.append(f"| {i // 2 + 1} | {r['mode']} | {r['cpu_s']:.1f} | {r['cpu_again_s']:.1f} "
                     f"| {r['driver_peak_mb']:.0f} | {r['jvm_peak_mb']:.0f} |")
    lines.append("")
    lines.append("Both paths gave the same table (schema and rows, in order).")
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
