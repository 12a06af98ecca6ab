"""`alphatrace ingest`, `alphatrace quarantine`, `alphatrace schema`."""

from __future__ import annotations

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
from alphatrace.events import KINDS, event_schema
from alphatrace.store.ingest import (
    ingest_paths,
    input_size,
    iter_quarantine,
    normalize_kind,
    resolve_inputs,
)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("quarantine")(quarantine)
    app.command("schema")(schema)


@handle_errors
def ingest(
    paths: Annotated[list[str], typer.Argument(help="JSONL files (.gz too), folders, or - for stdin.")],
    kind: Annotated[str | None, typer.Option("--kind", help="telemetry | alpha | pnl for every line.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest events: validated, deduplicated, bad lines quarantined with their reason."""
    files = resolve_inputs(paths)
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


@handle_errors
def quarantine(
    db: DbOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int | None, typer.Option(help="Show at most this many.")] = None,
) -> None:
    """Bad events with file, line, field and reason."""
    with open_store(db) as store:
        rows = list(iter_quarantine(store, limit))
    emit(rows, as_json, columns=["path", "line", "kind", "field", "reason"], title="quarantine")


@handle_errors
def schema(
    kind: Annotated[str, typer.Option("--kind", help=f"One of: {', '.join(KINDS)}.")],
) -> None:
    """JSON Schema of an event kind."""
    k = normalize_kind(kind)
    assert k is not None
    print_json(event_schema(k))
