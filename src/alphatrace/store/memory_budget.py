"""A memory budget for DuckDB while one process ingests whole files into a store it owns.

Why: a file's rows stay in its transaction's local storage until COMMIT, and the blocks DuckDB
writes stay cached in its buffer pool; with the default limit (80% of RAM) nothing is evicted,
so at 3M events that cache alone was 0.3–0.4 GB of a 1.0–1.1 GB peak (bench/RESULTS.md,
2026-12-03). Under a lower limit DuckDB evicts the blocks it has written (they are on disk)
and spills what it has not yet written to its temporary folder. With 32 MB chunks: peak RSS
0.65–0.81 GB instead of 0.97–1.17 GB; the CPU cost (0 to ~8%, most into a large store) is not
resolved from the noise of a shared machine (bench/RESULTS.md).

`memory_limit` is database-wide: every connection of the DuckDB instance is capped while it
is set. So the budget is set only where the ingest is the instance's only user: a store file
this process opened itself. Not for a store `alphatrace serve` holds in this process
(connection.SERVED: the dashboard, the pipeline and the HTTP rounds share its instance), and
not for an in-memory store (nothing to evict: its data lives in the pool). Only DuckDB's
default limit is replaced, and RESET afterwards (exact; DuckDB shows a limit rounded, so setting
the shown text back would lower it a little every time): a limit the caller set is theirs, and
a default already below the budget (a small machine) is not raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import duckdb

from alphatrace.store.connection import SERVED, Store

log = logging.getLogger("alphatrace.store")

BULK_LIMIT_MB = 400  # DuckDB's memory_limit during a bulk file ingest (1 MB = 10^6 bytes)


@cache
def _default_limit() -> tuple[str, int]:
    """DuckDB's default memory_limit in this process (80% of the machine's memory, as shown
    and in bytes), read from a fresh in-memory instance."""
    with duckdb.connect() as con:
        return _limit(con)


def _limit(con: duckdb.DuckDBPyConnection) -> tuple[str, int]:
    """The instance's memory_limit as DuckDB shows it, and in bytes."""
    shown, nbytes = con.execute(
        "SELECT current_setting('memory_limit'), "
        "parse_formatted_bytes(current_setting('memory_limit'))").fetchall()[0]
    return str(shown), int(nbytes)


@contextmanager
def bulk_budget(store: Store) -> Iterator[None]:
    """DuckDB's memory_limit at BULK_LIMIT_MB for the block, when `store` is a file this
    process owns and its limit is DuckDB's default (see the module docstring); otherwise
    nothing changes."""
    if store.path is None or store.path.resolve() in SERVED:
        yield
        return
    con = store.con
    default, nbytes = _default_limit()
    if _limit(con)[0] != default or nbytes <= BULK_LIMIT_MB * 1000 * 1000:
        yield
        return
    capped = True
    try:
        con.execute(f"SET memory_limit = '{BULK_LIMIT_MB}MB'")
    except duckdb.Error as e:  # more pinned than the budget already: ingest as before
        log.info("ingest memory budget not set: %s", e)
        capped = False
    try:
        yield
    finally:
        if capped:
            con.execute("RESET memory_limit")
