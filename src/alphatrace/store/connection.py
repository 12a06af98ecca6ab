"""The one place that opens DuckDB: UTC session, migrations applied, transactions scoped.

DuckDB allows one writing process per file; a second writer gets a clear StoreError that says
to go through the collector or spool files instead of a lock traceback.

A store file is attached to an in-memory DuckDB instance with row groups of `ROW_GROUP_ROWS`
rows, not opened directly (which allows only DuckDB's 122,880). Why: a checkpoint rewrites
each table's last, partly filled row group whole, and a checkpoint stalls every insert while it
runs (DuckDB 2.0.1), so under the collector's stream of small rounds its cost is the
collector's tail. With 122,880-row groups a checkpoint of 16 MB of new rows took 70–900 ms
depending on how full those groups were (bench/RESULTS.md, 2026-12-05). With 16,384 it still
followed a sawtooth once the live pipeline wrote beside ingest: the alpha, legs and ledger
tables each gain ~10,700 rows per 16 MB of WAL, their partial groups fill in step, and every
third checkpoint took 180–290 ms against 60–75 ms (in process); at 20,000 events/s the
collector's p99 was 270–363 ms. With 4,096 a checkpoint rewrites at most 4,096 old rows a
table: 40–57 ms in process, none higher, and that p99 118–140 ms in five runs. 8,192 was not
enough (checkpoints 51–137 ms, p99 143–296 ms). The cost (bench/RESULTS.md, 2026-12-06): a
store filled by the collector's rounds takes ~65% more disk (more, smaller segments; a store
loaded in bulk does not), and a 1M-run live pass is 5–10% slower. Every connection on the store
therefore comes from `cursor_on`, which also makes the store its default database; the
instances open in this process are shared (`_Instances`), as DuckDB shares its own per file.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from alphatrace.config import resolve_db_path
from alphatrace.errors import StoreError
from alphatrace.store.migrations import migrate

log = logging.getLogger("alphatrace.store")

# Store files this process serves (`alphatrace serve`): their instance's settings belong to the
# server (store/memory_budget.py). A command the server runs for the CLI (`server/cli_routes.py`)
# opens its store again in this process and shares that instance (`_Instances`).
SERVED: set[Path] = set()


# Rows per row group of every store file (DuckDB's default is 122,880): see the module docstring.
# A multiple of DuckDB's vector size (2,048).
ROW_GROUP_ROWS = 4_096
_ALIAS = "store"  # the attached file's name in its instance: every connection's default database


def _session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con` with the store as its default database and UTC as its time zone: both are
    per connection in DuckDB, so every connection on a store is set up here. An in-memory
    store (":memory:", or a caller's own connection) has no attached file to use."""
    with suppress(duckdb.CatalogException):
        con.execute(f"USE {_ALIAS}")
    con.execute("SET TimeZone = 'UTC'")
    return con


