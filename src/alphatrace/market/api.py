"""The market area of the Python API: `Market`, an object on a store whose methods
`alphatrace.Database` exposes (`db.import_market`, `db.alias`, `db.symbols`, ...)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alphatrace.market import aliases as _aliases
from alphatrace.market import catalog
from alphatrace.market.importer import MarketImportReport, import_files
from alphatrace.policy import Policy
from alphatrace.store import Store
from alphatrace.utc import utc_result


class Market:
    """Import market data and name its symbols (docs/market.md)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def import_market(
        self, *paths: str | os.PathLike[str], symbol: str | None = None
    ) -> MarketImportReport:
        """Import bars/ticks/funding files or folders; see `alphatrace market import`."""
        return import_files(self.store, [str(p) for p in paths], symbol=symbol)

    @utc_result
    def alias(self, alias: str, symbol: str | None) -> dict[str, Any]:
        """Store `alias` -> `symbol`; `symbol=None` removes the alias."""
        if symbol is None:
            return _aliases.remove_alias(self.store, alias)
        return _aliases.set_alias(self.store, alias, symbol)

    @utc_result
    def aliases(self) -> list[dict[str, Any]]:
        return _aliases.list_aliases(self.store)

    @utc_result
    def symbols(self) -> list[dict[str, Any]]:
        """Imported symbols: interval, first/last bar, bar and funding counts, aliases."""
        return catalog.symbols(self.store)

    @utc_result
    def resolve(
        self, *symbols: str, policy: Policy | str | Path | None = None
    ) -> list[dict[str, Any]]:
        """How each name resolves: symbol, status (alias/exact/prefix/ambiguous/unknown) and
        the candidates that made it ambiguous. `policy` adds its `market.aliases`."""
        return catalog.resolve(self.store, symbols, _aliases.policy_aliases(policy))
