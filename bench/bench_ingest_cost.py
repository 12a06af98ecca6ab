"""Where ingest's CPU goes, per line and per part, on each input, beside what the targets leave.

`bench_ingest.py` measures whole ingests against the targets of issue #19; this script splits
one into its parts, on the head (`--mb`) of each input file that script writes (`typed`,
`bare`, `sdk`): reading and chunking, the fast validation query (and its pieces: the parse, the
wrong-type expression, the key count, kind inference, timestamps, the content identity, the
identity key, attrs), the exact path for the lines the fast path did not clear, the chunk's
counts, dedupe against the stored keys, the inserts, quarantine, the transaction's own
statements and the checkpoint at close. Each part runs as ingest runs it (the same SQL texts
and functions), over every chunk; CPU µs per line = process CPU time (every thread) / lines,
best of `--repeat`. The sum of the parts is shown beside the whole `ingest_paths` of the same
sample, and beside the budget each target leaves: DuckDB's own load × 2 (≥ 0.5× DuckDB) and
pandas' / 5 (≥ 5× pandas), both measured on the same sample in the same minutes.

`--rounds 512,8192` measures collector rounds instead: `ingest_events` of SDK-shaped batches
of each size into a fresh store file, CPU and wall ms per round (median of `--repeat`), so the
round's fixed cost shows as the gap between the per-event costs. `--hashes`: identity hash
candidates.

    python bench/bench_ingest.py --events 3000000    # writes the three inputs first
    python bench/bench_ingest_cost.py                 # their budget table, recorded
    python bench/bench_ingest_cost.py --runs 20000 --mb 8 --repeat 1 --no-record   # smoke
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
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common import machine, record

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from alphatrace.store import Store  # noqa: E402
from alphatrace.store import validate_sql as V  # noqa: E402
from alphatrace.store.identity_keys import StoredKeys, _run, repeats, stored_keys  # noqa: E402
from alphatrace.store.ingest import (  # noqa: E402
    STAGE_BATCH,
    IngestReport,
    _chunk_stats,
    _new_file,
    _record_file,
    _redo_and_store,
    ingest_paths,
    ingest_transaction,
    keyed,
)
from alphatrace.store.lines import Chunk, iter_chunks  # noqa: E402
from alphatrace.store.memory_budget import bulk_budget  # noqa: E402
from alphatrace.store.statements import parsed, to_arrow  # noqa: E402


def round_costs(sizes: list[int], repeat: int) -> list[tuple[int, float, float]]:
    """(events a round, CPU ms, wall ms) per round size: the median of `repeat` rounds after
    three warm-up rounds, each round a fresh batch (new run ids) into the same store file."""
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


def _best(work: Callable[[], object], repeat: int) -> float:
    """The least process CPU seconds (every thread: DuckDB's and the read-ahead's) of `repeat`
    runs of `work`: the machine is shared, and others' load only ever adds."""
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        work()
        best = min(best, time.process_time() - c0)
    return best


def sample_file(src: Path, mb: int, dst: Path) -> int:
    """The first `mb` MiB of `src` cut after its last whole line, written to `dst`; its lines."""
    with open(src, "rb") as fh:
        data = fh.read(mb << 20)
    data = data[: data.rindex(b"\n") + 1]
    dst.write_bytes(data)
    return data.count(b"\n")


def _without(name: str, expr: str, make: Callable[[], str]) -> str:
    """SQL built by `make` with one generator of validate_sql replaced (restored afterwards)."""
    old = getattr(V, name)
    setattr(V, name, lambda *a: expr)
    try:
        return make()
    finally:
        setattr(V, name, old)


def _fast() -> str:
    """The fast path's query as ingest runs it (with the identity key), built afresh: fast_sql
    caches its text, and `_without` changes what it is built from."""
    return keyed(V.fast_sql.__wrapped__("chunk_lines", None))


