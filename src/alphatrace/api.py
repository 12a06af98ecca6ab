"""The Python API (docs/architecture.md §API). The CLI is a thin layer over it.

`Database` is assembled from one mixin per area (each in `alphatrace/<area>/api.py`), so each
area owns its methods without editing a shared file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import duckdb

from alphatrace.errors import InputError
from alphatrace.forensics.api import ForensicsAPI
from alphatrace.governance.api import GovernanceAPI
from alphatrace.ledger.api import LedgerAPI
from alphatrace.market.api import MarketAPI
from alphatrace.store import Store
from alphatrace.store.ingest import IngestReport, ingest_paths, resolve_inputs
from alphatrace.store.sniff import check_files

if TYPE_CHECKING:
    from alphatrace.client.database import RemoteDatabase


class Database(LedgerAPI, MarketAPI, ForensicsAPI, GovernanceAPI):
    """An open alphatrace store with every capability as a method."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        self.store = Store(path, read_only=read_only)

    @classmethod
    def on(cls, store: Store) -> Database:
        """A Database over an already open Store (no second connection)."""
        db = cls.__new__(cls)
        db.store = store
        return db

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.store.con

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
