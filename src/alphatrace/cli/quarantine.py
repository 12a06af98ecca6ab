"""`alphatrace quarantine` (list bad lines) and `alphatrace quarantine clear` (clear or prune
them, recorded in `quarantine_clears`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer

from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    console,
    emit,
    handle_errors,
    open_store,
    print_json,
)
from alphatrace.cli.names import not_found, require_store
from alphatrace.parse import parse_since
from alphatrace.store import Store
from alphatrace.store.connection import has_table
from alphatrace.store.ingest import iter_quarantine

quarantine_app = typer.Typer(help="Bad lines and rows, with file, line, field and reason.",
                             invoke_without_command=True)


@quarantine_app.callback()
@handle_errors
def quarantine(
    ctx: typer.Context,
    db: DbOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int | None, typer.Option(help="Show at most this many.")] = None,
) -> None:
    """Bad events with file, line, field and reason (`quarantine clear` removes them)."""
    if ctx.invoked_subcommand is not None:
        return
    with open_store(db, read_only=True) as store:
        rows = list(iter_quarantine(store, limit))
    emit(rows, as_json, columns=["path", "line", "kind", "field", "reason"], title="quarantine")


def _arrived(con: duckdb.DuckDBPyConnection) -> str:
    """SQL for the time a quarantine row `q` arrived (NULL when its file is unknown)."""
    parts = ["(SELECT max(ingested_at) FROM ingested_files f WHERE f.file_id = q.file_id)"]
    if has_table(con, "market_files"):
        parts.append("(SELECT max(imported_at) FROM market_files m WHERE m.file_id = q.file_id)")
    return f"coalesce({', '.join(parts)})"


def clear(store: Store, file: str | None, before: dt.datetime | None, *,
          dry_run: bool = False, now: dt.datetime | None = None) -> dict[str, Any]:
    """Remove the quarantined rows of `file` (its path as ingested, or a path ending in
    /`file`) and/or of files ingested before `before` (naive UTC); all rows without filters.
    Recorded in `quarantine_clears` in the same transaction unless `dry_run`."""
    con = store.con
    conds: list[str] = []
    params: list[object] = []
    if file is not None:
        conds.append("(q.path = ? OR q.path LIKE ? ESCAPE '\\')")
        params += [file, "%/" + file.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")]
    if before is not None:
        conds.append(f"{_arrived(con)} < ?")
        params.append(before)
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    with store.transaction():
        counts = dict(con.execute(
            f"SELECT path, count(*) FROM quarantine q{where} GROUP BY path ORDER BY path",
            params).fetchall())
        if file is not None and not counts:
            known = [str(r[0]) for r in con.execute(
                "SELECT DISTINCT path FROM quarantine WHERE path IS NOT NULL").fetchall()]
            if file not in known and not any(k.endswith("/" + file) for k in known):
                raise not_found("quarantined file", file, [*known, *(Path(k).name for k in known)])
        removed = int(sum(counts.values()))
        doc: dict[str, Any] = {"removed": removed, "file": file, "before": before,
                               "paths": {str(k): int(v) for k, v in counts.items()},
                               "dry_run": dry_run}
        if dry_run:
            return doc
        con.execute(f"DELETE FROM quarantine q{where}", params)
        when = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        seq = con.execute(
            "INSERT INTO quarantine_clears (cleared_at, file, before, rows, paths) "
            "VALUES (?, ?, ?, ?, ?) RETURNING seq",
            [when, file, before, removed, json.dumps(doc["paths"], sort_keys=True)]).fetchall()[0][0]
        doc.update(seq=int(seq), cleared_at=when)
    return doc


@quarantine_app.command("clear")
@handle_errors
def clear_command(
    file: Annotated[str | None, typer.Option(
        "--file", help="Only the rows of this file (its path as ingested, or its name).")] = None,
    before: Annotated[str | None, typer.Option(
        "--before", help="Only rows of files ingested before this time: ISO 8601 (UTC if no "
                         "offset), epoch seconds or ms, or a span back from now (30d).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")]
    = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Clear the quarantine, or prune it by file and/or age; every clear is recorded."""
    cutoff = parse_since(before, name="--before")
    require_store(db)
    with open_store(db) as store:
        doc = clear(store, file, cutoff, dry_run=dry_run)
    if as_json:
        print_json(doc)
        return
    what = "would remove" if dry_run else "removed"
    console.print(f"{what} {doc['removed']:,} quarantined row(s)"
                  + (f" (record {doc['seq']} in quarantine_clears)" if not dry_run else ""),
                  highlight=False)
    if doc["paths"]:
        emit([{"path": k, "rows": v} for k, v in doc["paths"].items()], False, title=None)

