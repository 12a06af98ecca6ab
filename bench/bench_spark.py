"""Both engines on the same input, stage by stage (issue #18): wall seconds and CPU-seconds per
million runs, Spark's beside the embedded engine's, measured in the same run.

Stages:
- ingest: `alphatrace ingest` of the files into an empty store, against `ingest --engine spark`
  (each file validated in a Spark task, deduplicated across files on Spark);
- reconcile: the embedded `reconcile(full=True)`, against `reconcile --engine spark` over the
  export (every signal priced, the legs and the ledger built on Spark): the same work;
- gates: one evaluation of the default gates at the newest knowledge time, nothing written
  (`gates evaluate --once --dry-run`), on the store against the export's ledger on Spark;
- forensics: `alphatrace forensics` (loss clusters over the store, each agent and strategy;
  change points per agent) on the store against `--engine spark` over the export.

CPU-seconds: this process's CPU time (DuckDB's threads included), plus, for Spark, the JVM's
and every process under it (the Python workers), read from /proc before and after each stage.
Shuffle bytes are Spark's own count (its status tracker, summed over the stage's jobs).

    python bench/bench_spark.py [--runs 100000] [--files 8] [--record]
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
    with urllib.request.urlopen(url, timeout=300) as r:  # slow on a loaded machine
        return sum(int(st.get("shuffleWriteBytes", 0)) for st in json.load(r))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--partitions", type=int, default=4,
                    help="spark.sql.shuffle.partitions (Spark's default, 200, is sized for a "
                         "cluster: on local[2] its per-task cost dominates small stages)")
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args(argv)

    import gen_events
    from alphatrace.engines.spark.forensics import forensics as spark_forensics
    from alphatrace.engines.spark.ingest import ingest_sharded
    from alphatrace.engines.spark.run import reconcile_to_parquet, spark_reads
    from alphatrace.engines.spark.session import session
    from alphatrace.forensics.api import Forensics
    from alphatrace.governance.api import Gates
    from alphatrace.governance.policy import load_governance
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
        spark.conf.set("spark.sql.shuffle.partitions", str(args.partitions))
        jvm = spark.sparkContext._gateway.proc.pid
        duck, sprk = Meter(), Meter(jvm)
        rows: list[tuple[str, float, float, float, float, str]] = []
        cfg = load_reconcile()

        db = where / "store.duckdb"
        lake = where / "export"

        def stage(name: str, embedded: Callable[[], Any], on_spark: Callable[[], Any],
                  note: str = "") -> None:
            w, c, _ = duck(embedded)
            s0 = _shuffle_bytes(spark)
            sw, sc, _ = sprk(on_spark)
            shuffle = f"shuffle {(_shuffle_bytes(spark) - s0) / 1e6:.1f} MB"
            rows.append((name, w, c, sw, sc, f"{shuffle}{'; ' + note if note else ''}"))
            print(rows[-1], file=sys.stderr)

        with Store(db) as store:
            stage("ingest", lambda: ingest_paths(store, files),
                  lambda: ingest_sharded(files, where / "lake"))
            export_parquet(store.con, lake)  # the events, for Spark's reconcile
            stage("reconcile (legs + ledger)", lambda: reconcile(store, cfg, full=True),
                  lambda: reconcile_to_parquet(lake, where / "spark_rc", cfg))
            export_parquet(store.con, lake)  # now with the ledger
            gp = load_governance(None)
            log = Store(where / "log.duckdb")  # the Spark side's decision log: empty
            stage("gates (one evaluation, dry run)",
                  lambda: Gates(store).evaluation(policy=gp, record=False, once=True),
                  lambda: Gates(log, spark_reads(lake)).evaluation(policy=gp, record=False,
                                                                   once=True))
            log.close()
            stage("forensics (clusters + change points)",
                  lambda: Forensics(store).forensics(),
                  lambda: spark_forensics(spark, lake),
                  "Spark: selection and change points on Spark, slice search on the driver")
    finally:
        shutil.rmtree(where, ignore_errors=True)

    m = runs / 1e6
    lines = [f"## bench_spark.py: {runs:,} runs in {args.files} files (`--runs {args.runs} "
             f"--files {args.files} --partitions {args.partitions}`)", "", header, "",
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