class Parts:
    """CPU seconds of each part of an ingest of one sample file, every part over all its chunks."""

    def __init__(self, sample: Path, repeat: int, history_keys: int) -> None:
        self.sample, self.repeat, self.history_keys = sample, repeat, history_keys
        with open(sample, "rb") as fh:
            self.chunks = list(iter_chunks(fh))
        self.lines = sum(c.table.num_rows for c in self.chunks)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.staged = [self._query(c, _fast()) for c in self.chunks]
        self.redo = [int(pc.sum(pc.invert(s.column("ok"))).as_py() or 0) for s in self.staged]

    def _query(self, chunk: Chunk, sql: str) -> pa.Table:
        self.con.register("chunk_lines", chunk.table)
        self.con.execute(parsed(self.con, sql))
        return to_arrow(self.con, STAGE_BATCH)

    def query(self, sql: str) -> float:
        """One query over every chunk, its rows fetched as ingest fetches them."""
        return _best(lambda: [self._query(c, sql) for c in self.chunks], self.repeat)

    def count(self, exprs: list[str], inner: str = "") -> float:
        """Evaluating `exprs` over every line of every chunk (counted, not fetched), over the
        lenient parse `v` and any `inner` columns computed from it."""
        struct = V._lit(V.struct_spec("VARCHAR"))
        sql = (f"SELECT {', '.join(f'count({e})' for e in exprs)} FROM (SELECT *{inner} FROM "
               f"(SELECT line, CASE WHEN starts_with(line, '{{') THEN try(json_transform(line, {struct})) "
               "END AS v FROM chunk_lines))")
        return self.query(sql)

    def read(self) -> float:
        def work() -> None:
            with open(self.sample, "rb") as fh:
                for _ in iter_chunks(fh):
                    pass
        return _best(work, self.repeat)

    def exact(self) -> float:
        """The exact path for the lines the fast path did not clear, as ingest runs it."""
        if not sum(self.redo):
            return 0.0
        redo = ("(SELECT r.line_no, r.line FROM chunk_lines r SEMI JOIN "
                "(SELECT line_no FROM staged_fast WHERE NOT ok) s ON r.line_no = s.line_no)")
        sql = keyed(f"SELECT *, true AS ok FROM ({V.staged_sql(redo, None)})")

        def work() -> None:
            for c, s in zip(self.chunks, self.staged, strict=True):
                self.con.register("staged_fast", s)
                self._query(c, sql)
        return _best(work, self.repeat)

    def exact_per_line(self, n: int = 20_000) -> float:
        """CPU µs a line that goes through the exact path costs (its first `n` lines, all sent)."""
        chunk = self.chunks[0]
        head = chunk.table.slice(0, n)
        sql = keyed(f"SELECT *, true AS ok FROM ({V.staged_sql('chunk_lines', None)})")
        return _best(lambda: self._query(Chunk(head), sql), self.repeat) / head.num_rows * 1e6

    def stats(self) -> float:
        return _best(lambda: [_chunk_stats(s, None) for s in self.staged], self.repeat)

    def dedupe(self, history: int) -> float:
        """Deciding new vs stored as `_insert_new` does (stored_keys in numpy), into a store
        already holding `history` random keys."""
        rng = np.random.default_rng(0)

        def work() -> None:
            known = StoredKeys()
            if history:
                known._runs = [_run(rng.integers(-2**63, 2**63 - 1, history, dtype=np.int64),
                                    rng.integers(-2**63, 2**63 - 1, history, dtype=np.int64))]
            c0 = time.process_time()
            for s in self.staged:
                keys = s.select(["line_no", "key_hi", "key_lo"])
                stored = known.contains(keys.column("key_hi"), keys.column("key_lo"))
                if stored.any():
                    keys = keys.filter(pa.array(~stored))
                repeats(keys.column("key_hi"), keys.column("key_lo"))
                known.add(keys.column("key_hi"), keys.column("key_lo"))
            self._dedupe_cpu = min(self._dedupe_cpu, time.process_time() - c0)

        self._dedupe_cpu = float("inf")
        for _ in range(self.repeat):
            work()
        return self._dedupe_cpu

    def store(self, tmp: Path) -> dict[str, float]:
        """Storing the staged chunks as ingest does, in a fresh store file: the transaction's
        own statements (begin, the file's row, COMMIT), the chunks' stores (exact path,
        counts, dedupe, inserts, quarantine) and the checkpoint at close (compression, write).

        Where the compressed write is paid depends on the sample's size: DuckDB writes a
        table's inserted rows during the transaction once they fill a row group (122,880
        rows), and the rest at COMMIT. A 32 MiB sample (~50k rows a kind) pays it at COMMIT;
        a 3M-event file mostly inside the inserts. Their sum is what to compare."""
        best: dict[str, float] = {}
        for i in range(self.repeat):
            store = Store(tmp / f"parts_{i}.duckdb")
            got: dict[str, float] = {}
            with bulk_budget(store):
                store.con.execute("SET preserve_insertion_order = false")
                c0 = time.process_time()
                report = IngestReport(files=1)
                with ingest_transaction(store) as con:
                    known = stored_keys(store)
                    known.begin(store, con)
                    file_id = _new_file(con)
                    c1 = time.process_time()
                    for c, s in zip(self.chunks, self.staged, strict=True):
                        _redo_and_store(con, known, s, c.table, c.bad_utf8, file_id,
                                        str(self.sample), None, report, False)
                    c2 = time.process_time()
                    _record_file(con, file_id, str(self.sample), 0, self.lines, report)
                c3 = time.process_time()
                got["transaction"] = (c1 - c0) + (c3 - c2)
                got["chunks"] = c2 - c1
            c4 = time.process_time()  # the budget is reset before close, as in ingest_paths
            store.close()
            got["close"] = time.process_time() - c4
            for k, v in got.items():
                best[k] = min(best.get(k, float("inf")), v)
            self.quarantined = report.quarantined
        return best

    def whole(self, tmp: Path) -> float:
        """`ingest_paths` of the sample into a fresh store, and closing it (its checkpoint), as
        bench_ingest.py's `alphatrace` method measures the whole file."""
        best = float("inf")
        for i in range(self.repeat):
            store = Store(tmp / f"whole_{i}.duckdb")
            c0 = time.process_time()
            ingest_paths(store, [str(self.sample)])
            store.close()
            best = min(best, time.process_time() - c0)
        return best


