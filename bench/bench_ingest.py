"""Ingest throughput and peak memory of alphatrace against a plain pandas baseline.

Generates N synthetic runs (3 events each) into bench/out/, then measures each method in its
own subprocess, so peak RSS is that method's alone (read with os.wait4 on the child):

1. alphatrace ingest into a fresh store file (validation, identity hashing, dedupe, quarantine);
2. baseline: `pandas.read_json(path, lines=True)`, then DuckDB `INSERT INTO t SELECT * FROM df`
   into a fresh file (no validation, no dedupe: the floor of "just load it");
3. alphatrace re-ingest of the same file into the store of (1): every event a duplicate;
4. DuckDB's own loader, `CREATE TABLE t AS SELECT * FROM read_json(path)` into a fresh file: no
   validation, no identity, no dedupe, no quarantine, no line numbers. Not a target, a ceiling:
   no ingest into a DuckDB store can beat it on this machine.

The ratio compares methods of the same run on the same machine and file, never a stored number.
A dated section (machine, versions, numbers) is appended to bench/RESULTS.md in one write.

    python bench/bench_ingest.py                 # 1,000,000 runs (~3M events), recorded
    python bench/bench_ingest.py --quick         # 20,000 runs, not recorded (smoke run)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import RESULTS, machine, record

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
QUICK_RUNS = 20_000
TARGET_EVENTS_PER_S = 1_000_000
TARGET_RATIO = 5.0
TARGET_RSS_MB = 2048

METHODS = {
    "alphatrace": "alphatrace ingest, fresh store",
    "pandas": "pandas read_json + DuckDB insert",
    "reingest": "alphatrace re-ingest (all duplicates)",
    "duckdb": "DuckDB read_json into a table (ceiling: validates nothing)",
}


# ---------------------------------------------------------------------------------- children
def _vm_hwm_mb() -> float:
    """This process's peak RSS so far (before the measured work: interpreter + imports)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _remove_db(db: Path) -> None:
    for p in (db, db.with_name(db.name + ".wal")):
        if p.exists():
            p.unlink()


def _timed(work: Callable[[], dict[str, int]]) -> dict[str, Any]:
    """Run `work` once: wall and CPU seconds (all threads), and the peak RSS before it (imports)."""
    before = _vm_hwm_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = work()
    secs = time.perf_counter() - t0
    return {"seconds": secs, "cpu_seconds": time.process_time() - c0, "imports_rss_mb": before,
            "result": result}


def child(method: str, file: Path, db: Path) -> dict[str, Any]:
    if method in ("alphatrace", "reingest"):
        from alphatrace.store import Store
        from alphatrace.store.ingest import ingest_paths

        if method == "alphatrace":
            _remove_db(db)

        def ingest() -> dict[str, int]:
            store = Store(db)
            report = ingest_paths(store, [str(file)])
            store.close()
            return {"accepted": report.accepted, "duplicates": report.duplicates,
                    "quarantined": report.quarantined}

        return _timed(ingest)
    if method == "pandas":
        import duckdb
        import pandas as pd

        _remove_db(db)

        def baseline() -> dict[str, int]:
            df = pd.read_json(file, lines=True)
            con = duckdb.connect(str(db))
            con.register("df", df)
            con.execute("CREATE TABLE t AS SELECT * FROM df LIMIT 0")
            con.execute("INSERT INTO t SELECT * FROM df")
            rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
            con.close()
            return {"rows": int(rows)}

        return _timed(baseline)
    if method == "duckdb":
        import duckdb

        _remove_db(db)

        def ceiling() -> dict[str, int]:
            con = duckdb.connect(str(db))
            con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited')",
                        [str(file)])
            rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
            con.close()
            return {"rows": int(rows)}

        return _timed(ceiling)
    raise SystemExit(f"unknown method {method}")


