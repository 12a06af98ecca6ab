"""The slice search's histograms on Spark: on the driver (the rows collected, numpy there) against
on the executors (`engines.spark.slices.histograms`: the same kernel per partition, partials
added on the driver), at N runs: CPU-seconds, the driver's rows and peak memory.

Data: N synthetic runs (alphatrace.forensics.synthetic, seed 0, one extra numeric feature),
encoded as `alphatrace forensics` encodes them (policy defaults: 12 features), the loss, the
centred PnL and its square on their grids; written once to Parquet (row groups of 100k, read
as partitions of ≤ 16 MB), untimed. The work measured is one search's histogram passes with
no pruning: every feature alone, then every pair (78 histograms of count, Σloss, max loss,
Σy, Σy²).

- driver (today's path): the rows collected from Spark (`toArrow`), then `slices.histogram`
  per feature and per pair on the driver;
- executors: `histograms` for the 12 features, then for the 66 pairs (two Spark jobs); the
  driver receives one histogram per partition and combination.

Each measurement runs in its own process with its own local[2] Spark session, old and new
alternated; CPU-seconds are the process's and every process under it (the JVM, the Python
workers), from /proc, around the measured work only (not the JVM start). The driver's peak
memory is its VmHWM over the measured work (reset before it). Both must give the same bits.

    python bench/bench_spark_hist.py [--runs 1000000] [--rounds 2] [--record]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from bench_spark import peak_mib, reset_peak, tree_cpu
from common import machine, record

HERE = Path(__file__).resolve().parent


def prepare(n: int, out: Path) -> dict[str, int]:
    """Encoded rows → out/hist.parquet; the features' code counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from alphatrace.forensics import synthetic as syn
    from alphatrace.forensics.clusters import encode
    from alphatrace.forensics.config import ForensicsConfig
    from alphatrace.forensics.slices import Categorical, on_grid

    d = syn.runs(n, 0, extra_numeric=1)
    numeric = ["latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "score_final", "f0"]
    cols: dict[str, Any] = {k: np.asarray(d[k], np.float64) for k in numeric}
    cols |= {k: Categorical.from_values(d[k]) for k in ("symbols", "direction", "regime",
                                                        "model", "hour")}
    cfg = ForensicsConfig().clusters
    feats = encode(cols, numeric, cfg, cfg.support(n))
    y = np.asarray(d["y"], np.float64)
    yc = on_grid(y - float(on_grid(y).sum()) / n)
    table = {f"c{i}": np.asarray(f.codes, np.int32) for i, f in enumerate(feats)}
    table |= {"one": np.ones(n), "e": on_grid(np.maximum(0.0, -y)), "y": yc,
              "y2": on_grid(yc * yc)}
    pq.write_table(pa.table(table), out / "hist.parquet", row_group_size=100_000)
    return {f"c{i}": f.n_codes for i, f in enumerate(feats)}


def child(mode: str, data: Path, dims: dict[str, int]) -> dict[str, Any]:
    """One measurement (in its own process)."""
    from pyspark.sql import SparkSession

    from alphatrace.forensics.slices import histogram

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("bench-hist")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
             .config("spark.sql.files.maxPartitionBytes", str(16 << 20)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.read.parquet(str(data)).limit(1).collect()  # warm: the JVM's first job
    weights = ["one", "e", "y", "y2"]
    singles = [[c] for c in dims]
    pairs = [list(p) for p in combinations(dims, 2)]
    reset_peak(os.getpid())
    cpu0 = tree_cpu(os.getpid())
    if mode == "driver":
        tbl = spark.read.parquet(str(data)).toArrow()
        cols = {n: tbl.column(n).to_numpy() for n in tbl.column_names}
        rows = tbl.num_rows
        out = [histogram([cols[c] for c in combo], [dims[c] for c in combo],
                         [cols[w] for w in weights], cols["e"]) for combo in singles + pairs]
    else:
        from alphatrace.engines.spark.slices import histograms

        df = spark.read.parquet(str(data))
        parts = df.rdd.getNumPartitions()
        out = [*histograms(df, singles, dims, weights, "e"),
               *histograms(df, pairs, dims, weights, "e")]
        rows = parts * (len(singles) + len(pairs))
    cpu = tree_cpu(os.getpid()) - cpu0
    digest = hashlib.sha256(b"".join(s.tobytes() + (m.tobytes() if m is not None else b"")
                                     for s, m in out)).hexdigest()
    res = {"mode": mode, "cpu_s": cpu, "driver_rows": rows, "driver_peak_mb": peak_mib(os.getpid()),
           "digest": digest}
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
        mode, spec = args.child
        s = json.loads(spec)
        print(json.dumps(child(mode, Path(s["data"]), s["dims"])))
        return 0
    env_line = machine("pyspark", "numpy", "pyarrow")
    with tempfile.TemporaryDirectory() as tmp:
        dims = prepare(args.runs, Path(tmp))
        spec = json.dumps({"data": str(Path(tmp) / "hist.parquet"), "dims": dims})
        results: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            for mode in ("driver", "executors"):
                p = subprocess.run([sys.executable, __file__, "--child", mode, spec],
                                   capture_output=True, text=True, check=True)
                r = json.loads(p.stdout.strip().splitlines()[-1])
                results.append(r)
                print(r, flush=True)
    assert len({r["digest"] for r in results}) == 1, "the two paths gave different bits"
    lines = [f"### bench_spark_hist.py: {args.runs:,} runs, {len(dims)} features, "
             f"{args.rounds} rounds alternated",
             "", env_line, "",
             "| round | path | CPU-s (driver + JVM + workers) | rows to the driver | driver peak MB |",
             "|---|---|---|---|---|"]
    for i, r in enumerate(results):
        lines.append(f"| {i // 2 + 1} | {r['mode']} | {r['cpu_s']:.1f} | {r['driver_rows']:,} | "
                     f"{r['driver_peak_mb']:.0f} |")
    lines.append("")
    lines.append("Both paths gave the same histograms, bit for bit.")
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