def duckdb_load(sample: Path, tmp: Path, repeat: int) -> float:
    """bench_ingest.py's ceiling: DuckDB's own read_json of the file into a fresh store file."""
    def work() -> None:
        db = tmp / "duck.duckdb"
        db.unlink(missing_ok=True)
        con = duckdb.connect(str(db))
        con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited')",
                    [str(sample)])
        con.close()
    return _best(work, repeat)


def pandas_load(sample: Path, tmp: Path, repeat: int) -> float:
    """bench_ingest.py's baseline: pandas read_json, then a DuckDB insert into a fresh file."""
    import pandas as pd

    def work() -> None:
        db = tmp / "pandas.duckdb"
        db.unlink(missing_ok=True)
        df = pd.read_json(sample, lines=True)  # noqa: F841  (read by name in the SQL)
        con = duckdb.connect(str(db))
        con.execute("CREATE TABLE t AS SELECT * FROM df LIMIT 0")
        con.execute("INSERT INTO t SELECT * FROM df")
        con.close()
    return _best(work, repeat)


Row = tuple[str, bool]  # (part, counted in the sum of parts)
ROWS: list[Row] = [
    ("read and split into chunks (`lines.iter_chunks`)", True),
    ("fast validation query, identity key included, fetched to Arrow", True),
    ("· JSON parse alone (`json_transform` to the known keys)", False),
    ("· wrong-JSON-type regular expression and `\\u` check alone", False),
    ("· key count (`json_keys`, every line) alone", False),
    ("· kind inference, beyond the parse", False),
    ("· timestamps (ISO text / epoch numbers), beyond the parse", False),
    ("· content identity (md5 of the normalised values): with minus without", False),
    ("· identity key (md5_number of kind, event_id): with minus without", False),
    ("· attrs (lines with extra keys): with minus without", False),
    ("· the rest (typed values, value checks, projection, fetch)", False),
    ("exact path for the lines the fast path did not clear", True),
    ("chunk counts (Arrow)", True),
    ("dedupe against the stored keys (numpy), fresh store", True),
    ("insert: event_identity and the kinds' tables", True),
    ("quarantine", True),
    ("transaction: begin, file row, COMMIT (writes what the inserts left in memory)", True),
    ("checkpoint at close (compression, write)", True),
]


