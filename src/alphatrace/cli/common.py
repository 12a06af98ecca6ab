"""What every command shares: the --db and --json options, one-line errors, tables, JSON out.

Reporting commands return plain data (dicts/lists); `emit` prints it as one JSON document with
--json and as a rich table otherwise, so the table and the JSON never drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from alphatrace.errors import AlphatraceError
from alphatrace.jsonvalue import plain
from alphatrace.store import Store

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Store file (default: $ALPHATRACE_DB or ./alphatrace.duckdb).",
                 envvar="ALPHATRACE_DB", show_envvar=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")]
PolicyOption = Annotated[
    Path | None, typer.Option("--policy", help="Policy file (default: the shipped default.yaml).")
]

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """User mistakes become one red line and the error's exit code, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AlphatraceError as e:
            # Text, not markup: a message may contain [brackets] from the user's own input.
            err_console.print(Text.assemble(("error: ", "bold red"), str(e)), soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


def open_store(db: Path | None, *, read_only: bool = False) -> Store:
    return Store(db, read_only=read_only)


def _clean(o: Any) -> Any:
    """NaN/inf are not JSON: they become null, so --json output always parses."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def to_json(data: Any) -> str:
    return json.dumps(_clean(json.loads(json.dumps(data, default=plain))), indent=2)


def print_json(data: Any) -> None:
    sys.stdout.write(to_json(data) + "\n")
    sys.stdout.flush()


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        if v != 0 and abs(v) < 0.01:
            return f"{v:.2e}"
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, list | tuple):
        return ", ".join(fmt(x) for x in v)
    return str(v)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          title: str | None = None) -> Table:
    cols = list(columns) if columns else (list(rows[0].keys()) if rows else [])
    t = Table(title=title, header_style="bold", show_lines=False)
    for c in cols:
        numeric = bool(rows) and isinstance(rows[0].get(c), int | float) and not isinstance(rows[0].get(c), bool)
        t.add_column(c, justify="right" if numeric else "left", overflow="fold")
    for r in rows:
        t.add_row(*(fmt(r.get(c)) for c in cols))
    return t


def emit(data: Any, as_json: bool, *, columns: Sequence[str] | None = None,
         title: str | None = None) -> None:
    """--json: the document; else a table (list of rows) or a key/value table (dict)."""
    if as_json:
        print_json(data)
        return
    if isinstance(data, list):
        if not data:
            console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/]")
            return
        console.print(table(data, columns, title))
    elif isinstance(data, dict):
        console.print(table([{"field": k, "value": v} for k, v in data.items()], title=title))
    else:
        console.print(data)


@contextmanager
def byte_progress(total: int, description: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over bytes for long operations; silent for small inputs and --json."""
    if not enabled or total < 32 * 1024 * 1024:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
    ) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)
