"""Ingest throughput and peak memory on the inputs users send, beside DuckDB's own load and pandas.

For each input shape (bench/gen_events.py: `typed` generator file, `bare` seed shapes with UUID4
run ids and epoch times, `sdk` shapes with UUIDv7 ids and event ids; `typed_uuid4` on request)
it writes two files of N/3 runs each (the second continues the first: other runs, later times)
and measures each method in its own subprocess, so peak RSS is that method's alone (its VmHWM):

1. `duckdb`: `CREATE TABLE t AS SELECT * FROM read_json(path)` into a fresh file. Validates
   nothing, no identity, no dedupe, no quarantine, no line numbers: the ceiling;
2. `pandas`: `pandas.read_json(path, lines=True)`, then a DuckDB insert into a fresh file;
3. `alphatrace`: ingest into a fresh store (validation, identity, dedupe, quarantine);
4. `reingest`: the same file again into that store: every event a duplicate;
5. `history`: the second file into that store, which holds the first: dedupe against history.

Ratios compare methods of the same run on the same machine and file, never a stored number.
A dated section (machine, versions, numbers) is appended to bench/RESULTS.md in one write.

    python bench/bench_ingest.py                          # 300,000 events per input, recorded
    python bench/bench_ingest.py --events 3000000         # the issue's size: a quiet machine
    python bench/bench_ingest.py --inputs bare --only alphatrace,duckdb --no-record
    python bench/bench_ingest.py --quick                  # 60,000 events, not recorded
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import RESULTS, machine, record

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
QUICK_EVENTS = 60_000
DEFAULT_EVENTS = 300_000  # small enough for a shared 2-core machine (2 files × 3 inputs × 5 methods)
TARGET_OF_DUCKDB = 0.5  # ≥ half of DuckDB's own load of the same file (issue #19)
TARGET_RATIO = 5.0  # ≥ 5× pandas
TARGET_RSS_MB = 1024  # for 3M events

METHODS = {
    "duckdb": "DuckDB read_json into a table (ceiling: validates nothing)",
    "pandas": "pandas read_json + DuckDB insert",
    "alphatrace": "alphatrace ingest, fresh store",
    "reingest": "alphatrace re-ingest (all duplicates)",
    "history": "alphatrace, a second file into the store holding the first",
}
INPUTS = {
    "typed": "bench/gen_events.py typed: \"type\", sequential ids `r0000000000`, ISO times",
    "bare": "seed's bare shapes (no \"type\"), UUID4 run ids, epoch times",
    "sdk": "SDK shapes: \"type\", event_id `<run_id>:<n>`, UUIDv7 run ids, epoch µs times",
    "typed_uuid4": "\"type\", UUID4 run ids, epoch times (the bare file's events, typed)",
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
    # This process's own high-water mark: wait4's ru_maxrss would also count the parent's
    # pages at fork time (Linux keeps that maximum across exec).
    return {"seconds": secs, "cpu_seconds": time.process_time() - c0, "imports_rss_mb": before,
            "peak_rss_mb": _vm_hwm_mb(), "result": result}


def child(method: str, file: Path, db: Path) -> dict[str, Any]:
    if method in ("alphatrace", "reingest", "history"):
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
    """Run one method in a fresh interpreter (it reports its own peak RSS)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method,
           "--file", str(file), "--db", str(db)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed with exit code {proc.returncode}")
    res: dict[str, Any] = json.loads(out)
    res["wall_seconds"] = wall
    return res


def _fmt_ratio(x: float) -> str:
    return f"{x:.2f}×"


