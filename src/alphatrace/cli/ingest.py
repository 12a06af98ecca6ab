"""`alphatrace ingest`, `alphatrace quarantine`, `alphatrace schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    byte_progress,
    console,
    emit,
    handle_errors,
    open_store,
    print_json,
)
from alphatrace.cli.engine import root_engine
from alphatrace.errors import InputError
from alphatrace.events import KINDS, event_schema
from alphatrace.store.ingest import (
    ingest_paths,
    input_size,
    normalize_kind,
    resolve_inputs,
)
from alphatrace.store.sniff import check_files


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    from alphatrace.cli.quarantine import quarantine_app

    app.add_typer(quarantine_app, name="quarantine")
    app.command("schema")(schema)


@handle_errors
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(help="JSONL files (.gz too), folders, or - for stdin.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="telemetry | alpha | pnl for every line.")] = None,
    follow: Annotated[list[Path] | None, typer.Option(
        "--follow", help="Tail spool folders; ingest each closed file exactly once.")] = None,
    once: Annotated[bool, typer.Option("--once", help="With --follow: one pass, then exit.")] = False,
    max_seconds: Annotated[float | None, typer.Option(
        "--max-seconds", help="With --follow: stop after this many seconds.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="duckdb (the store) or spark: validate each file in a Spark executor "
                         "and deduplicate across files on Spark, into the Parquet tables of "
                         "--tables DIR (docs/spark.md).")] = "duckdb",
    tables: Annotated[Path | None, typer.Option(
        "--tables", help="With --engine spark: the folder to write the tables to.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest events: validated, deduplicated, bad lines quarantined with their reason."""
    if root_engine(ctx, engine) == "spark":
        _spark_ingest(paths, kind, tables, bool(follow), as_json)
        return
    if tables is not None:
        raise InputError("--tables goes with --engine spark")
    if follow:
        from alphatrace.cli.server import run_follow

        run_follow(follow, once=once, max_seconds=max_seconds, poll=1.0, db=db, as_json=as_json)
        return
    if not paths:
        raise InputError("give PATH... to ingest, or --follow DIR")
    files = resolve_inputs(paths)
    check_files(files)  # before the store opens: a refused file creates nothing
    with open_store(db) as store, byte_progress(
        input_size(files), "ingest", enabled=not as_json
    ) as progress:
        report = ingest_paths(store, files, kind=kind, progress=progress)
    data = {k: v for k, v in report.to_dict().items() if k != "by_kind"}
    if as_json:
        print_json(data)
        return
    emit(data, False, title="ingest")
    if report.quarantined:
        console.print(
            f"[yellow]{report.quarantined:,} bad line(s) quarantined:[/] see `alphatrace quarantine`"
        )


def _spark_ingest(paths: list[str] | None, kind: str | None, tables: Path | None,
                  follow: bool, as_json: bool) -> None:
    if tables is None or not paths or follow:
        raise InputError("--engine spark needs PATH... (files or folders) and --tables DIR")
    files = resolve_inputs(paths)
    if "-" in files:
        raise InputError("--engine spark reads files, not stdin (-)")
    check_files(files)
    normalize_kind(kind)
    from alphatrace.engines.spark.ingest import ingest_sharded

    report = ingest_sharded(files, tables, kind)
    data = {k: v for k, v in report.to_dict().items() if k != "by_kind"}
    if as_json:
        print_json(data)
        return
    emit(data, False, title=f"ingest (Spark) into {tables}")


@handle_errors
def schema(
    kind: Annotated[str, typer.Option("--kind", help=f"One of: {', '.join(KINDS)}.")],
) -> None:
    """JSON Schema of an event kind."""
    k = normalize_kind(kind)
    assert k is not None
    print_json(event_schema(k))
