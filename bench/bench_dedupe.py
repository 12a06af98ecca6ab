"""Dedupe against history: what a collector round of UUID4 events costs as the store grows.

Why a script of its own: `bench_ingest.py` ingests files of 300k events, in two or three chunks,
so the store's size shows only once per file. The collector ingests a round of a few hundred
events per transaction; with random (UUID4) run ids the old dedupe read the whole identity
table every round, so a round's cost grew with the store (issue #19, item 3).

For each history size H it builds (once, kept in bench/out) a store holding H events of the
seed's bare shapes with UUID4 run ids (bench/gen_events.py `bare`), copies it, and ingests into
the copy: rounds of `--sizes` new events (each a fresh batch, also UUID4), then the same
batches again (a retry: every event a duplicate). It reports the first round apart (the new code
builds its in-memory set of stored keys there) and the median CPU and wall ms of the others.

With `--file-events K` it also ingests, into another copy, a file of K new events of the same
shape (`ingest_paths`, the bulk path: 32 MB chunks), then the same file again (every event a
duplicate), each in a fresh process as the CLI would (so each file pays the building of the
in-memory key set), and reports CPU and wall seconds of `ingest_paths`.

The same script run with PYTHONPATH at an old checkout's `src` measures the old code on the
same stores. Let the oldest code build them (`--out` a folder of their own): newer code migrates
its copy when it opens it, outside the timed work (0021 drops `event_identity.pre`), but older
code cannot write into a store a newer one built:

    PYTHONPATH=src python bench/bench_dedupe.py --history 0,1000000 --file-events 300000 --no-record
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine, record

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def base_store(events: int, out: Path = OUT) -> Path:
    """A store holding `events` bare-shaped UUID4 events (built once in `out`, then reused)."""
    from alphatrace.store import Store
    from alphatrace.store.ingest import ingest_paths
    from gen_events import generate

    out.mkdir(exist_ok=True)
    db = out / f"dedupe_history_{events}.duckdb"
    if not db.exists():
        tmp = db.with_suffix(".building")
        src = out / f"dedupe_history_{events}.jsonl"
        generate(src, events // 3, seed=7, shape="bare")
        with Store(tmp) as s:
            if events:
                ingest_paths(s, [str(src)])
            s.con.execute("CHECKPOINT")
        src.unlink()
        tmp.rename(db)
    return db


def batches(n: int, size: int) -> list[list[dict[str, Any]]]:
    """`n` batches of `size` new bare-shaped UUID4 events (other runs than the history's)."""
    from gen_events import chunk_lines

    runs = -(-size // 3)
    out = []
    for i in range(n):
        lines = chunk_lines(10_000_000 + i * runs, runs, 11, 10_000_000, "bare").to_pylist()
        out.append([json.loads(x) for x in lines[:size]])
    return out


def measure(db: Path, size: int, repeat: int) -> dict[str, float]:
    from alphatrace.store import Store
    from alphatrace.store.ingest import ingest_events

    todo = batches(repeat + 1, size)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "s.duckdb"
        shutil.copy(db, copy)
        with Store(copy) as store:
            res: dict[str, list[tuple[float, float]]] = {"new": [], "retry": []}
            for what in ("new", "retry"):
                for events in todo:
                    c0, t0 = time.process_time(), time.perf_counter()
                    report, _ = ingest_events(store, events)
                    res[what].append((time.process_time() - c0, time.perf_counter() - t0))
                    expect = (size, 0) if what == "new" else (0, size)
                    if (report.accepted, report.duplicates) != expect:
                        raise SystemExit(f"unexpected report {report} for a {what} round")
    first_cpu, first_wall = res["new"][0]
    return {
        "first_cpu": first_cpu * 1e3, "first_wall": first_wall * 1e3,
        "new_cpu": statistics.median(c for c, _ in res["new"][1:]) * 1e3,
        "new_wall": statistics.median(w for _, w in res["new"][1:]) * 1e3,
        "retry_cpu": statistics.median(c for c, _ in res["retry"]) * 1e3,
        "retry_wall": statistics.median(w for _, w in res["retry"]) * 1e3,
    }


_FILE_CHILD = """
import json, sys, time
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_paths
out = []
for path in sys.argv[2:]:
    with Store(sys.argv[1]) as store:  # opening may migrate a copy made by older code: untimed
        c0, t0 = time.process_time(), time.perf_counter()
        r = ingest_paths(store, [path])
        out.append([time.process_time() - c0, time.perf_counter() - t0, r.accepted, r.duplicates])
print(json.dumps(out))
"""


def measure_file(db: Path, events: int, out: Path) -> dict[str, float]:
    """A file of `events` new events into a copy of `db`, then the same file again; each in
    its own process (as `alphatrace ingest` runs), which opens the store and ingests."""
    import subprocess

    from gen_events import generate

    src = out / f"dedupe_file_{events}.jsonl"
    if not src.exists():
        generate(src, events // 3, seed=13, shape="bare", first_run=20_000_000)
    n = 3 * (events // 3)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "s.duckdb"
        shutil.copy(db, copy)
        for what, expect in (("file_new", (n, 0)), ("file_again", (0, n))):
            run = subprocess.run([sys.executable, "-c", _FILE_CHILD, str(copy), str(src)],
                                 check=True, capture_output=True, text=True)
            # the last line: DuckDB may draw its progress bar on stdout before it
            cpu, wall, accepted, duplicates = json.loads(run.stdout.strip().splitlines()[-1])[0]
            if (accepted, duplicates) != expect:
                raise SystemExit(f"unexpected report {accepted, duplicates} for {what}")
            res[what + "_cpu"], res[what + "_wall"] = cpu, wall
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", default="0,1000000", help="comma-separated events in the store")
    ap.add_argument("--sizes", default="100,2000", help="comma-separated events a round")
    ap.add_argument("--repeat", type=int, default=10, help="rounds measured per size")
    ap.add_argument("--file-events", type=int, default=0,
                    help="also ingest a file of this many new events, then the same file again")
    ap.add_argument("--label", default="", help="a name for the code measured (e.g. old, new)")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the history stores")
    a = ap.parse_args(argv)
    rows: list[str] = []
    files: list[str] = []
    for h in (int(x) for x in a.history.split(",")):
        db = base_store(h, a.out)
        for size in (int(x) for x in a.sizes.split(",")):
            r = measure(db, size, a.repeat)
            rows.append(f"| {a.label} | {h:,} | {size:,} | {r['first_cpu']:.1f} | {r['new_cpu']:.1f} "
                        f"/ {r['new_wall']:.1f} | {r['retry_cpu']:.1f} / {r['retry_wall']:.1f} |")
            print(rows[-1], flush=True)
        if a.file_events:
            f = measure_file(db, a.file_events, a.out)
            files.append(f"| {a.label} | {h:,} | {a.file_events:,} | {f['file_new_cpu']:.2f} / "
                         f"{f['file_new_wall']:.2f} | {f['file_again_cpu']:.2f} / {f['file_again_wall']:.2f} |")
            print(files[-1], flush=True)
    text = "\n".join([
        f"## Dedupe against history (bench/bench_dedupe.py) — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine('duckdb')}.",
        f"Rounds of bare-shaped UUID4 events (`ingest_events`), median of {a.repeat}; ms CPU / wall.",
        "",
        "| code | events stored | events a round | first round CPU ms | new round CPU / wall ms "
        "| retry (all duplicates) CPU / wall ms |",
        "|---|---:|---:|---:|---:|---:|",
        *rows, ""])
    if files:
        text += "\n".join([
            "", "Files (`ingest_paths`, each ingest in a fresh process, which opens the store): "
            "CPU / wall seconds.", "",
            "| code | events stored | events in the file | new events | the same file again "
            "(all duplicates) |", "|---|---:|---:|---:|---:|", *files, ""])
    print(text)
    if not a.no_record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
