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
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from alphatrace.cli.fit import abbreviate, fit, header_lines
from alphatrace.errors import AlphatraceError
from alphatrace.jsonvalue import plain
from alphatrace.store import Store

console = Console()
err_console = Console(stderr=True)


@contextmanager
def terminal_width(columns: int) -> Iterator[None]:
    """Both consoles lay out for `columns` within the block: a command the server runs for a
    client (`server/cli_routes.py`) fits the client's terminal, not the server's. Rich fixes a
    width read from COLUMNS when a console is made, so setting the environment is not enough."""
    saved = [(c, c._width) for c in (console, err_console)]
    try:
        for c, _ in saved:
            c.width = columns
        yield
    finally:
        for c, width in saved:
            c._width = width

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Store file (default: $ALPHATRACE_DB or ./alphatrace.duckdb).",
                 envvar="ALPHATRACE_DB", show_envvar=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (default: the shipped default.yaml; `seed` names "
                 "the shipped seed.yaml, `default` the default, unless a file has that name)."),
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


Formats = dict[str, Callable[[Any], str]]
# Identifiers a user copies into the next command: never cut, whatever the width.
WHOLE = frozenset({"run_id"})


def _atomic(values: Sequence[Any]) -> bool:
    """Numbers and times: a column of them is never wrapped or cut."""
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float | dt.datetime | dt.date) for v in present)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          title: str | None = None, *, width: int | None = None,
          priority: Sequence[str] | None = None, formats: Formats | None = None,
          ) -> tuple[Table, tuple[str, ...]]:
    """A rich Table of `rows` that fits `width` (default: the console's) and the columns
    dropped to make it fit (see alphatrace.cli.fit). `formats` renders a column's values
    (such columns are atomic too)."""
    cols = list(columns) if columns else (list(rows[0].keys()) if rows else [])
    formats = formats or {}
    raw = {c: [r.get(c) for r in rows] for c in cols}
    texts = [[formats[c](v) if c in formats and v is not None else fmt(v) for v in raw[c]]
             for c in cols]
    numeric = [c in formats or _atomic(raw[c]) for c in cols]
    whole = [n or c in WHOLE for n, c in zip(numeric, cols, strict=True)]
    layout = fit(cols, texts, whole, width or console.width, priority)
    t = Table(title=title, header_style="bold", show_lines=False)
    for c, w in zip(layout.columns, layout.widths, strict=True):
        j = cols.index(c)
        t.add_column("\n".join(header_lines(c, w)), justify="right" if numeric[j] else "left",
                     width=w, no_wrap=whole[j], overflow="fold")
    shown = [cols.index(c) for c in layout.columns]
    for i in range(len(rows)):
        t.add_row(*(_cell(texts[j][i], w, whole[j]) for j, w in zip(shown, layout.widths, strict=True)))
    return t, layout.dropped


def _cell(text: str, width: int, atomic: bool) -> str:
    """A name longer than its column is cut in the middle; prose wraps at spaces, a word of it
    longer than the column cut in the middle too (never folded onto two lines)."""
    if atomic or len(text) <= width:
        return text
    return " ".join(abbreviate(w, width) for w in text.split(" "))


def emit(data: Any, as_json: bool, *, columns: Sequence[str] | None = None,
         title: str | None = None, priority: Sequence[str] | None = None,
         formats: Formats | None = None) -> None:
    """--json: the document; else a table (list of rows) or a key/value table (dict) that
    fits the terminal, with a note naming any column left out to fit."""
    if as_json:
        print_json(data)
        return
    if isinstance(data, list):
        if not data:
            console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/]")
            return
        t, dropped = table(data, columns, title, priority=priority, formats=formats)
        console.print(t)
        if dropped:
            console.print(f"[dim]not shown at {console.width} columns: {', '.join(dropped)} "
                          "(wider terminal or --json for all)[/]", highlight=False)
    elif isinstance(data, dict):
        console.print(table([{"field": k, "value": v} for k, v in data.items()], title=title)[0])
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


@contextmanager
def step_progress(first: str, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step and the time elapsed (on stderr), for long commands
    whose steps are known only as they come; a no-op callback when disabled (--json)."""
    if not enabled:
        yield lambda _: None
        return
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as prog:
        task = prog.add_task(first, total=None)
        yield lambda what: prog.update(task, description=what)
