"""The `alphatrace` command: a thin layer over the Python API, one module per area.

Each area's module has `register(app)`; this file only assembles them, so areas never edit a
shared command file.
"""

from __future__ import annotations

import importlib

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


def main() -> None:
    import sys

    from alphatrace.cli.remote import forward

    code = forward(sys.argv[1:])  # a server holds the store: it runs the command
    if code is not None:
        raise SystemExit(code)
    app()


if __name__ == "__main__":
    main()