# ------------------------------------------------------------------------------------ parent
def measure(method: str, file: Path, db: Path) -> dict[str, Any]:
    """Run one method in a fresh interpreter; its own peak RSS comes from wait4's rusage."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method,
           "--file", str(file), "--db", str(db)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed with exit code {proc.returncode}")
    res: dict[str, Any] = json.loads(out)
    res["wall_seconds"] = wall
    res["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    return res


def _row(name: str, r: dict[str, Any], events: int, nbytes: int) -> dict[str, Any]:
    s = r["seconds"]
    return {"method": METHODS[name], "seconds": s, "cpu_seconds": r["cpu_seconds"],
            "events_per_s": events / s,
            "mb_per_s": nbytes / 1e6 / s, "peak_rss_mb": r["peak_rss_mb"],
            "imports_rss_mb": r["imports_rss_mb"], "result": r["result"]}


def section(rows: dict[str, dict[str, Any]], m: str, runs: int, events: int,
            nbytes: int, when: dt.datetime) -> str:
    a, p, d = rows["alphatrace"], rows["pandas"], rows["duckdb"]
    ratio = a["events_per_s"] / p["events_per_s"]

    def ok(b: bool) -> str:
        return "yes" if b else "**no**"

    lines = [
        f"## Ingest throughput (bench/bench_ingest.py) — {when:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m} (a busy machine slows every row).",
        f"Input: {runs:,} runs = {events:,} events (telemetry, alpha, pnl per run), "
        f"{nbytes / 1e6:,.0f} MB JSONL from bench/gen_events.py (seed 0). "
        "Each method runs in its own process; seconds (wall) and CPU s (all threads) exclude "
        "interpreter start and imports, peak RSS includes them (RSS after imports shown apart).",
        "",
        "| method | seconds | CPU s | events/s | MB/s | peak RSS MB | RSS after imports MB | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows.values():
        res = ", ".join(f"{k} {v:,}" for k, v in r["result"].items())
        lines.append(
            f"| {r['method']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['events_per_s']:,.0f} "
            f"| {r['mb_per_s']:,.1f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['imports_rss_mb']:,.0f} | {res} |"
        )
    lines += [
        "",
        f"alphatrace / pandas baseline: **{ratio:.1f}×** events/s. Targets: ≥ 1M events/s: "
        f"{ok(a['events_per_s'] >= TARGET_EVENTS_PER_S)}; ≥ 5× baseline: {ok(ratio >= TARGET_RATIO)}; "
        f"peak RSS ≤ 2 GB: {ok(a['peak_rss_mb'] <= TARGET_RSS_MB)}.",
        f"DuckDB's own loader, validating nothing: {d['events_per_s']:,.0f} events/s "
        f"({d['cpu_seconds']:.2f} CPU s); alphatrace runs at "
        f"{a['events_per_s'] / d['events_per_s']:.2f}× of that ceiling.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Ingest throughput vs a pandas baseline.")
    ap.add_argument("--runs", type=int, default=1_000_000, help="runs to generate (3 events each)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {QUICK_RUNS:,} runs, nothing recorded")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the JSONL and stores")
    ap.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.file, a.db)))
        return 0

    sys.path.insert(0, str(HERE))
    from gen_events import generate

    runs = QUICK_RUNS if a.quick else a.runs
    write = not (a.quick or a.no_record)
    a.out.mkdir(parents=True, exist_ok=True)
    mach = machine("duckdb", "pandas", "pyarrow")  # before the run: the load average is the machine's, not ours
    file = a.out / f"events_{runs}.jsonl"
    t0 = time.perf_counter()
    events, nbytes = generate(file, runs)
    print(f"generated {events:,} events ({nbytes / 1e6:,.0f} MB) in {time.perf_counter() - t0:.1f} s")
    rows: dict[str, dict[str, Any]] = {}
    dbs = {"alphatrace": a.out / "bench_alphatrace.duckdb", "pandas": a.out / "bench_pandas.duckdb"}
    dbs["reingest"] = dbs["alphatrace"]
    dbs["duckdb"] = a.out / "bench_duckdb.duckdb"
    for name in ("alphatrace", "pandas", "reingest", "duckdb"):
        r = measure(name, file, dbs[name])
        rows[name] = _row(name, r, events, nbytes)
        print(f"{METHODS[name]:40s} {r['seconds']:8.2f} s (CPU {r['cpu_seconds']:.2f} s) "
              f"{events / r['seconds']:>12,.0f} events/s "
              f"peak RSS {r['peak_rss_mb']:,.0f} MB  {r['result']}")
    ratio = rows["alphatrace"]["events_per_s"] / rows["pandas"]["events_per_s"]
    print(f"alphatrace / pandas: {ratio:.1f}x")
    text = section(rows, mach, runs, events, nbytes, dt.datetime.now(dt.UTC))
    if write:
        record(text)
        print(f"appended to {RESULTS}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