def measure_input(shape: str, src: Path, mb: int, repeat: int, tmp: Path) -> dict[str, float]:
    """CPU µs per line of every part (ROWS), and of the whole and the baselines, for one input."""
    sample = tmp / f"{shape}.jsonl"
    sample_file(src, mb, sample)
    p = Parts(sample, repeat, 3_000_000)
    n = p.lines
    struct_time = p.count(["v"])
    fast = p.query(_fast())
    ts = [k for k, f in V.FIELD_TYPES.items() if f.type == "timestamp"]
    pieces = {
        ROWS[2][0]: struct_time,
        ROWS[3][0]: p.query(f"SELECT count(*) FILTER (regexp_matches(line, {V._lit(V.SUSPICIOUS_RE)}) "
                            f"OR contains(line, {V._lit(V.ESCAPE)})) FROM chunk_lines"),
        ROWS[4][0]: p.count(["len(json_keys(line))"]),
        ROWS[5][0]: p.count([V._kind_expr(None)], ', v."type" AS "type"') - struct_time,
        ROWS[6][0]: p.count([V._typed_fast(V.FIELD_TYPES[k]) for k in ts]) - struct_time,
        ROWS[7][0]: fast - p.query(_without("_identity_expr", "NULL::VARCHAR", _fast)),
        ROWS[8][0]: fast - p.query(V.fast_sql.__wrapped__("chunk_lines", None)),
        ROWS[9][0]: fast - p.query(_without("_attrs_expr", "NULL::VARCHAR", _fast)),
    }
    pieces[ROWS[10][0]] = fast - sum(pieces.values())
    exact = p.exact()
    stats = p.stats()
    dedupe = p.dedupe(0)
    stored = p.store(tmp)
    out = {ROWS[0][0]: p.read(), ROWS[1][0]: fast, **pieces, ROWS[11][0]: exact,
           ROWS[12][0]: stats, ROWS[13][0]: dedupe,
           ROWS[14][0]: stored["chunks"] - exact - stats - dedupe,
           ROWS[15][0]: 0.0,  # what _store_chunk spends on bad lines: none in these files
           ROWS[16][0]: stored["transaction"], ROWS[17][0]: stored["close"]}
    if p.quarantined:
        raise SystemExit(f"{src}: {p.quarantined} bad lines; the table assumes a clean file")
    us = {k: v / n * 1e6 for k, v in out.items()}
    us["sum"] = sum(us[name] for name, counted in ROWS if counted)
    us["whole"] = p.whole(tmp) / n * 1e6
    us["history"] = p.dedupe(p.history_keys) / n * 1e6
    us["duckdb"] = duckdb_load(sample, tmp, repeat) / n * 1e6
    us["pandas"] = pandas_load(sample, tmp, min(repeat, 2)) / n * 1e6
    us["exact_per_line"] = p.exact_per_line()
    us["lines"], us["redo"], us["mb"] = n, sum(p.redo), sample.stat().st_size / 1e6
    return us


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", default="typed,bare,sdk",
                    help="comma-separated shapes of the files bench_ingest.py writes")
    ap.add_argument("--runs", type=int, default=1_000_000,
                    help="runs of the file read (<out>/events_<shape>_<runs>.jsonl; "
                         "bench_ingest.py --events 3000000 writes 1,000,000)")
    ap.add_argument("--out", type=Path, default=HERE / "out",
                    help="the folder bench_ingest.py wrote the files to (its --out)")
    ap.add_argument("--mb", type=int, default=32,
                    help="MiB of each file measured (its head; 32: one chunk, as ingest splits it)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--rounds", help="comma-separated round sizes: measure collector rounds")
    ap.add_argument("--hashes", action="store_true", help="measure identity hash candidates")
    a = ap.parse_args(argv)
    if a.hashes:
        return hashes_main(not a.no_record)
    if a.rounds:
        return rounds_main([int(x) for x in a.rounds.split(",")], a.repeat, not a.no_record)
    shapes = [x for x in a.inputs.split(",") if x]
    files = {s: a.out / f"events_{s}_{a.runs}.jsonl" for s in shapes}
    for s, f in files.items():
        if not f.exists():
            raise SystemExit(f"{f} is missing: run `python bench/bench_ingest.py --inputs {s}` "
                             "with the same number of events first")
    mach = machine("duckdb", "pandas", "pyarrow")
    got: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s, f in files.items():
            got[s] = measure_input(s, f, a.mb, a.repeat, Path(tmp))
            print(f"{s}: whole {got[s]['whole']:.2f} µs/line, sum of parts {got[s]['sum']:.2f}",
                  flush=True)
    text = budget_section(got, files, a.mb, a.repeat, mach)
    print(text)
    if not a.no_record:
        record(text)
    return 0


