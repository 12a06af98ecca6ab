"""Read one market file into a DuckDB temp table, every row tagged with its line in the file.

Parquet rows get their row number (1-based). CSV rows get their physical line number, which
DuckDB's CSV reader does not expose: it skips empty lines and rejects malformed ones (with
their line numbers, via `store_rejects`), but keeps file order. So the line of the k-th row it
returns is the k-th non-empty data line that it did not reject, computed with numpy over the
file's newline positions. If the counts ever disagree (a quoted field spanning lines), lines
fall back to row ordinals and `market_files.lines_exact` records it.

The file's head is inspected first (`inspect`), without reading the rest, so a whole batch of
files can be checked for format, columns and symbol before anything is written.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa

from alphatrace.errors import InputError
from alphatrace.market.formats import LINE, Format, detect_format
from alphatrace.market.names import (
    BINANCE_FUNDING_COLUMNS,
    BINANCE_KLINE_COLUMNS,
    KNOWN_COLUMNS,
    norm_column,
)
from alphatrace.market.sqlexpr import lit, quote_ident, text_sql
from alphatrace.store.connection import one, registered

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
MARKET_SUFFIXES = PARQUET_SUFFIXES + CSV_SUFFIXES
DELIMITERS = (",", ";", "\t", "|")
HEAD_BYTES = 64 * 1024
RAW_LIMIT = 4096


_REJECT_REASONS = {
    "MISSING COLUMNS": "too few fields",
    "TOO MANY COLUMNS": "too many fields",
    "UNQUOTED VALUE": "bad quoting",
    "INVALID ENCODING": "not valid UTF-8",
    "LINE SIZE OVER MAXIMUM": "line too long",
    "INVALID STATE": "malformed CSV",
    "CAST": "malformed value",
}


@dataclass(frozen=True)
class Layout:
    """What the head of a file says: container, column names, header, and the format."""

    path: str
    container: Literal["csv", "parquet"]
    names: tuple[str, ...]
    types: Mapping[str, str]  # source column -> DuckDB type (CSV: all VARCHAR)
    fmt: Format
    header: bool = True
    delim: str = ","
    skip: int = 0  # empty lines before the first line DuckDB should read


@dataclass
class Loaded:
    """A file in temp tables: rows (LINE, source columns) and CSV rows DuckDB rejected."""

    rows: int
    rejected: int
    lines_exact: bool


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _open_bytes(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None


def _head(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read(HEAD_BYTES)
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None


def _first_line(head: bytes) -> tuple[int, str | None]:
    """(empty lines before it, first non-empty line) of the file's head."""
    skip = 0
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        if line:
            return skip, line.decode("utf-8-sig", errors="replace")
        skip += 1
    return skip, None


def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    for i, n in enumerate(names):
        n = n.strip() or f"column{i}"
        base, k = n, 2
        while n in out or n == LINE:
            n, k = f"{base}_{k}", k + 1
        out.append(n)
    return out


def csv_layout(path: str, head: bytes) -> Layout:
    """Header or not, delimiter and column names of a CSV file from its first line."""
    skip, first = _first_line(head)
    if first is None:
        raise InputError(f"{path}: empty file")
    delim = max(DELIMITERS, key=lambda d: (first.count(d), d == ","))
    fields = next(csv.reader([first], delimiter=delim))
    if any(norm_column(f) in KNOWN_COLUMNS for f in fields):
        names = _unique(fields)
        types = dict.fromkeys(names, "VARCHAR")
        fmt = detect_format(names, path)
        return Layout(path, "csv", tuple(names), types, fmt, True, delim, skip)
    # No header line: only the raw Binance layouts are known by position.
    numeric = all(_is_number(f) for f in fields)
    if numeric and len(fields) >= 6:
        names = list(BINANCE_KLINE_COLUMNS[: len(fields)])
        names += [f"column{i}" for i in range(len(names), len(fields))]
    elif numeric and len(fields) == 3:
        names = list(BINANCE_FUNDING_COLUMNS)
    else:
        raise InputError(
            f"{path}: line {skip + 1}: no header with known columns (symbol, ts, open, ...) "
            "and not a raw Binance kline/funding row"
        )
    fmt = detect_format(names, path)
    return Layout(path, "csv", tuple(names), dict.fromkeys(names, "VARCHAR"), fmt, False, delim,
                  skip)


def parquet_layout(con: duckdb.DuckDBPyConnection, path: str) -> Layout:
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
    except duckdb.Error as e:
        raise InputError(f"{path}: not a readable Parquet file: {str(e).splitlines()[0]}") from None
    names = [str(r[0]) for r in rows]
    types = {str(r[0]): str(r[1]) for r in rows}
    return Layout(path, "parquet", tuple(names), types, detect_format(names, path))


