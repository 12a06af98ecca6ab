"""Ingest JSON Lines into the store: validated, deduplicated, quarantined, one transaction a file.

A file is all-or-nothing (a kill -9 mid-file leaves the store as before it), events are
identified by `event_id` or a hash of their normalised content, so re-ingesting a file or
retrying an HTTP batch adds nothing, and every bad line lands in quarantine with file, line,
field and reason while the good lines of the same file are kept.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.errors import InputError
from alphatrace.events.fields import KINDS, SPECS, TYPE_ALIASES, Kind
from alphatrace.store.connection import Store
from alphatrace.store.encode_events import encode_lines
from alphatrace.store.identity_keys import StoredKeys, repeats, stored_keys
from alphatrace.store.lines import (
    Chunk,
    expand_paths,
    from_bytes,
    iter_chunks,
    open_input,
    prefetch,
)
from alphatrace.store.memory_budget import bulk_budget
from alphatrace.store.statements import parsed, to_arrow
from alphatrace.store.validate_sql import SEP, fast_sql, staged_sql

TABLE: dict[Kind, str] = {"telemetry": "telemetry", "alpha": "alpha", "pnl": "pnl"}
COLUMN: dict[str, str] = {"horizon": "horizon_s"}  # field name -> stored column name
DEFAULT_EXPR: dict[str, str] = {"revision": 'coalesce("revision", 0)'}
RAW_LIMIT = 4096  # quarantined raw lines are kept up to this many characters
BAD_NAMES = ["file_id", "path", "line", "kind", "field", "reason", "raw"]  # quarantine columns
BAD_TYPES = [pa.int64(), pa.string(), pa.int64(), pa.string(), pa.string(), pa.string(), pa.string()]

Progress = Callable[[int], None]  # called with bytes consumed since the last call


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    files: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestReport) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.files += other.files
        for k, v in other.by_kind.items():
            self.by_kind[k] = self.by_kind.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        """The CLI contract of docs/architecture.md §CLI: accepted, duplicates, quarantined, files."""
        return asdict(self)


EventStatus = Literal["accepted", "duplicate", "rejected"]


@dataclass
class EventResult:
    index: int
    status: EventStatus
    event_id: str | None = None
    kind: str | None = None
    field: str | None = None
    reason: str | None = None


def normalize_kind(kind: str | None) -> Kind | None:
    if kind is None:
        return None
    k = TYPE_ALIASES.get(kind.strip().lower())
    if k is None:
        raise InputError(f"--kind {kind!r} is not one of: {', '.join(KINDS)}")
    return k


@cache
def _insert_columns(kind: Kind) -> tuple[tuple[str, str], ...]:
    """(stored column, select expression) pairs for one kind's table."""
    cols = [("event_id", "event_id")]
    for f in SPECS[kind]:
        expr = DEFAULT_EXPR.get(f.name, f'"{f.name}"')
        if f.type == "integer" and f.name not in DEFAULT_EXPR:
            expr = f'CAST("{f.name}" AS BIGINT)'
        cols.append((COLUMN.get(f.name, f.name), expr))
    cols += [("attrs", "attrs"), ("file_id", "?"), ("line", "line_no")]
    return tuple(cols)


Status = tuple[int, str, str | None, str | None, str | None, str | None]


# An event's identity key (migration 0015): the two halves of 128 bits of md5 over kind and
# event_id, stable across DuckDB versions.
KEY_SQL = "md5_number(kind || chr(31) || event_id)"
KEY_HALVES = "(id_key >> 64)::UBIGINT AS key_hi, (id_key & 18446744073709551615::UHUGEINT)::UBIGINT AS key_lo"


def keyed(staged: str) -> str:
    """A staging query's rows with their identity key halves (`key_hi`, `key_lo`; NULL where
    there is no event_id: a bad line). Computed where the rows are staged: a collector round
    pays per statement, and a query of its own for the keys cost one more each round."""
    return (f"SELECT * EXCLUDE (id_key), {KEY_HALVES} "
            f"FROM (SELECT *, {KEY_SQL} AS id_key FROM ({staged}))")


