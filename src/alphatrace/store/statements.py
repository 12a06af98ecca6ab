"""SQL statements parsed once per process and run many times.

Why: a collector round of a few hundred events is mostly fixed cost, and most of that cost is
DuckDB turning the validation query's text into a plan. Measured on a 512-event round
(DuckDB 2.0.1): the parser costs about as much as the binder, and `con.sql(text)` parses and
binds twice (once to describe the relation it returns, once to run it). DuckDB keeps no plan a
Python caller can reuse: an SQL `PREPARE`d statement is bound and optimised again at every
`EXECUTE` in this version, and a view or macro is bound again wherever it is read. What can be
kept is the parse: `parsed(con, sql)` returns the statement for a text, parsed on first use,
and `con.execute(statement, params)` binds, optimises and runs it once. A parsed statement
belongs to no connection, so one cache serves every store and thread of the process.

The caller passes the statement to `con.execute` itself: DuckDB finds the Arrow tables a
statement names (`FROM staged`) among the local variables of the frame that calls `execute`,
so a helper that ran the statement would hide them.
"""

from __future__ import annotations

import warnings

import duckdb
import pyarrow as pa

_PARSED: dict[str, duckdb.Statement] = {}
_LIMIT = 512  # distinct texts kept; the ingest path uses a few dozen


def parsed(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """The one statement `sql` holds, parsed on `con` the first time this text is asked for."""
    st = _PARSED.get(sql)
    if st is None:
        found = con.extract_statements(sql)
        if len(found) != 1:
            raise ValueError(f"expected one SQL statement, got {len(found)}: {sql[:80]}")
        st = found[0]
        if len(_PARSED) >= _LIMIT:  # texts built from values: keep the cache bounded
            _PARSED.clear()
        _PARSED[sql] = st
    return st


def to_arrow(con: duckdb.DuckDBPyConnection, batch_rows: int) -> pa.Table:
    """The rows of the statement `con` just ran, as Arrow record batches of `batch_rows`.

    DuckDB 2 reads such a result back through one more statement over the materialised rows
    (measured: about 3% of the validation query on a 64 MB chunk, less than the parse and bind
    `con.sql` would repeat), and warns about that copy, advising `con.sql`. The warning is
    silenced for this call site only; the filter is put back on each call, as a test runner
    resets the filters between tests.
    """
    _quiet()
    return con.to_arrow_table(batch_rows)


def query_table(con: duckdb.DuckDBPyConnection, sql: str | duckdb.Statement,
                params: object = None) -> pa.Table:
    """The rows of `sql` as an Arrow table, the statement bound once. `con.sql(text)
    .to_arrow_table()` binds it twice (module docstring): for a governance window read or a
    metrics query that is 1–3 ms a call of planning alone (measured, DuckDB 2.0.1). For
    results small beside the work that makes them: `execute` materialises the result before
    it is copied to Arrow, so a read of a whole ledger peaks at about 1.5× the memory of
    `con.sql`'s streamed conversion (5M rows, 287 MB as Arrow: 976 vs 658 MB). Tables a
    statement names must be registered (`connection.registered`): this frame is not the
    caller's, so DuckDB cannot find the caller's local Arrow tables by name."""
    con.execute(sql, params)
    return to_arrow(con, 1_000_000)  # rows a batch: `to_arrow_table`'s default


def to_arrow_batches(con: duckdb.DuckDBPyConnection, batch_rows: int) -> pa.RecordBatchReader:
    """The rows of the statement `con` just ran, one Arrow record batch of `batch_rows` at a
    time (the same copy and warning as `to_arrow`)."""
    _quiet()
    reader = con.to_arrow_reader(batch_rows)
    if reader is None:
        raise RuntimeError("the last statement returned no rows to read")
    return reader


def _quiet() -> None:
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result",
                            category=UserWarning, module=__name__)
