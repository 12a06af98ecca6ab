"""Both engines on the same input, stage by stage (issue #18): wall seconds and CPU-seconds per
million runs, Spark's beside the embedded engine's, measured in the same run.

Stages:
- ingest: `alphatrace ingest` of the files into an empty store, against `ingest --engine spark`
  (each file validated in a Spark task, deduplicated across files on Spark);
- reconcile + ledger: the embedded `reconcile(full=True)`, against the Spark ledger built from
  the export's legs (`ledger --engine spark`). Pricing on Spark is not in this stage yet, so the
  two columns do not do the same work: the row says so.

CPU-seconds: this process's CPU time (DuckDB's threads included), plus, for Spark, the JVM's
and every process under it (the Python workers), read from /proc before and after each stage.
Shuffle bytes are Spark's own count (its status tracker, summed over the stage's jobs).

    python bench/bench_spark.py [--runs 200000] [--files 8] [--record]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, record

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int) -> float:
    """CPU-seconds of `root` and its living descendants, children that ended included."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(d.name)] = int(fields[1])
        times[int(d.name)] = sum(int(x) for x in fields[11:15]) / TICK
    keep, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in keep]
        keep.update(kids)
        frontier += kids
    return sum(times.get(p, 0.0) for p in keep)


class Meter:
    """Wall and CPU seconds of a stage; with `jvm`, the Spark JVM's process tree too."""

    def __init__(self, jvm: int | None = None) -> None:
        self.jvm = jvm

    def __call__(self, fn: Callable[[], Any]) -> tuple[float, float, Any]:
        c0 = time.process_time() + (_tree_cpu(self.jvm) if self.jvm else 0.0)
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() + (_tree_cpu(self.jvm) if self.jvm else 0.0) - c0
        return wall, cpu, out


def _shuffle_bytes(spark: Any) -> int:
    """Shuffle bytes written by every stage so far: Spark's own count, from its UI's REST API
    on this machine (the local session's UI is on by default)."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages"
    with urllib.request.urlopen(url, timeout=30) as r:
        return sum(int(st.get("shuffleWriteBytes", 0)) for st in json.load(r))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args(argv)

    import gen_events
    from alphatrace.engines.spark.ingest import ingest_sharded
    from alphatrace.engines.spark.run import ledger_to_parquet
    from alphatrace.engines.spark.session import session
    from alphatrace.ledger.policy import load as load_reconcile
    from alphatrace.ledger.reconcile import reconcile
    from alphatrace.store import Store
    from alphatrace.store.export import export_parquet
    from alphatrace.store.ingest import ingest_paths

    where = Path(tempfile.mkdtemp(prefix="bench_spark_", dir=HERE / "out"))
    header = machine("duckdb", "pyspark", "pyarrow")
    try:
        per = args.runs // args.files
        files = []
        for k in range(args.files):
            p = where / f"events{k:02d}.jsonl"
            gen_events.generate(p, per, seed=k, shape="typed", first_run=k * per)
            files.append(str(p))
        runs = per * args.files
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = session()
        spark.sparkContext.setLogLevel("ERROR")
        jvm = spark.sparkContext._gateway.proc.pid
        duck, sprk = Meter(), Meter(jvm)
        rows: list[tuple[str, float, float, float, float, str]] = []
        cfg = load_reconcile()

        db = where / "store.duckdb"
        with Store(db) as store:
            w, c, _ = duck(lambda: ingest_paths(store, files))
            s0 = _shuffle_bytes(spark)
            sw, sc, _ = sprk(lambda: ingest_sharded(files, where / "lake"))
            rows.append(("ingest", w, c, sw, sc, f"shuffle {(_shuffle_bytes(spark) - s0) / 1e6:.1f} MB"))
            print(rows[-1], file=sys.stderr)
            w, c, _ = duck(lambda: reconcile(store, cfg, full=True))
            export_parquet(store.con, where / "export")
        s0 = _shuffle_bytes(spark)
        sw, sc, _ = sprk(lambda: ledger_to_parquet(where / "export", where / "ledger", cfg))
        rows.append(("reconcile + ledger (Spark: ledger from exported legs)", w, c, sw, sc,
                     f"shuffle {(_shuffle_bytes(spark) - s0) / 1e6:.1f} MB"))
        print(rows[-1], file=sys.stderr)
    finally:
        shutil.rmtree(where, ignore_errors=True)

    m = runs / 1e6
    lines = [f"## bench_spark.py: {runs:,} runs in {args.files} files (`--runs {args.runs} "
             f"--files {args.files}`)", "", header, "",
             "| stage | DuckDB wall s | DuckDB CPU-s / M runs | Spark wall s | Spark CPU-s / M runs "
             "| Spark/DuckDB CPU | note |", "|---|---|---|---|---|---|---|"]
    for name, w, c, sw, sc, note in rows:
        lines.append(f"| {name} | {w:.2f} | {c / m:.1f} | {sw:.2f} | {sc / m:.1f} | "
                     f"{sc / c:.2f}× | {note} |")
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
