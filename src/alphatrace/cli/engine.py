"""`--engine duckdb|spark` and `--tables DIR`: which engine a command computes on.

`alphatrace --engine spark gates evaluate --tables DIR` and `alphatrace gates evaluate
--engine spark --tables DIR` mean the same; a command's own --engine wins. Only the commands
that can run on Spark accept it: anywhere else `--engine spark` is refused, never ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alphatrace.errors import InputError

ENGINES = ("duckdb", "spark")
# Root commands (and, for a group, its subcommands) that run on Spark.
ON_SPARK: dict[str, tuple[str, ...]] = {
    "confidence": (), "ledger": (), "reconcile": (), "ingest": (), "forensics": (),
    "explain": (), "gates": ("evaluate", "backtest"), "audit": ("verify",)}

EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="duckdb (the store, default) or spark: read the ledger of an "
                 "export (--tables DIR) on Spark; the decision log stays in the store (--db)."),
]
TablesOption = Annotated[
    Path | None,
    typer.Option("--tables", help="With --engine spark: the folder `alphatrace export --to "
                 "parquet DIR` wrote, or a namespace of the Spark session's catalogs "
                 "(catalog.schema: tables read and written by name, e.g. Delta or Iceberg)."),
]


def check_root(engine: str | None, command: str | None) -> None:
    """Refuse a root `--engine` the command would not use."""
    if engine is None:
        return
    if engine not in ENGINES:
        raise typer.BadParameter(f"{engine!r}: use duckdb or spark", param_hint="--engine")
    if engine == "spark" and command is not None and command not in ON_SPARK:
        raise typer.BadParameter(f"`{command}` runs on the store only; spark runs "
                                 f"{', '.join(sorted(ON_SPARK))}", param_hint="--engine")


def _root(ctx: typer.Context) -> str | None:
    """The root's `alphatrace --engine`, if given."""
    v = ctx.find_root().params.get("engine")
    return None if v is None else str(v)


def check_group(ctx: typer.Context, group: str) -> None:
    """Refuse a root `--engine spark` for a subcommand of `group` that does not run on Spark."""
    command = ctx.invoked_subcommand
    if _root(ctx) == "spark" and command is not None and command not in ON_SPARK.get(group, ()):
        raise typer.BadParameter(f"`{group} {command}` runs on the store only",
                                 param_hint="--engine")


def root_engine(ctx: typer.Context, engine: str) -> str:
    """A command's `--engine` (default duckdb), else the root's `alphatrace --engine`;
    refused unless one of ENGINES."""
    root = _root(ctx)
    chosen = root if engine == "duckdb" and root else engine
    if chosen not in ENGINES:
        raise InputError(f"--engine {chosen}: use duckdb or spark")
    return chosen


def spark_tables(ctx: typer.Context, engine: str | None, tables: Path | None) -> Path | None:
    """The export to read on Spark (the command's --engine, else the root's), or None for the
    embedded engine."""
    chosen = engine or _root(ctx) or "duckdb"
    if chosen not in ENGINES:
        raise InputError(f"--engine {chosen}: use duckdb or spark")
    if chosen == "duckdb":
        if tables is not None:
            raise InputError("--tables goes with --engine spark")
        return None
    if tables is None:
        raise InputError("--engine spark needs --tables DIR (an export: `alphatrace export "
                         "--to parquet DIR`)")
    return tables