def cursor_on(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A connection of its own on `con`'s database (its own transactions, usable from another
    thread), set up as every store connection is (`_session`): the one way to get one."""
    return _session(con.cursor())


class _Instances:
    """The DuckDB instances this process holds store files in, one per file, shared by every
    `Store` of that file (DuckDB refuses a second instance on a file, even in one process), and
    closed with the last of them, which releases the file's lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Path, tuple[duckdb.DuckDBPyConnection, bool, int]] = {}

    def connect(self, path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A connection of its own on `path`'s instance, attaching the file if none holds it.
        An instance opened for writing also serves read-only opens; one opened read-only
        cannot serve writes."""
        key = path.resolve()
        with self._lock:
            held = self._open.get(key)
            if held is not None:
                root, ro, n = held
                if ro and not read_only:
                    raise StoreError(f"{path} is open read-only in this process; close it first")
                self._open[key] = (root, ro, n + 1)
                return cursor_on(root)
            root = duckdb.connect()
            quoted = str(path).replace("'", "''")
            mode = ", READ_ONLY" if read_only else ""
            try:
                root.execute(f"ATTACH '{quoted}' AS {_ALIAS} (ROW_GROUP_SIZE {ROW_GROUP_ROWS}{mode})")
            except BaseException:
                root.close()
                raise
            self._open[key] = (root, read_only, 1)
            return cursor_on(root)

    def release(self, path: Path) -> None:
        key = path.resolve()
        with self._lock:
            held = self._open.get(key)
            if held is None:
                return
            root, ro, n = held
            if n > 1:
                self._open[key] = (root, ro, n - 1)
                return
            del self._open[key]
            root.close()


_INSTANCES = _Instances()


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
        self._attached = False  # holds a share of an `_INSTANCES` instance (released by close)
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
        try:
            if self.path is None:
                self.con = _session(duckdb.connect(target))
            else:
                self.con = _INSTANCES.connect(self.path, read_only=read_only)
                self._attached = True
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
            forget_kept_views(self.con)
            self.con.execute("ROLLBACK")
            raise
        self._in_transaction = False
        try:
            self.con.execute("COMMIT")
        except BaseException:  # DuckDB rolled it back
            self._on_commit.clear()
            forget_kept_views(self.con)
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

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own on this store: `cursor_on(self.con)`."""
        return cursor_on(self.con)

    def close(self) -> None:
        self.con.close()
        if self._attached and self.path is not None:
            self._attached = False
            _INSTANCES.release(self.path)

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


class Catalog:
    """The store tables, read once, and each table's columns, read on first need."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.tables = table_names(con)
        self.columns: dict[str, list[str]] = {}


# Connections (by id) inside a `catalog_cached` block, with what was read of their catalog.
_CATALOG: dict[int, Catalog] = {}


@contextmanager
def catalog_cached(con: duckdb.DuckDBPyConnection,
                   kept: Catalog | None = None) -> Iterator[None]:
    """For the block, `has_table` and `table_columns` on `con` answer from one read of the
    catalog instead of a catalog query per call (a live pipeline pass asked 15-20 times).
    Only for work that creates, drops or alters no store table (temporary tables do not
    count); nested blocks share the outer read. `kept`: a read of `con`'s catalog made
    earlier, for a caller that knows no store table changed since (the live pipeline,
    server/pipeline.py `Pipeline.catalog`)."""
    key = id(con)
    if key in _CATALOG:
        yield
        return
    _CATALOG[key] = kept if kept is not None and kept.con is con else Catalog(con)
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


# Up to this many rows, `registered` lends Arrow data through a view kept on the connection.
FED_ROWS = 8_192


class _Feed:
    """What a kept view scans (as an Arrow stream): the data of the `registered` block that
    uses its name now."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        if self.data is None:
            raise StoreError("a registered relation was read outside its `registered` block")
        return self.data.__arrow_c_stream__(requested_schema)


# Per connection, the names `registered` keeps a view for, with their feeds. A rolled-back
# transaction takes the views it created with it: `forget_kept_views`.
_KEPT: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, dict[str, _Feed]] = \
    weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def forget_kept_views(con: duckdb.DuckDBPyConnection) -> None:
    """After a rollback on `con`: the kept views may be gone, so each is registered again on
    its next use (registering replaces a view that is still there)."""
    with _KEPT_LOCK:
        _KEPT.pop(con, None)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[str]:
    """`data` (an Arrow table, a dict of numpy arrays, ...) visible to SQL on `con` as the
    relation `name` for the duration of the block; yields the name.

    DuckDB's `register` and `unregister` create and drop a view, ~1 ms a pair, and a live
    pass made 13 of them (bench/RESULTS.md, "#14's 1M round: registered Arrow tables kept
    as views"). So an Arrow table of up to `FED_ROWS` rows is lent through a view kept for
    `name` on `con`, created on first use, whose feed is swapped in and out (a nested block
    of the same name gets its outer data back). Larger data is registered as DuckDB takes
    it, which also tells the planner its row count; a kept view is a stream, planned as one
    row, which only a small table can afford."""
    rows = getattr(data, "num_rows", None)
    if not isinstance(rows, int) or rows > FED_ROWS or not hasattr(data, "__arrow_c_stream__"):
        with _KEPT_LOCK:
            kept = _KEPT.get(con)
        if kept is not None:
            kept.pop(name, None)  # this replaces and then drops its view
        con.register(name, data)
        try:
            yield name
        finally:
            con.unregister(name)
        return
    with _KEPT_LOCK:
        kept = _KEPT.setdefault(con, {})
    feed, before = kept.get(name), None
    if feed is None:
        feed = _Feed(data)
        con.register(name, feed)
        kept[name] = feed
    else:
        before, feed.data = feed.data, data
    try:
        yield name
    finally:
        feed.data = before


def one(con: duckdb.DuckDBPyConnection, sql: str | duckdb.Statement,
        params: list[object] | None = None) -> tuple[Any, ...]:
    """The single row of a query, with the result fully consumed.

    DuckDB 2.x refuses new work on a connection whose previous result was not consumed, so
    `fetchone()` on a multi-row result would poison the connection; this is the one helper for
    single-row queries.
    """
    rows = con.execute(sql, params or []).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected one row, got {len(rows)}: {getattr(sql, 'query', sql)}")
    return tuple(rows[0])
