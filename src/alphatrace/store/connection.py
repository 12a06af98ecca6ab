"""The one place that opens DuckDB: UTC session, migrations applied, transactions scoped.

DuckDB allows one writing process per file; a second writer gets a clear StoreError that says
to go through the collector or spool files instead of a lock traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from alphatrace.config import resolve_db_path
from alphatrace.errors import StoreError
from alphatrace.store.migrations import migrate

log = logging.getLogger("alphatrace.store")

# Store files this process serves (`alphatrace serve`). A command the server runs for the CLI
# (`server/cli_routes.py`) opens its store again in this process, where DuckDB shares one
# database instance per file and refuses a second configuration: read-only is not possible
# there, so such a store is opened read-write whatever the caller asked.
SERVED: set[Path] = set()


class Store:
    """An open alphatrace store. `con` is the DuckDB connection; areas run SQL on it."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """Open the store at `path` (see config.resolve_db_path; ":memory:" for none),
        migrating it unless `read_only`. With `con`: a view of a store already open in this
        process (a read cursor of the server's connection): `con` is used as it is, nothing
        is opened or migrated, and `path` is only recorded."""
        self.path: Path | None
        self.read_only = read_only
        self._in_transaction = False
        self._on_commit: list[Callable[[], None]] = []
        if con is not None:
            self.path = Path(path) if path is not None else None
            self.con = con
            return
        if path is not None and str(path) == ":memory:":
            self.path = None
            target = ":memory:"
        else:
            self.path = resolve_db_path(path)
            target = str(self.path)
            if read_only and not self.path.exists():
                raise StoreError(f"no alphatrace store at {self.path} (run `alphatrace ingest` first)")
        shared = self.path is not None and self.path.resolve() in SERVED
        try:
            self.con = duckdb.connect(target, read_only=read_only and not shared)
        except duckdb.IOException as e:
            msg = str(e)
            if "lock" in msg.lower():
                from alphatrace.store import discovery

                served = discovery.read(self.path) if self.path is not None else None
                if served is not None:
                    raise StoreError(
                        f"{target} is held by `alphatrace serve` at {served.url} (pid "
                        f"{served.pid}); other commands go through it, but this one cannot: "
                        "stop the server first") from None
                raise StoreError(
                    f"{target} is open for writing by another process; DuckDB allows one writer. "
                    "Send events through `alphatrace serve` or spool files instead."
                ) from None
            raise StoreError(f"cannot open store {target}: {msg}") from None
        self.con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            migrate(self.con)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: a crash or an exception inside leaves the store as before."""
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self.con
        except BaseException:
            self._in_transaction = False
            self._on_commit.clear()
            self.con.execute("ROLLBACK")
            raise
        self._in_transaction = False
        try:
            self.con.execute("COMMIT")
        except BaseException:
            self._on_commit.clear()
            raise
        self._run_on_commit()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn` once the current `transaction()` commits (never if it rolls back); now
        when there is none. What it raises is logged: the write has happened regardless."""
        self._on_commit.append(fn)
        if not self._in_transaction:
            self._run_on_commit()

    def _run_on_commit(self) -> None:
        fns, self._on_commit = self._on_commit, []
        for fn in fns:
            try:
                fn()
            except Exception:
                log.exception("after-commit callback %r failed", fn)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def table_names(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The store's own tables (main schema, not temporary): which areas' data exist.

    Works on read-only stores too, where migrations have not run.
    """
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND database_name = current_database() AND NOT temporary"
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


class _Catalog:
    """The store tables, read once, and each table's columns, read on first need."""

    def __init__(self, tables: frozenset[str]) -> None:
        self.tables = tables
        self.columns: dict[str, list[str]] = {}


# Connections (by id) inside a `catalog_cached` block, with what was read of their catalog.
_CATALOG: dict[int, _Catalog] = {}


@contextmanager
def catalog_cached(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """For the block, `has_table` and `table_columns` on `con` answer from one read of the
    catalog instead of a catalog query per call (a live pipeline pass asked 15-20 times).
    Only for work that creates, drops or alters no store table (temporary tables do not
    count); nested blocks share the outer read."""
    key = id(con)
    if key in _CATALOG:
        yield
        return
    _CATALOG[key] = _Catalog(table_names(con))
    try:
        yield
    finally:
        _CATALOG.pop(key, None)


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    cached = _CATALOG.get(id(con))
    return name in (cached.tables if cached is not None else table_names(con))


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of the store table `table` (main schema), in order; [] when it is absent."""
    cached = _CATALOG.get(id(con))
    if cached is not None and table in cached.columns:
        return cached.columns[table]
    cols = [str(r[0]) for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' "
        "AND database_name = current_database() ORDER BY column_index", [table]).fetchall()]
    if cached is not None:
        cached.columns[table] = cols
    return cols


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[str]:
    """`data` (an Arrow table, a dict of numpy arrays, ...) visible to SQL on `con` as the
    relation `name` for the duration of the block; yields the name."""
    con.register(name, data)
    try:
        yield name
    finally:
        con.unregister(name)


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> tuple[Any, ...]:
    """The single row of a query, with the result fully consumed.

    DuckDB 2.x refuses new work on a connection whose previous result was not consumed, so
    `fetchone()` on a multi-row result would poison the connection; this is the one helper for
    single-row queries.
    """
    rows = con.execute(sql, params or []).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected one row, got {len(rows)}: {sql}")
    return tuple(rows[0])