STAGE_BATCH = 1 << 16  # rows per Arrow batch of a staged chunk: scanned by all DuckDB threads

# Chunks and staged rows are Arrow tables that the SQL reads by the name of a local variable
# (DuckDB's replacement scan), never `register`ed, and never copied into temporary tables:
# inside the file's transaction a registered object, like a replaced or dropped temporary
# table, is kept alive until COMMIT, so the whole file stayed in memory (2.1 GB at 3M events).


def _ingest_chunk(
    con: duckdb.DuckDBPyConnection,
    known: StoredKeys,
    chunk: Chunk,
    file_id: int,
    path: str,
    kind: Kind | None,
    report: IngestReport,
    collect: bool,
) -> list[Status]:
    """Validate, dedupe and insert one chunk. Returns per-line statuses when `collect`."""
    # Lenient fast path for every line, then the exact path for the lines it could not clear.
    staged_fast = _fast_staged(con, chunk.table, kind)
    return _redo_and_store(con, known, staged_fast, chunk.table, chunk.bad_utf8, file_id, path,
                           kind, report, collect)


def _fast_staged(con: duckdb.DuckDBPyConnection, chunk_lines: pa.Table, kind: Kind | None
                 ) -> pa.Table:
    """The fast query's staged rows of `chunk_lines` (line_no, line), keyed (`keyed`)."""
    con.execute(parsed(con, keyed(fast_sql("chunk_lines", kind))))  # reads chunk_lines by name
    return to_arrow(con, STAGE_BATCH)


def _redo_and_store(
    con: duckdb.DuckDBPyConnection,
    known: StoredKeys,
    staged_fast: pa.Table,
    chunk_lines: pa.Table,
    bad_utf8: list[tuple[int, bytes]],
    file_id: int,
    path: str,
    kind: Kind | None,
    report: IngestReport,
    collect: bool,
) -> list[Status]:
    """Run the rows `staged_fast` did not clear (`ok` false) through the exact path, from their
    lines in `chunk_lines` (line_no, line), then store the chunk."""
    staged_exact = None
    if pc.all(staged_fast.column("ok")).as_py() is False:
        redo = ("(SELECT r.line_no, r.line FROM chunk_lines r SEMI JOIN "
                "(SELECT line_no FROM staged_fast WHERE NOT ok) s ON r.line_no = s.line_no)")
        con.execute(parsed(con, keyed(f"SELECT *, true AS ok FROM ({staged_sql(redo, kind)})")))
        staged_exact = to_arrow(con, STAGE_BATCH)
    return _store_chunk(con, known, staged_fast, staged_exact, bad_utf8, file_id, path, report,
                        collect)


def _store_chunk(
    con: duckdb.DuckDBPyConnection,
    known: StoredKeys,
    staged_fast: pa.Table,
    staged_exact: pa.Table | None,
    bad_utf8: list[tuple[int, bytes]],
    file_id: int,
    path: str,
    report: IngestReport,
    collect: bool,
) -> list[Status]:
    """Insert the new valid rows of a staged chunk, quarantine its bad lines."""
    stats = _chunk_stats(staged_fast, staged_exact)
    statuses = _insert_new(con, known, staged_fast, staged_exact, stats, file_id, report, collect)
    bad = (_bad_rows(con, staged_fast, staged_exact, bad_utf8, file_id, path)
           if stats.bad or bad_utf8 else [])
    if bad:
        _quarantine(con, bad, report)
        if collect:
            statuses += [(r[2], "rejected", None, r[3], r[4], r[5]) for r in bad]
    return statuses


# The staged rows are read by name in the SQL (DuckDB's replacement scan looks in the calling
# frame only), so each step below takes them as parameters named `staged_fast`/`staged_exact`.
def _staged(staged_exact: pa.Table | None) -> str:
    """SQL for the chunk's staged rows: the fast path's cleared rows and the exact path's."""
    if staged_exact is None:
        return "staged_fast"
    return "(SELECT * FROM staged_fast WHERE ok UNION ALL SELECT * FROM staged_exact)"


