"""The `alphatrace` command's typer app: a thin layer over the Python API, one module per area
(`cli/main.py` is the entry point that runs it, or forwards it to a server).

Each area's module has `register(app)`; this file only assembles them, so areas never edit a
shared command file.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

app = typer.Typer(
    name="alphatrace",
    help="Explain every dollar an automated trading agent gains or loses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

AREAS = (
    "alphatrace.cli.ingest",
    "alphatrace.cli.market",
    "alphatrace.cli.ledger",
    "alphatrace.cli.forensics",
    "alphatrace.cli.governance",
    "alphatrace.cli.notify",
    "alphatrace.cli.server",
    "alphatrace.cli.dashboard",
    "alphatrace.cli.demo",
    "alphatrace.cli.export",
)

for _name in AREAS:
    importlib.import_module(_name).register(app)


@app.command("version")
def version() -> None:
    """Print the alphatrace version."""
    from alphatrace import __version__

    typer.echo(__version__)


@app.callback()
def _remote_options(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        "--url", help="Run the command on the alphatrace server at URL instead of a local "
        "store (any command, before or after its name).", envvar="ALPHATRACE_URL",
        show_envvar=True)] = None,
    key: Annotated[str | None, typer.Option(
        "--key", "--api-key", help="API key for --url (`audit sign` takes --api-key: its "
        "--key is the signing key).", envvar="ALPHATRACE_API_KEY", show_envvar=True)] = None,
    engine: Annotated[str | None, typer.Option(
        "--engine", help="duckdb (the store, default) or spark, for `ingest`, `reconcile`, "
        "`ledger`, `confidence`, `gates evaluate`, `gates backtest` and `audit verify` (each "
        "also takes --engine itself).")] = None,
) -> None:
    """Explain every dollar an automated trading agent gains or loses.

    `main()` reads --url and --key wherever they stand (cli/remote.py); declared here so that
    `alphatrace --help` lists them. `--engine` here is read by the commands that take it."""
    from alphatrace.cli.engine import check_root

    check_root(engine, ctx.invoked_subcommand)