def budget_section(got: dict[str, dict[str, float]], files: dict[str, Path], mb: int, repeat: int,
                   mach: str) -> str:
    """The table: a row per part, a column per input, then the whole and what the targets leave."""
    shapes = list(got)

    def row(name: str, key: str | None = None, fmt: str = "{:.2f}") -> str:
        return f"| {name} | " + " | ".join(fmt.format(got[s][key or name]) for s in shapes) + " |"

    lines = [
        f"## Ingest CPU budget per part (bench/bench_ingest_cost.py) — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {mach}.",
        f"Input: the first {mb} MiB of each file (" + ", ".join(
            f"{s}: `{files[s].name}`, {got[s]['lines']:,.0f} lines" for s in shapes)
        + f"). CPU µs per line: process CPU time (every thread), best of {repeat}. "
        "Parts marked · are pieces of the validation query (alone, beyond the parse, or the "
        "query with minus without): not added again in the sum.",
        "",
        "| part (CPU µs / line) | " + " | ".join(shapes) + " |",
        "|---|" + "---:|" * len(shapes),
        *(row(name) for name, _ in ROWS),
        row("**sum of parts**", "sum"),
        row("**whole ingest** (`ingest_paths` + close, fresh store)", "whole"),
        "| sum of parts vs whole | " + " | ".join(
            f"{(got[s]['sum'] / got[s]['whole'] - 1) * 100:+.0f}%" for s in shapes) + " |",
        row("lines the fast path did not clear", "redo", "{:,.0f}"),
        row("exact path, per line sent to it", "exact_per_line"),
        row("dedupe into a store holding 3M keys (instead of fresh)", "history"),
        row("DuckDB's own load (`read_json` into a table)", "duckdb"),
        "| **budget for ≥ 0.5× DuckDB** (its load × 2) | " + " | ".join(
            f"{2 * got[s]['duckdb']:.2f}" for s in shapes) + " |",
        row("pandas `read_json` + insert", "pandas"),
        "| **budget for ≥ 5× pandas** (its CPU / 5) | " + " | ".join(
            f"{got[s]['pandas'] / 5:.2f}" for s in shapes) + " |",
        "| whole ingest over the 0.5× DuckDB budget by | " + " | ".join(
            f"{got[s]['whole'] - 2 * got[s]['duckdb']:.2f} ({got[s]['whole'] / (2 * got[s]['duckdb']):.1f}×)"
            for s in shapes) + " |",
        "| whole ingest over the 5× pandas budget by | " + " | ".join(
            f"{got[s]['whole'] - got[s]['pandas'] / 5:.2f} ({got[s]['whole'] / (got[s]['pandas'] / 5):.1f}×)"
            for s in shapes) + " |",
        "",
    ]
    return "\n".join(lines)


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