@dataclass
class Stats:
    """What the staged chunk holds before anything is inserted."""

    valid: dict[str, int]  # kind -> valid rows
    bad: int  # lines with an error


def _chunk_stats(staged_fast: pa.Table, staged_exact: pa.Table | None) -> Stats:
    """Per kind the valid rows, and how many lines are bad: counted in Arrow, not by a query
    (a collector round pays a few ms a statement)."""
    stats = Stats({}, 0)
    parts = [staged_fast] if staged_exact is None else [
        staged_fast.filter(staged_fast.column("ok")), staged_exact]
    for t in parts:
        ok = t.column("err").is_null()
        n_ok = int(pc.sum(ok).as_py() or 0)
        stats.bad += t.num_rows - n_ok
        kinds = t.column("kind") if n_ok == t.num_rows else t.column("kind").filter(ok)
        for d in pc.value_counts(kinds).to_pylist():
            stats.valid[d["values"]] = stats.valid.get(d["values"], 0) + d["counts"]
    return stats


def _valid_rows(con: duckdb.DuckDBPyConnection, staged_fast: pa.Table,
                staged_exact: pa.Table | None) -> pa.Table:
    """The chunk's valid rows as one Arrow table: the fast path's rows as they are when it
    cleared every line (the common case: no copy), else both paths' valid rows."""
    if staged_exact is None:
        return staged_fast
    con.execute(parsed(con, f"SELECT * FROM {_staged(staged_exact)} WHERE err IS NULL"))
    return to_arrow(con, STAGE_BATCH)


def _insert_new(
    con: duckdb.DuckDBPyConnection,
    known: StoredKeys,
    staged_fast: pa.Table,
    staged_exact: pa.Table | None,
    stats: Stats,
    file_id: int,
    report: IngestReport,
    collect: bool,
) -> list[Status]:
    """Insert the valid rows that are new, with their identity keys; per-line statuses of the
    valid lines if `collect`."""
    if not stats.valid:
        return []
    valid = _valid_rows(con, staged_fast, staged_exact)
    keys = valid.select(["line_no", "key_hi", "key_lo"])  # staged with the rows (`keyed`)
    # New = its key is not in event_identity yet, and the first occurrence within this chunk.
    # The stored keys are held whole in memory (store/identity_keys.py), so both new events and
    # duplicates (a re-ingest, a retried batch) are decided there: no read of the table,
    # whatever the order of the ids and the size of the store.
    stored = known.contains(keys.column("key_hi"), keys.column("key_lo"))
    if stored.any():
        keys = keys.filter(pa.array(~stored))
    # The first-occurrence window only runs when the chunk repeats an id (rare: a retried
    # batch, a file concatenated with itself).
    if repeats(keys.column("key_hi"), keys.column("key_lo")):
        con.execute(parsed(con, "SELECT * FROM keys QUALIFY row_number() OVER "
                                "(PARTITION BY key_hi, key_lo ORDER BY line_no) = 1"))
        fresh = to_arrow(con, STAGE_BATCH)
    else:
        fresh = keys
    if fresh.num_rows:
        con.execute(parsed(con, "INSERT INTO event_identity SELECT key_hi, key_lo FROM fresh"))
        known.add(fresh.column("key_hi"), fresh.column("key_lo"))
    # Duplicates are rare outside a re-ingest: then every valid row of a kind is new, and each
    # insert reads the kind's rows straight from the staged chunk (an Arrow filter to split the
    # chunk by kind measured slower than the filter inside each insert).
    all_new = fresh.num_rows == valid.num_rows
    rows = "valid" if all_new else "(SELECT * FROM valid SEMI JOIN fresh USING (line_no))"
    for k in KINDS:
        if k not in stats.valid:
            continue
        new = 0
        if fresh.num_rows:  # all duplicates (a re-ingest): nothing to read again
            cols = _insert_columns(k)
            target = ", ".join(c for c, _ in cols)
            select = ", ".join(e for _, e in cols)
            new = int(con.execute(parsed(
                con, f"INSERT INTO {TABLE[k]} ({target}) SELECT {select} FROM {rows} WHERE kind = '{k}'"),
                [file_id]).fetchall()[0][0])
        report.accepted += new
        report.duplicates += stats.valid[k] - new
        if new:
            report.by_kind[k] = report.by_kind.get(k, 0) + new
    if not collect:  # only how many: a large file's lines never come back to Python
        return []
    new_lines = set(fresh.column("line_no").to_pylist())
    return [(ln, "accepted" if ln in new_lines else "duplicate", eid, kd, None, None)
            for ln, eid, kd in zip(*(valid.column(c).to_pylist()
                                     for c in ("line_no", "event_id", "kind")), strict=True)]


