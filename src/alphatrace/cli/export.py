"""`alphatrace export --to parquet DIR`: the store's tables for other engines (store/export.py)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    emit,
    handle_errors,
    open_store,
    step_progress,
)
from alphatrace.cli.names import require_store
from alphatrace.store.export import NAMES, as_dicts, export_parquet


class Format(StrEnum):
    parquet = "parquet"


@handle_errors
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write (created if missing).")],
    to: Annotated[Format, typer.Option("--to", help="File format.")] = Format.parquet,
    tables: Annotated[str | None, typer.Option(
        help=f"Comma-separated tables (default: all of {', '.join(NAMES)}).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the store's tables as Parquet (microsecond UTC timestamps, rows in key order) with a
    manifest `_alphatrace.json`; Spark and other engines read them (docs/spark.md)."""
    require_store(db)
    chosen = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    with open_store(db, read_only=True) as store, step_progress("exporting", not as_json) as say:
        done = export_parquet(store.con, directory, chosen, say)
    emit(as_dicts(done), as_json, columns=["table", "rows", "path"], title=f"exported to {directory}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
