"""`alphatrace market import|alias|symbols|resolve`: market data and symbol aliases."""

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
from alphatrace.errors import InputError
from alphatrace.market import aliases as market_aliases
from alphatrace.market import catalog
from alphatrace.market.importer import import_planned, input_size, plan

market_app = typer.Typer(
    name="market", help="Market data (bars, funding) and symbol aliases.", no_args_is_help=True
)

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file whose `market.aliases` apply (and win)."),
]
SHOWN_PROBLEMS = 10


def register(app: typer.Typer) -> None:
    """Adds this area's commands to the app."""
    app.add_typer(market_app)


@market_app.command("import")
@handle_errors
def import_(
    paths: Annotated[list[str], typer.Argument(help="Parquet/CSV files (.csv.gz too) or folders.")],
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol for files without a symbol column "
                                      "(default: from the file name)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import bars, ticks and funding (incl. raw Binance CSVs); bad rows are quarantined."""
    with open_store(db) as store:
        items = plan(store.con, paths, symbol)
        with byte_progress(input_size(items), "market import", enabled=not as_json) as progress:
            report = import_planned(store, items, progress)
    if as_json:
        print_json(report.to_dict())
        return
    emit(report.to_dict(), False, title="market import")
    if report.quarantined:
        console.print(f"[yellow]{report.quarantined:,} bad row(s) quarantined "
                      "(see `alphatrace quarantine`):[/]")
        for p in report.problems[:SHOWN_PROBLEMS]:
            field = f" {p['field']}:" if p["field"] else ""
            console.print(f"  {p['path']}:{p['line']}:{field} {p['reason']}",
                          highlight=False, markup=False)


@market_app.command("alias")
@handle_errors
def alias(
    name: Annotated[str | None, typer.Argument(metavar="ALIAS", help="Name agents use, e.g. XBT.")] = None,
    symbol: Annotated[str | None, typer.Argument(help="Market symbol, e.g. BTCUSDT.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove ALIAS.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Map ALIAS to SYMBOL (or --remove it); with no arguments, list the stored aliases."""
    if name is None:
        if remove or symbol is not None:
            raise InputError("give the ALIAS to set or remove")
        with open_store(db, read_only=True) as store:
            emit(market_aliases.list_aliases(store), as_json, columns=["alias", "symbol"],
                 title="aliases")
        return
    if remove == (symbol is not None):
        raise InputError("give either SYMBOL (to set the alias) or --remove, not both or neither")
    with open_store(db) as store:
        if remove:
            rec = market_aliases.remove_alias(store, name)
        else:
            rec = market_aliases.set_alias(store, name, symbol or "")
    if as_json:
        print_json(rec)
        return
    if remove:
        console.print(f"removed alias {rec['alias']} (was {rec['symbol']})", highlight=False)
        return
    console.print(f"{rec['alias']} -> {rec['symbol']}", highlight=False)
    if not rec["imported"]:
        console.print(f"[yellow]note:[/] no market data for {rec['symbol']} imported yet")


@market_app.command("symbols")
@handle_errors
def symbols(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Imported symbols: interval, first/last bar, bar count, funding count, aliases."""
    with open_store(db, read_only=True) as store:
        rows = catalog.symbols(store)
    emit(rows, as_json, title="market symbols", columns=[
        "symbol", "interval", "first_bar", "last_bar", "bars", "funding", "aliases",
    ])


@market_app.command("resolve")
@handle_errors
def resolve(
    names: Annotated[list[str], typer.Argument(metavar="SYMBOL...", help="Names to resolve.")],
    policy: PolicyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """How each name maps to a market symbol: alias, exact, prefix, ambiguous or unknown."""
    extra = market_aliases.policy_aliases(policy)
    with open_store(db, read_only=True) as store:
        rows = catalog.resolve(store, names, extra)
    emit(rows, as_json, title="resolve", columns=["symbol", "resolved", "status", "candidates"])
