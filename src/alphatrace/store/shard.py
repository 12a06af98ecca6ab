"""One shard of a scaled-out ingest: one input file validated by the embedded ingest, written as
Parquet for an engine that deduplicates across shards (engines/spark/ingest.py).

Why the embedded ingest itself, in a scratch in-memory store: the rules that accept, reject and
deduplicate a line are `store.ingest`'s and nowhere else, so a shard can only agree with
`alphatrace ingest`. Within its file a shard keeps each event's first line, as the embedded
ingest does; what is left is the duplicates between files, which only a global step can see.
The shard's rows carry the file's global key as `file_id` (its 1-based position among the
inputs: what a fresh store's file_id sequence gives the same files) and their line numbers,
so "earliest (file, line) first" across shards is a sort on columns already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alphatrace.store.connection import Store
from alphatrace.store.export import select_sql
from alphatrace.store.ingest import ingest_paths

# The tables a shard writes: the three event tables, the quarantine and the file's record.
EVENT_TABLES = ("telemetry", "alpha", "pnl")
SHARD_TABLES = (*EVENT_TABLES, "quarantine", "ingested_files")


@dataclass(frozen=True)
class ShardReport:
    key: int
    path: str
    accepted: int  # new within the file; the global step may still find some duplicates
    duplicates: int
    quarantined: int


def shard_dir(staging: Path, key: int) -> Path:
    return staging / f"shard-{key:06d}"


def validate_file(path: str, key: int, staging: str, kind: str | None = None) -> ShardReport:
    """Ingest `path` into a scratch store and write its SHARD_TABLES to
    `staging/shard-KEY/<table>.parquet` (microsecond UTC timestamps, as `export` writes)."""
    out = shard_dir(Path(staging), key)
    out.mkdir(parents=True, exist_ok=True)
    with Store(":memory:") as store:
        rep = ingest_paths(store, [path], kind=kind)
        con = store.con
        con.execute("UPDATE ingested_files SET file_id = ?", [key])
        for table in ("quarantine", *EVENT_TABLES):
            con.execute(f"UPDATE {table} SET file_id = ?", [key])
        for table in SHARD_TABLES:
            order = "file_id" if table == "ingested_files" else (
                "line" if table == "quarantine" else "event_id")
            target = str(out / f"{table}.parquet").replace("'", "''")
            con.execute(f"COPY ({select_sql(con, table, order)}) TO '{target}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
    return ShardReport(key, path, rep.accepted, rep.duplicates, rep.quarantined)