BadRow = tuple[int | None, str, int, str | None, str | None, str, str]  # BAD_NAMES


def _bad_rows(
    con: duckdb.DuckDBPyConnection,
    staged_fast: pa.Table,
    staged_exact: pa.Table | None,
    bad_utf8: list[tuple[int, bytes]],
    file_id: int,
    path: str,
) -> list[BadRow]:
    """The chunk's bad lines as quarantine rows: the staged lines with an error, then the lines
    that were not UTF-8."""
    bad = con.execute(parsed(
        con, f"""SELECT line_no, kind, split_part(err, '{SEP}', 1), split_part(err, '{SEP}', 2), bad_line
            FROM {_staged(staged_exact)} WHERE err IS NOT NULL ORDER BY line_no""")
    ).fetchall()
    rows: list[BadRow] = [
        (file_id, path, ln, (kd if kd in KINDS else None), fld or None, reason, raw)
        for ln, kd, fld, reason, raw in bad
    ]
    rows += [
        (file_id, path, ln, None, None, "not valid UTF-8",
         raw.decode("utf-8", "replace").rstrip("\r\n")[:RAW_LIMIT])
        for ln, raw in bad_utf8
    ]
    return rows


def insert_quarantine(con: duckdb.DuckDBPyConnection, rows: Sequence[BadRow]) -> int:
    """Record bad lines (or items of a request), each once: a row already quarantined with the
    same path, line and raw text (a file ingested again, an exporter's retry) is not recorded
    again, and repeats within `rows` are folded. Returns how many rows were new. The one way
    into the quarantine table, for file ingest and for what the collector rejects itself."""
    cols = list(zip(*rows, strict=True))
    bad_lines = pa.table(  # noqa: F841  (read by name in the SQL)
        [pa.array(c, t) for c, t in zip(cols, BAD_TYPES, strict=True)], names=BAD_NAMES)
    return int(con.execute(parsed(
        con, """INSERT INTO quarantine SELECT DISTINCT ON (b.path, b.line, b.raw) b.* FROM bad_lines b
           WHERE NOT EXISTS (SELECT 1 FROM quarantine q
                             WHERE q.path = b.path AND q.line = b.line AND q.raw = b.raw)""")
    ).fetchall()[0][0])


def _quarantine(con: duckdb.DuckDBPyConnection, rows: list[BadRow], report: IngestReport) -> None:
    added = insert_quarantine(con, rows)
    # The report says what this call did: a line quarantined by an earlier ingest of the
    # same file is a duplicate now, as a stored event would be.
    report.quarantined += added
    report.duplicates += len(rows) - added


def _ingest_stream(
    store: Store,
    stream: BinaryIO,
    path: str,
    kind: Kind | None,
    progress: Progress | None,
    collect: bool = False,
    read_ahead: bool = True,
) -> tuple[IngestReport, list[Status]]:
    # Row order inside the event tables carries no meaning (readers order by ts/run_id or by
    # file_id/line), so DuckDB may insert in parallel without keeping scan order.
    store.con.execute(parsed(store.con, "SET preserve_insertion_order = false"))
    try:
        return _ingest_stream_tx(store, stream, path, kind, progress, collect, read_ahead)
    finally:
        store.con.execute(parsed(store.con, "RESET preserve_insertion_order"))


