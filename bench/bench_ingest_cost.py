"""Where ingest's CPU goes: the cost per line of each piece of the validation query.

`bench_ingest.py` measures the whole ingest against its targets; this script shows where the
CPU goes. It runs, on one chunk of the benchmark file (32 MB, as ingest splits it), the lenient
validation query that every line goes through, then the same query with one piece removed, or
one piece alone. CPU µs per line = process CPU time (all DuckDB threads) / lines, best of five.

`--rounds 512,8192` measures collector rounds instead: `ingest_events` of SDK-shaped batches
of each size into a fresh store file, CPU and wall ms per round (median of `--repeat`), so the
round's fixed cost shows as the gap between the per-event costs.

The budget it is compared with: a target of T seconds for N lines on C cores leaves C·T/N CPU
µs per line for everything (reading, validation, identity, dedupe, insert, compression, commit).

    python bench/bench_ingest_cost.py             # after bench_ingest.py made the 3M-event file
    python bench/bench_ingest_cost.py --no-record
    python bench/bench_ingest_cost.py --rounds 512,8192 --no-record
    python bench/bench_ingest_cost.py --hashes --no-record   # identity hash candidates
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from common import machine, record

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from alphatrace.store import validate_sql as V  # noqa: E402
from alphatrace.store.lines import CHUNK_BYTES, iter_chunks  # noqa: E402


def cpu_per_line(con: duckdb.DuckDBPyConnection, sql: str, lines: int) -> float:
    best = float("inf")
    for _ in range(5):
        c0 = time.process_time()
        con.sql(sql).to_arrow_table(1 << 16)
        best = min(best, time.process_time() - c0)
    return best / lines * 1e6


def round_costs(sizes: list[int], repeat: int) -> list[tuple[int, float, float]]:
    """(events a round, CPU ms, wall ms) per round size: the median of `repeat` rounds after
    three warm-up rounds, each round a fresh batch (new run ids) into the same store file."""
    from alphatrace.store import Store
    from alphatrace.store.ingest import ingest_events
    from bench_collector import batch

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "rounds.duckdb")
        for size in sizes:
            cpu, wall = [], []
            for i in range(3 + repeat):
                events = batch(size, i, size)
                c0, t0 = time.process_time(), time.perf_counter()
                ingest_events(store, events)
                if i >= 3:
                    cpu.append(time.process_time() - c0)
                    wall.append(time.perf_counter() - t0)
            out.append((size, statistics.median(cpu) * 1e3, statistics.median(wall) * 1e3))
        store.close()
    return out


# Candidates for the identity (issue #19, item 4), each over 1M rows of one thread: `canon` is
# an id-less alpha event's normalised values joined by chr(31) (about 97 characters, as
# validate_sql._identity_expr builds them), `hex` its md5 hex (the event_id shown to users),
# `eid` an SDK event id (`<uuid>:3`). DuckDB's hash() is listed for scale only: it is not
# stable across DuckDB versions.
HASHES = [
    ("md5 hex of the normalised values (the id-less event_id)", "md5(canon)"),
    ("md5_number of the normalised values", "md5_number(canon)"),
    ("sha1 of the normalised values", "sha1(canon)"),
    ("sha256 of the normalised values", "sha256(canon)"),
    ("DuckDB hash() (not stable across versions)", "hash(canon) // 2"),
    ("key today: md5_number(kind, event_id), two halves",
     "(md5_number('alpha' || chr(31) || hex) >> 64)::UBIGINT // 2 + "
     "(md5_number('alpha' || chr(31) || hex) & 18446744073709551615::UHUGEINT)::UBIGINT // 2"),
    ("key from the hex id: strict hex check", "regexp_full_match(hex, '[0-9a-f]{32}')"),
    ("key from the hex id: parse to two halves",
     "('0x' || left(hex, 16))::UBIGINT // 2 + ('0x' || right(hex, 16))::UBIGINT // 2"),
    ("one digest for both: md5_number, then its hex", "format('{:032x}', md5_number(canon))"),
    ("key of an SDK id: md5_number(kind, event_id)", "md5_number('alpha' || chr(31) || eid)"),
]


def hash_costs(n: int = 1_000_000) -> list[tuple[str, float]]:
    """CPU µs per row of each candidate, beyond reading the rows (best of three, one thread)."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute(f"""CREATE TABLE t AS SELECT canon, md5(canon) AS hex, uuid()::VARCHAR || ':3' AS eid
        FROM (SELECT concat_ws(chr(31), 'alpha', uuid()::VARCHAR, '2024-03-01 12:00:01', '',
                               'Agent' || (i % 50), 'BTCUSDT', 'LONG', '', '', '', '28800.0', '')
                     AS canon FROM range({n}) r(i))""")

    def cost(expr: str) -> float:
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            con.execute(f"SELECT sum(hash({expr})) FROM t").fetchall()  # hash(): ~1 ns a row
            best = min(best, time.process_time() - c0)
        return best / n * 1e6

    base = cost("canon")
    return [(name, cost(e) - base) for name, e in HASHES]


def _without(name: str, expr: str, make: Callable[[], str]) -> str:
    """The fast query with one generator of validate_sql replaced (restored afterwards)."""
    old = getattr(V, name)
    setattr(V, name, lambda *a: expr)
    try:
        return make()
    finally:
        setattr(V, name, old)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=HERE / "out" / "events_1000000.jsonl")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--rounds", help="comma-separated round sizes: measure collector rounds")
    ap.add_argument("--repeat", type=int, default=30, help="rounds measured per size (--rounds)")
    ap.add_argument("--hashes", action="store_true", help="measure identity hash candidates")
    a = ap.parse_args(argv)
    if a.hashes:
        return hashes_main(not a.no_record)
    if a.rounds:
        return rounds_main([int(x) for x in a.rounds.split(",")], a.repeat, not a.no_record)
    if not a.file.exists():
        raise SystemExit(f"{a.file} is missing: run `python bench/bench_ingest.py` first")
    mach = machine("duckdb")
    with open(a.file, "rb") as fh:
        chunk = next(iter_chunks(fh))
    n = chunk.table.num_rows
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("chunk_lines", chunk.table)

    def fast() -> str:  # built afresh: fast_sql caches its text
        return V.fast_sql.__wrapped__("chunk_lines", None)

    struct = V._lit(V.struct_spec("VARCHAR"))
    full = cpu_per_line(con, fast(), n)
    rows = [
        ("whole lenient validation query (every line)", full),
        ("  parse alone: json_transform to the known keys",
         cpu_per_line(con, f"SELECT json_transform(line, {struct}) FROM chunk_lines", n)),
        ("  wrong-JSON-type regular expression alone",
         cpu_per_line(con, f"SELECT regexp_matches(line, {V._lit(V.SUSPICIOUS_RE)}) FROM chunk_lines", n)),
        ("  identity (md5 of normalised values): whole minus without",
         full - cpu_per_line(con, _without("_identity_expr", "NULL::VARCHAR", fast), n)),
        ("  attrs (extra-keys check): whole minus without",
         full - cpu_per_line(con, _without("_attrs_expr", "NULL::VARCHAR", fast), n)),
    ]
    lines = [
        f"## Ingest CPU per line (bench/bench_ingest_cost.py) — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {mach}.",
        f"Input: the first {CHUNK_BYTES >> 20} MiB chunk of {a.file.name} ({n:,} lines). CPU µs per line, all "
        "DuckDB threads, best of five.",
        "",
        "| piece | CPU µs / line |",
        "|---|---:|",
        *(f"| {name.strip()} | {us:.2f} |" for name, us in rows),
        "",
        f"At 3,000,000 lines the validation query alone is {full * 3:.1f} CPU s. Budgets on 2 "
        "cores for everything (validation, identity, dedupe, insert, compression, commit): "
        "1M events/s = 2.0 CPU µs per line; 5× a 75k events/s pandas baseline (7.9 s) = 5.3 "
        "CPU µs per line.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not a.no_record:
        record(text)
    return 0


def hashes_main(write: bool) -> int:
    rows = hash_costs()
    lines = [
        f"## Identity hash candidates (bench/bench_ingest_cost.py --hashes) — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine('duckdb')}.",
        "CPU µs per row beyond reading it, one DuckDB thread, best of three over 1M rows "
        "(`HASHES` in the script says what each input is).",
        "",
        "| candidate | CPU µs / row |",
        "|---|---:|",
        *(f"| {name} | {us:.3f} |" for name, us in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if write:
        record(text)
    return 0


def rounds_main(sizes: list[int], repeat: int, write: bool) -> int:
    mach = machine("duckdb")
    rows = round_costs(sizes, repeat)
    lines = [
        f"## Collector round cost (bench/bench_ingest_cost.py --rounds) — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {mach}.",
        f"`ingest_events` of SDK-shaped batches into one store file; median of {repeat} rounds.",
        "",
        "| events a round | CPU ms | wall ms | CPU µs / event |",
        "|---:|---:|---:|---:|",
        *(f"| {n:,} | {c:.1f} | {w:.1f} | {c / n * 1e3:.1f} |" for n, c, w in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if write:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