def inspect(con: duckdb.DuckDBPyConnection, path: str) -> Layout:
    """The layout of a market file, from its head only; InputError when it is unusable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    low = p.name.lower()
    if low.endswith(PARQUET_SUFFIXES):
        return parquet_layout(con, path)
    if low.endswith(CSV_SUFFIXES):
        return csv_layout(path, _head(p))
    raise InputError(f"{path}: unknown file type (expected {', '.join(MARKET_SUFFIXES)})")


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given; folders expanded (recursively, sorted) to their market files."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(
                str(f) for f in path.rglob("*")
                if f.is_file() and f.name.lower().endswith(MARKET_SUFFIXES)
            )
        else:
            out.append(p)
    return out


def raw_sql(layout: Layout, table: str) -> str:
    """(line, raw) of the loaded rows: the fields re-joined with the file's delimiter.

    Only bad rows need it, so it is a query to join against, not a column of every row.
    """
    parts = [f"coalesce({text_sql(quote_ident(n), layout.types[n])}, '')" for n in layout.names]
    raw = f"left(concat_ws({lit(layout.delim)}, {', '.join(parts)}), {RAW_LIMIT})"
    return f"SELECT {LINE} AS line, {raw} AS raw FROM {table}"


def line_numbers(data: bytes, skip: int, header: bool) -> np.ndarray:
    """1-based numbers of the non-empty lines after the header (what DuckDB turns into rows)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(data)]))
    if starts[-1] == len(data):  # the file ends with a newline: no line after it
        starts, ends = starts[:-1], ends[:-1]
    length = ends - starts
    has_cr = np.zeros(len(starts), dtype=bool)
    nonzero = length > 0
    has_cr[nonzero] = arr[ends[nonzero] - 1] == 13
    nonempty = (length - has_cr) > 0
    numbers = np.flatnonzero(nonempty) + 1
    numbers = numbers[numbers > skip]
    return numbers[1:] if header else numbers


def load(con: duckdb.DuckDBPyConnection, layout: Layout, table: str, rejects: str) -> Loaded:
    """Create temp table `table` (LINE, source columns) and `rejects` (line, field,
    reason, raw) for rows the CSV reader could not split."""
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(f"DROP TABLE IF EXISTS {rejects}")
    if layout.container == "parquet":
        return _load_parquet(con, layout, table, rejects)
    return _load_csv(con, layout, table, rejects)


def _load_parquet(
    con: duckdb.DuckDBPyConnection, layout: Layout, table: str, rejects: str
) -> Loaded:
    names = layout.names
    cols = ", ".join(quote_ident(n) for n in names)
    try:
        con.execute(
            f"CREATE TEMP TABLE {table} AS SELECT file_row_number + 1 AS {LINE}, {cols} "
            f"FROM read_parquet(?, file_row_number = true) ORDER BY file_row_number",
            [layout.path],
        )
    except duckdb.Error as e:
        raise InputError(f"{layout.path}: cannot read Parquet: {str(e).splitlines()[0]}") from None
    con.execute(
        f"CREATE TEMP TABLE {rejects} (line BIGINT, field VARCHAR, reason VARCHAR, raw VARCHAR)"
    )
    rows = int(one(con, f"SELECT count(*) FROM {table}")[0])
    return Loaded(rows, 0, True)


def _load_csv(con: duckdb.DuckDBPyConnection, layout: Layout, table: str, rejects: str) -> Loaded:
    columns = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n in layout.names) + "}"
    rej_t, rej_s = f"{rejects}_errors", f"{rejects}_scans"
    con.execute(f"DROP TABLE IF EXISTS {rej_t}")
    con.execute(f"DROP TABLE IF EXISTS {rej_s}")
    try:
        con.execute(
            f"""CREATE TEMP TABLE {table}_src AS SELECT * FROM read_csv(?,
                columns = {columns}, header = {str(layout.header).lower()}, skip = {layout.skip},
                delim = {lit(layout.delim)}, quote = '"', escape = '"', auto_detect = false,
                store_rejects = true, rejects_table = {lit(rej_t)}, rejects_scan = {lit(rej_s)})""",
            [layout.path],
        )
    except duckdb.Error as e:
        raise InputError(f"{layout.path}: cannot read CSV: {str(e).splitlines()[0]}") from None
    con.execute(
        f"""CREATE TEMP TABLE {rejects} AS
            SELECT CAST(line AS BIGINT) AS line,
                   arg_min(column_name, column_idx) AS field,
                   arg_min(error_type, column_idx)::VARCHAR AS reason,
                   left(trim(any_value(csv_line), chr(10) || chr(13)), {RAW_LIMIT}) AS raw
            FROM {rej_t} GROUP BY line"""
    )
    con.execute(f"DROP TABLE {rej_t}")
    con.execute(f"DROP TABLE {rej_s}")
    reason_case = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in _REJECT_REASONS.items())
    con.execute(
        f"UPDATE {rejects} SET reason = CASE reason {reason_case} ELSE lower(reason) END || "
        f"' (expected {len(layout.names)} fields: {', '.join(layout.names)})'"
    )
    all_rejected = np.array(
        [r[0] for r in con.execute(f"SELECT line FROM {rejects}").fetchall()], dtype=np.int64
    )
    # A whitespace-only line is blank to a reader: it is neither a row nor worth reporting.
    con.execute(f"DELETE FROM {rejects} WHERE trim(raw, ' ' || chr(9)) = ''")
    rejected = int(one(con, f"SELECT count(*) FROM {rejects}")[0])

    rows = int(one(con, f"SELECT count(*) FROM {table}_src")[0])
    data_lines = line_numbers(_open_bytes(Path(layout.path)), layout.skip, layout.header)
    good = data_lines[~np.isin(data_lines, all_rejected)]
    exact = len(good) == rows
    if not exact:
        first = layout.skip + (2 if layout.header else 1)
        good = np.arange(first, first + rows, dtype=np.int64)
    cols = ", ".join(f"s.{quote_ident(n)}" for n in layout.names)
    with registered(con, "_mkt_lines",
                    pa.table({"__k": np.arange(rows, dtype=np.int64), "__n": good})):
        con.execute(
            f"""CREATE TEMP TABLE {table} AS
                SELECT m.__n AS {LINE}, {cols}
                FROM (SELECT row_number() OVER (ORDER BY rowid) - 1 AS __k, * FROM {table}_src) s
                JOIN _mkt_lines m USING (__k)
                ORDER BY m.__n"""
        )
    con.execute(f"DROP TABLE {table}_src")
    return Loaded(rows, rejected, exact)