def section(results: dict[str, dict[str, dict[str, Any]]], sizes: dict[str, tuple[int, int]],
            m: str, when: dt.datetime) -> str:
    """The RESULTS.md section: one row per input, then every measurement with CPU and RSS."""

    def ok(b: bool) -> str:
        return "yes" if b else "**no**"

    def sec(r: dict[str, Any], k: str) -> str:
        """Wall / CPU seconds."""
        return f"{r[k]['seconds']:.2f} / {r[k]['cpu_seconds']:.2f}" if k in r else "—"

    def cpu(r: dict[str, Any], k: str) -> float:
        return float(r[k]["cpu_seconds"])

    lines = [
        f"## Ingest on three inputs (bench/bench_ingest.py) — {when:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m} (a busy machine slows every row).",
        "Each input: two files of the same shape (the second: other runs, later times). Each "
        "method runs in its own process; seconds (wall) exclude interpreter start and imports, "
        "peak RSS includes them. Seconds are wall / CPU (all threads); the ratios are of CPU "
        "seconds, which others' load on this shared machine inflates less than wall time (every "
        "method uses both cores). `history`: the second file into the store holding the "
        "first, its ratio to the fresh ingest of the first file (same size and shape).",
        "",
        "| input | events | MB | DuckDB read_json s | pandas s | alphatrace s | × DuckDB | × pandas "
        "| re-ingest s | into history s (× fresh) | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for name, r in results.items():
        events, nbytes = sizes[name]
        a = r.get("alphatrace")
        of_duck = cpu(r, "duckdb") / cpu(r, "alphatrace") if a and "duckdb" in r else None
        of_pd = cpu(r, "pandas") / cpu(r, "alphatrace") if a and "pandas" in r else None
        hist = (f"{sec(r, 'history')} ({cpu(r, 'history') / cpu(r, 'alphatrace'):.2f}×)"
                if a and "history" in r else "—")
        lines.append(
            f"| {name} | {events:,} | {nbytes / 1e6:,.0f} | {sec(r, 'duckdb')} | {sec(r, 'pandas')} "
            f"| {sec(r, 'alphatrace')} | {_fmt_ratio(of_duck) if of_duck else '—'} "
            f"| {_fmt_ratio(of_pd) if of_pd else '—'} | {sec(r, 'reingest')} | {hist} "
            f"| {a['peak_rss_mb']:,.0f} |" if a else f"| {name} | {events:,} | … |")
        if a:
            targets = []
            if of_duck:
                targets.append(f"≥ 0.5× DuckDB {ok(of_duck >= TARGET_OF_DUCKDB)}")
            if of_pd:
                targets.append(f"≥ 5× pandas {ok(of_pd >= TARGET_RATIO)}")
            if "reingest" in r:
                targets.append(f"re-ingest ≤ fresh {ok(cpu(r, 'reingest') <= cpu(r, 'alphatrace'))}")
            if "history" in r:
                targets.append("into history ≤ 1.15× fresh "
                               f"{ok(cpu(r, 'history') <= 1.15 * cpu(r, 'alphatrace'))}")
            if events >= 3_000_000:
                targets.append(f"peak RSS ≤ 1 GB {ok(a['peak_rss_mb'] <= TARGET_RSS_MB)}")
            notes.append(f"- {name} ({INPUTS[name]}): " + "; ".join(targets) + ".")
    same = [("bare", "typed_uuid4", "bare vs the same events typed"),
            ("typed_uuid4", "typed", "UUID4 ids and epoch times vs sequential ids and ISO times")]
    for x, y, what in same:
        if "alphatrace" in results.get(x, {}) and "alphatrace" in results.get(y, {}):
            ratio = results[x]["alphatrace"]["cpu_seconds"] / results[y]["alphatrace"]["cpu_seconds"]
            notes.append(f"- {what}: {ratio:.2f}× the CPU seconds (target ≤ 1.10×: {ok(ratio <= 1.10)}).")
    lines += ["", *notes, "", "| input | method | seconds | CPU s | events/s | peak RSS MB | result |",
              "|---|---|---:|---:|---:|---:|---|"]
    for name, r in results.items():
        events = sizes[name][0]
        for k, row in r.items():
            res = ", ".join(f"{kk} {v:,}" for kk, v in row["result"].items())
            lines.append(f"| {name} | {METHODS[k]} | {row['seconds']:.2f} | {row['cpu_seconds']:.2f} "
                         f"| {events / row['seconds']:,.0f} | {row['peak_rss_mb']:,.0f} | {res} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Ingest on three inputs vs DuckDB's load and pandas.")
    ap.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                    help="events per file (3 per run; rounded down to whole runs); the targets "
                         "are stated for 3,000,000 on a quiet machine")
    ap.add_argument("--inputs", default="typed,bare,sdk",
                    help=f"comma-separated shapes of: {', '.join(INPUTS)}")
    ap.add_argument("--only", default=",".join(METHODS),
                    help=f"comma-separated methods of: {', '.join(METHODS)}")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {QUICK_EVENTS:,} events, nothing recorded")
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

    runs = (QUICK_EVENTS if a.quick else a.events) // 3
    inputs = [x for x in a.inputs.split(",") if x]
    methods = [x for x in a.only.split(",") if x]
    for x in inputs:
        if x not in INPUTS:
            raise SystemExit(f"--inputs: {x!r} is not one of {', '.join(INPUTS)}")
    for x in methods:
        if x not in METHODS:
            raise SystemExit(f"--only: {x!r} is not one of {', '.join(METHODS)}")
    write = not (a.quick or a.no_record)
    a.out.mkdir(parents=True, exist_ok=True)
    mach = machine("duckdb", "pandas", "pyarrow")  # before the run: the load average is the machine's
    results: dict[str, dict[str, dict[str, Any]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for shape in inputs:
        first = a.out / f"events_{shape}_{runs}.jsonl"
        second = a.out / f"events_{shape}_{runs}_next.jsonl"
        if not first.exists() or not second.exists():
            generate(first, runs, shape=shape)
            generate(second, runs, shape=shape, first_run=runs)
        sizes[shape] = (3 * runs, first.stat().st_size)
        store = a.out / f"bench_{shape}.duckdb"
        files = {"duckdb": first, "pandas": first, "alphatrace": first, "reingest": first,
                 "history": second}
        dbs = {"duckdb": a.out / "bench_duckdb.duckdb", "pandas": a.out / "bench_pandas.duckdb",
               "alphatrace": store, "reingest": store, "history": store}
        results[shape] = {}
        for name in METHODS:
            if name not in methods or (name in ("reingest", "history") and "alphatrace" not in methods):
                continue
            r = measure(name, files[name], dbs[name])
            results[shape][name] = r
            print(f"{shape:12s} {METHODS[name]:60s} {r['seconds']:7.2f} s (CPU {r['cpu_seconds']:6.2f} s) "
                  f"peak RSS {r['peak_rss_mb']:,.0f} MB  {r['result']}", flush=True)
        for p in dbs.values():
            _remove_db(p)
    text = section(results, sizes, mach, dt.datetime.now(dt.UTC))
    if write:
        record(text)
        print(f"appended to {RESULTS}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
