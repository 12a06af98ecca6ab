"""`alphatrace report`: the dashboard as one self-contained HTML file (the live pages are served
by `alphatrace serve`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import duckdb
import typer

from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    console,
    handle_errors,
    print_json,
    step_progress,
)
from alphatrace.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@handle_errors
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")],
    db: DbOption = None,
    strategy: Annotated[str | None, typer.Option(help="Overview: runs of this strategy only.")] = None,
    since: Annotated[str | None, typer.Option(help="Overview: runs at or after this time.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Overview: runs before this time (a date: the end of that day).")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (default: the shipped one).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the dashboard (overview, agents, runs, forensics, decisions) as one HTML file
    that works offline: CSS, charts and data inline, nothing fetched."""
    from alphatrace.server.dashboard.params import RunFilter
    from alphatrace.server.dashboard.report import build
    from alphatrace.server.dashboard.source import Source
    from alphatrace.store import Store

    if out.exists() and out.is_dir():
        raise InputError(f"--out {out}: is a folder; name the HTML file to write")
    if not out.parent.exists():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    flt = RunFilter.parse(strategy, since, until)
    t0 = time.perf_counter()
    with Store(db, read_only=True) as store:
        con = store.con
        con.execute("SET threads = 1")  # float sums in one order: the same store, the same bytes

        @contextmanager
        def connect() -> Iterator[duckdb.DuckDBPyConnection]:
            yield con

        src = Source(connect, policy=policy, wait_s=None, side_wait_s=None)
        with step_progress("report: starting", not as_json) as say:
            html, counts = build(src, con, flt, progress=lambda what: say(f"report: {what}"))
    out.write_text(html, encoding="utf-8")
    size = len(html.encode("utf-8"))
    if as_json:
        print_json({"out": str(out), "bytes": size, **counts})
        return
    console.print(f"[green]✓[/] wrote [bold]{out}[/] ({size / 1e6:.1f} MB: "
                  f"{counts['agents']} agents, {counts['runs']} runs, {counts['clusters']} loss "
                  f"clusters, {counts['decisions']} decisions) in {time.perf_counter() - t0:.1f} s",
                  highlight=False)
