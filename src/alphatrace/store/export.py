"""`alphatrace export --to parquet DIR`: a store's tables as Parquet files other engines read.

Why this shape: Spark (and most lakehouse readers) reject Parquet nanosecond timestamps and
read a timestamp without the UTC flag as local wall time. Every timestamp column is written as
microseconds flagged as UTC (a TIMESTAMPTZ in the session's UTC zone), which is what the store
means by its naive TIMESTAMP columns (store/connection.py sets the zone). Rows are written in
each table's key order, so the same store gives the same files. Tables holding secrets
(`api_keys`) or the store's own bookkeeping are not exported.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from alphatrace import __version__
from alphatrace.errors import StoreError
from alphatrace.store.connection import has_table

# (table, the columns that order its rows: a key, so the order is total). The events, the market,
# the quarantine, what reconcile derived, and the decision log with the policies it cites.
TABLES: tuple[tuple[str, str], ...] = (
    ("telemetry", "event_id"),
    ("alpha", "event_id"),
    ("pnl", "event_id"),
    ("ingested_files", "file_id"),
    ("bars", "symbol, interval_s, ts"),
    ("funding", "symbol, ts"),
    ("symbol_aliases", "ALL"),
    ("market_files", "file_id"),
    ("quarantine", "ALL"),
    ("legs", "event_id"),
    ("ledger", "run_id"),
    ("ledger_changes", "seq, run_id"),
    ("run_exclusions", "ALL"),
    ("decisions", "seq"),
    ("governance_policies", "policy_hash"),
)
NAMES = tuple(t for t, _ in TABLES)
MANIFEST = "_alphatrace.json"


@dataclass(frozen=True)
class Exported:
    table: str
    rows: int
    path: str
    sha256: str


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(str(n), str(t)) for n, t in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
        "AND schema_name = 'main' AND database_name = current_database() "
        "ORDER BY column_index", [table]).fetchall()]


def select_sql(con: duckdb.DuckDBPyConnection, table: str, order: str) -> str:
    """The table with every TIMESTAMP as a UTC-flagged TIMESTAMPTZ (microseconds), in key order."""
    cols = []
    for name, typ in _columns(con, table):
        q = '"' + name.replace('"', '""') + '"'
        cols.append(f"CAST({q} AS TIMESTAMPTZ) AS {q}" if typ.startswith("TIMESTAMP")
                    and typ != "TIMESTAMP WITH TIME ZONE" else q)
    return f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_parquet(con: duckdb.DuckDBPyConnection, out: Path, tables: Sequence[str] | None = None,
                   step: Callable[[str], None] | None = None) -> list[Exported]:
    """Write each table the store has (or `tables`) to `out/<table>.parquet`, and a manifest
    (`_alphatrace.json`: alphatrace version, the store's migrations, rows and sha256 per
    file). Each file is written beside its final name and renamed, so a reader never sees a
    half-written one."""
    unknown = [t for t in tables or () if t not in NAMES]
    if unknown:
        raise StoreError(f"cannot export {unknown[0]!r}: the tables are {', '.join(NAMES)}")
    say = step or (lambda _msg: None)
    out.mkdir(parents=True, exist_ok=True)
    done: list[Exported] = []
    for table, order in TABLES:
        if (tables and table not in tables) or not has_table(con, table):
            continue
        say(f"exporting {table}")
        final = out / f"{table}.parquet"
        tmp = out / f".{table}.parquet.tmp"
        path_sql = str(tmp).replace("'", "''")
        con.execute(f"COPY ({select_sql(con, table, order)}) TO '{path_sql}' "
                    "(FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, final)
        rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        done.append(Exported(table, rows, str(final), _sha256(final)))
    migrations = ([int(r[0]) for r in con.execute(
        "SELECT version FROM schema_migrations ORDER BY version").fetchall()]
        if has_table(con, "schema_migrations") else [])
    manifest = {"alphatrace": __version__, "format": "parquet", "timestamps": "us, UTC",
                "migrations": migrations,
                "tables": {e.table: {"rows": e.rows, "file": Path(e.path).name,
                                     "sha256": e.sha256} for e in done}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return done


def as_dicts(done: Sequence[Exported]) -> list[dict[str, object]]:
    return [asdict(e) for e in done]
