"""`gates backtest` and `audit verify` (with its re-computation) on Spark against the embedded
engine, on one synthetic ledger (bench_governance.build) and the log of a catch-up over it
under the seed's gates: wall seconds of each, and whether the two engines' documents are
equal (canonical JSON). Spark is local[2]; its session is started and warmed up before
the clock runs. The driver's CPU is reported too (Spark's own JVM and its Python workers are
other processes: a wall-clock comparison on a quiet machine is the fair one).

    .venv/bin/python bench/bench_spark_governance.py [--runs 5000] [--agents 100] [--append]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import alphatrace as at
from alphatrace.cli.common import to_json
from alphatrace.engines.spark.governance import SparkReads
from alphatrace.engines.spark.session import session
from alphatrace.governance.api import Gates, Governance
from alphatrace.governance.canon import canonical_json
from alphatrace.governance.policy import load_governance
from alphatrace.policy import SEED_POLICY, shipped_policy
from alphatrace.store.export import export_parquet
from bench_governance import build
from common import machine, record


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, this process's CPU seconds, result)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def canon(doc: Any) -> str:
    return canonical_json(json.loads(to_json(doc)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--strategies", type=int, default=5)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    where = machine("duckdb", "pyspark")
    gp = load_governance(shipped_policy(SEED_POLICY))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = at.connect(Path(tmp) / "store.duckdb")
        build(db, args.runs, args.agents, args.strategies)
        db.gates.evaluate(gp)  # the log audit verify re-decides
        lake = Path(tmp) / "lake"
        export_parquet(db.con, lake)
        spark = session()
        reads = SparkReads(spark, lake)
        reads.as_of()  # the JVM and the first job: not measured
        on_spark_gates = Gates(db.store, reads)
        on_spark_gov = Governance(db.store, reads)
        for name, emb, spk in (
                ("gates backtest", lambda: db.gates.backtest(gp),
                 lambda: on_spark_gates.backtest(gp)),
                ("audit verify", db.audit_verify, on_spark_gov.audit_verify)):
            ew, ec, want = timed(emb)
            sw, sc, got = timed(spk)
            rows.append((name, ew, ec, sw, sc, canon(want) == canon(got)))
        intact = db.audit_verify(recompute=False)["ok"]
        n_log = db.audit_verify(recompute=False)["records"]
    lines = [f"{args.runs:,} runs, {args.agents} agents, {args.strategies} strategies, seed "
             f"gates; log of {n_log:,} records (chain intact: {intact}). {where}.", "",
             "| command | DuckDB wall s | DuckDB CPU s | Spark wall s | Spark driver CPU s | "
             "equal documents |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {ew:.2f} | {ec:.2f} | {sw:.2f} | {sc:.2f} | {eq} |"
              for n, ew, ec, sw, sc, eq in rows]
    text = "\n".join(lines)
    print(text)
    if args.append:
        record("## bench_spark_governance\n\n" + text)
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
