"""The Python API (docs/architecture.md §API). The CLI is a thin layer over it.

Each area is an object on a store, in `alphatrace/<area>/api.py`: `Ledger`, `Market`,
`Forensics`, `Governance` (with its `Gates`). `Database` opens the store, holds one of each and
exposes their methods under the documented names (`db.ledger(...)`, `db.explain(...)`,
`db.gates.evaluate(...)`), each defined once, in its area. Code that has a store or a
connection and needs one area builds that area alone (the dashboard builds `Forensics` on a
read cursor).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import duckdb

from alphatrace.errors import InputError
from alphatrace.forensics.api import Forensics
from alphatrace.governance.api import Gates, Governance
from alphatrace.ledger.api import Ledger
from alphatrace.market.api import Market
from alphatrace.store import Store
from alphatrace.store.ingest import IngestReport, ingest_paths, resolve_inputs
from alphatrace.store.sniff import check_files

if TYPE_CHECKING:
    from alphatrace.client.database import RemoteDatabase

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")


class _Via(Generic[A, P, R]):
    """A `Database` method that is its area's method: `db.<name>` is the bound method of the
    area object in `db.<area>` (same signature, docstring and return), and `Database.<name>`
    the area's function (so `help(Database)` lists it)."""

    def __init__(self, area: str, method: Callable[Concatenate[A, P], R]) -> None:
        self.area, self.method = area, method

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self.method.__name__:
            raise TypeError(f"Database.{name} must have its area's name "
                            f"({self.method.__qualname__})")

    @overload
    def __get__(self, db: None, owner: type) -> Callable[Concatenate[A, P], R]: ...

    @overload
    def __get__(self, db: Database, owner: type) -> Callable[P, R]: ...

    def __get__(self, db: Database | None, owner: type) -> Callable[..., R]:
        if db is None:
            return self.method
        bound: Callable[P, R] = getattr(getattr(db, self.area), self.method.__name__)
        return bound


class Database:
    """An open alphatrace store with every capability as a method.

    `Database(path, read_only=...)` opens (creating and migrating unless read-only) the store
    at `path` (see `connect`); `Database(store)` works on a `Store` already open, without a
    second connection."""

    def __init__(self, path: str | os.PathLike[str] | Store | None = None, *,
                 read_only: bool = False) -> None:
        self.store = path if isinstance(path, Store) else Store(path, read_only=read_only)
        self.ledger_area = Ledger(self.store)
        self.market_area = Market(self.store)
        self.forensics_area = Forensics(self.store)
        self.governance_area = Governance(self.store)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.store.con

    # -- ledger/api.py ---------------------------------------------------------------------
    reconcile = _Via("ledger_area", Ledger.reconcile)
    ledger = _Via("ledger_area", Ledger.ledger)
    agents = _Via("ledger_area", Ledger.agents)
    # -- market/api.py ---------------------------------------------------------------------
    import_market = _Via("market_area", Market.import_market)
    alias = _Via("market_area", Market.alias)
    aliases = _Via("market_area", Market.aliases)
    symbols = _Via("market_area", Market.symbols)
    resolve = _Via("market_area", Market.resolve)
    # -- forensics/api.py ------------------------------------------------------------------
    explain = _Via("forensics_area", Forensics.explain)
    forensics = _Via("forensics_area", Forensics.forensics)
    apply_exclusions = _Via("forensics_area", Forensics.apply_exclusions)
    exclusions = _Via("forensics_area", Forensics.exclusions)
    # -- governance/api.py -----------------------------------------------------------------
    confidence = _Via("governance_area", Governance.confidence)
    audit_verify = _Via("governance_area", Governance.audit_verify)
    audit_sign = _Via("governance_area", Governance.audit_sign)
    audit_show = _Via("governance_area", Governance.audit_show)
    revive = _Via("governance_area", Governance.revive)

    @property
    def gates(self) -> Gates:
        """Evaluate the promotion/kill gates (now, as of a time, catching up) and backtest them."""
        return self.governance_area.gates

    def on_decision(self, fn: Callable[[list[dict[str, Any]]], None]) -> None:
        """Call `fn(records)` after each commit through this store that appends decision
        records (an evaluation's news, a revive), with the records as stored, on the thread
        that committed. Never for a transaction that rolls back; what `fn` raises is logged
        and does not undo the append (docs/governance.md §Notifications)."""
        from alphatrace.notify import callbacks

        callbacks.on_decision(self.store, fn)

    def ingest(self, *paths: str | os.PathLike[str], kind: str | None = None) -> IngestReport:
        """Ingest JSON Lines files or folders; see `alphatrace ingest`. A Parquet, CSV or other
        non-JSON-Lines file is refused (InputError) before anything is read."""
        files = resolve_inputs([str(p) for p in paths])
        check_files(files)
        return ingest_paths(self.store, files, kind=kind)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@overload
def connect(path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
            key: None = None) -> Database: ...


@overload
def connect(path: str, *, read_only: bool = False, key: str) -> RemoteDatabase: ...


def connect(path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
            key: str | None = None) -> Database | RemoteDatabase:
    """Open (creating if needed) a store: `path`, else $ALPHATRACE_DB, else ./alphatrace.duckdb.

    An `http://` or `https://` address (or, with no path, $ALPHATRACE_URL) is a running
    `alphatrace serve`: the Database's methods are answered by it (client/database.py), with
    `key` (default: $ALPHATRACE_API_KEY) granting the scope each method needs."""
    from alphatrace.client.database import RemoteDatabase, is_url
    from alphatrace.client.http import ENV_URL

    target = path if path is not None else os.environ.get(ENV_URL) or None
    if is_url(target):
        return RemoteDatabase(str(target), key)
    if key is not None:
        raise InputError("key= is for a server address (http://host:port), not a store file")
    return Database(path, read_only=read_only)