def _ingest_stream_tx(
    store: Store,
    stream: BinaryIO,
    path: str,
    kind: Kind | None,
    progress: Progress | None,
    collect: bool,
    read_ahead: bool,
) -> tuple[IngestReport, list[Status]]:
    report = IngestReport(files=1)
    statuses: list[Status] = []
    nbytes = 0
    lines = 0
    with ingest_transaction(store) as con:
        known = stored_keys(store)
        known.begin(store, con)
        file_id = _new_file(con)
        chunks = prefetch(iter_chunks(stream)) if read_ahead else iter_chunks(stream)
        with closing(chunks):
            for chunk in chunks:
                statuses += _ingest_chunk(con, known, chunk, file_id, path, kind, report, collect)
                nbytes += chunk.nbytes
                lines += chunk.table.num_rows
                if progress:
                    progress(chunk.nbytes)
                del chunk  # its buffers go before the next chunk arrives
        _record_file(con, file_id, path, nbytes, lines, report)
    return report, statuses


# One lock per store file (resolved path), for every ingest transaction of this process.
_FILE_LOCKS: dict[Path, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


@contextmanager
def ingest_transaction(store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    """`store.transaction()`, one at a time per store file in this process.

    Why: dedupe decides "new" against the keys committed before the transaction began
    (`StoredKeys.begin`) plus its own. Two Store objects on one file (the server runs a CLI
    `ingest` on its own Store beside the writer thread's HTTP rounds) ingesting the same new
    event in overlapping transactions would each find it new and both store it: DuckDB
    appends do not conflict and `event_identity` has no unique index (an index over every
    key costs more than dedupe itself). Another process cannot write the file at all (DuckDB's
    file lock), so a lock in this process makes the check exact. An in-memory store is its own
    database: nothing to share."""
    lock: threading.RLock | nullcontext[None] = nullcontext()
    if store.path is not None:
        key = store.path.resolve()
        with _FILE_LOCKS_GUARD:
            lock = _FILE_LOCKS.setdefault(key, threading.RLock())
    with lock, store.transaction() as con:
        yield con


def _new_file(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute(parsed(con, "SELECT nextval('file_id_seq')")).fetchall()[0][0])


def _record_file(con: duckdb.DuckDBPyConnection, file_id: int, path: str, nbytes: int | None,
                 lines: int, report: IngestReport) -> None:
    con.execute(parsed(
        con, "INSERT INTO ingested_files VALUES (?, ?, NULL, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP)"),
        [file_id, path, nbytes, lines, report.accepted, report.duplicates, report.quarantined],
    )


def input_size(paths: Iterable[str]) -> int:
    total = 0
    for p in paths:
        if p != "-":
            total += Path(p).stat().st_size
    return total


def resolve_inputs(paths: list[str]) -> list[str]:
    files = expand_paths(paths)
    for p in files:
        if p != "-" and not Path(p).is_file():
            raise InputError(f"{p}: no such file")
    if not files:
        raise InputError("no JSON Lines files found in " + ", ".join(paths))
    return files


def ingest_paths(
    store: Store,
    paths: list[str],
    kind: str | None = None,
    progress: Progress | None = None,
    stdin: BinaryIO | None = None,
) -> IngestReport:
    """Ingest files, folders and `-` (stdin). Each file commits on its own, under DuckDB's
    memory budget for bulk ingest when this process owns the store (store/memory_budget.py)."""
    k = normalize_kind(kind)
    total = IngestReport()
    files = resolve_inputs(paths)
    with bulk_budget(store):
        for p in files:
            if p == "-":
                stream: BinaryIO = stdin or sys.stdin.buffer
                r, _ = _ingest_stream(store, stream, "<stdin>", k, progress)
            else:
                with open_input(Path(p)) as fh:
                    try:
                        r, _ = _ingest_stream(store, fh, str(p), k, progress)
                    except (OSError, EOFError) as e:  # e.g. a truncated .gz
                        raise InputError(f"{p}: cannot read: {e}") from None
            total.add(r)
    return total


def ingest_events(
    store: Store,
    events: list[Any],
    source: str = "<api>",
    kind: str | None = None,
) -> tuple[IngestReport, list[EventResult]]:
    """Ingest in-memory events (SDK direct sink, HTTP collector) with a status per event.

    The events go through exactly the same validation as file lines; index i of the result is
    event i of the input.
    """
    k = normalize_kind(kind)
    data = encode_lines(events)
    if not data:
        return IngestReport(), []
    # In memory already, and one chunk for any batch a request carries: a reader thread would
    # only add a hand-off to every collector round.
    report, raw = _ingest_stream(store, from_bytes(data), source, k, None, collect=True,
                                 read_ahead=False)
    return report, _event_results(len(events), raw)


def ingest_staged(
    store: Store,
    staged: pa.Table,
    lines: pa.Table,
    source: str,
    within: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> tuple[IngestReport, list[EventResult]]:
    """Store events that a typed entry staged itself (store/typed_ingest.py), as
    `ingest_events` stores a batch: one transaction and file row, identity, dedupe,
    quarantine, a status per event (index i: the row with line_no i + 1).

    `staged` has `fast_sql`'s columns, one row per event; a row with `ok` false goes the JSON
    path's way from its JSON line in `lines` (line_no, line): the fast query, then the exact
    one for what that leaves, which names the field and reason of a bad one (`_fast_redo`).
    `within(con)`: more writes in the same transaction."""
    report = IngestReport(files=1)
    with ingest_transaction(store) as con:
        known = stored_keys(store)
        known.begin(store, con)
        file_id = _new_file(con)
        staged = _fast_redo(con, staged, lines)
        raw = _redo_and_store(con, known, staged, lines, [], file_id, source, None, report, True)
        if within is not None:
            within(con)
        _record_file(con, file_id, source, None, staged.num_rows, report)
    return report, _event_results(staged.num_rows, raw)


def _fast_redo(con: duckdb.DuckDBPyConnection, staged: pa.Table, lines: pa.Table) -> pa.Table:
    """`staged` with the rows it did not clear replaced by the fast query's rows of their
    lines: events a typed entry does not take (no event id, an id given as a number, a
    timestamp in another spelling) cost what they cost as JSON lines, one statement, and only
    what that query leaves goes on to the exact one."""
    if not lines.num_rows:
        return staged
    fast = _fast_staged(con, lines, None)
    kept = staged.filter(staged.column("ok"))
    return pa.concat_tables([kept, fast.cast(kept.schema)]).sort_by("line_no")


def _event_results(n: int, raw: list[Status]) -> list[EventResult]:
    """Per-line statuses as one EventResult per event (index i: line i + 1)."""
    by_line = {ln: s for (ln, *_), s in zip(raw, raw, strict=True)}
    results: list[EventResult] = []
    for i in range(n):
        s = by_line.get(i + 1)
        if s is None:  # blank serialisation cannot happen for dicts; keep the contract total
            results.append(EventResult(i, "rejected", reason="empty event"))
            continue
        _, status, eid, kd, fld, reason = s
        results.append(EventResult(i, status, eid, kd, fld, reason))  # type: ignore[arg-type]
    return results


def iter_quarantine(store: Store, limit: int | None = None) -> Iterator[dict[str, Any]]:
    sql = "SELECT path, line, kind, field, reason, raw FROM quarantine ORDER BY path, line"
    if limit:
        sql += f" LIMIT {int(limit)}"
    cur = store.con.execute(sql)
    names = [d[0] for d in cur.description]
    for row in cur.fetchall():
        yield dict(zip(names, row, strict=True))
