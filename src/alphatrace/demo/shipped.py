"""The market data slice shipped inside the package, and a plain loader for it.

The demo must work from a fresh install with no network, so it reads the Parquet files under
`alphatrace/demo/data/`. The market area's importer is preferred when it exists; until then
(and for any file it would not know) the loader below recognises bars and funding by their
columns and inserts them with one SQL statement each.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from alphatrace.errors import InputError
from alphatrace.store import Store

SUFFIXES = (".parquet", ".csv")


def data_dir() -> Path:
    """The shipped slice's folder (a real folder: the package is installed unzipped)."""
    return Path(str(resources.files("alphatrace.demo").joinpath("data")))


def market_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder of market data")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
    if not files:
        raise InputError(
            f"{directory}: no Parquet or CSV market files (the demo needs 1h bars of at least one "
            "symbol; pass --data DIR to use other files)"
        )
    return files


def _reader(path: Path) -> str:
    p = str(path).replace("'", "''")
    return f"read_parquet('{p}')" if path.suffix == ".parquet" else f"read_csv('{p}')"


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    return {str(r[0]).lower() for r in con.execute(f"DESCRIBE SELECT * FROM {_reader(path)}").fetchall()}


def _utc(col: str) -> str:
    """A TIMESTAMP in UTC from a TIMESTAMP or TIMESTAMPTZ column (the session is UTC)."""
    return f"CAST({col} AS TIMESTAMP)"


def load_plain(store: Store, files: list[Path]) -> dict[str, Any]:
    """Bars (symbol, ts, open, high, low, close[, volume]) and funding (symbol, ts,
    funding_rate[, mark_price]) files into the store; anything else is an InputError."""
    con = store.con
    with store.transaction():
        for f in files:
            cols = _columns(con, f)
            src = _reader(f)
            if {"symbol", "ts", "funding_rate"} <= cols:
                mark = "mark_price" if "mark_price" in cols else "NULL"
                con.execute(
                    f"""INSERT OR REPLACE INTO funding
                        SELECT symbol, date_trunc('hour', {_utc('ts')} + INTERVAL 30 MINUTE),
                               funding_rate, {mark} FROM {src}"""
                )
            elif {"symbol", "ts", "open", "high", "low", "close"} <= cols:
                vol = "volume" if "volume" in cols else "NULL"
                con.execute(
                    f"""INSERT OR REPLACE INTO bars
                        WITH b AS (SELECT symbol, {_utc('ts')} AS ts, open, high, low, close,
                                          {vol} AS volume FROM {src}),
                             iv AS (SELECT symbol, CAST(median(epoch(ts) - epoch(prev)) AS INTEGER) AS s
                                    FROM (SELECT symbol, ts, lag(ts) OVER (PARTITION BY symbol ORDER BY ts) AS prev FROM b)
                                    WHERE prev IS NOT NULL GROUP BY symbol)
                        SELECT b.symbol, iv.s, b.ts, b.open, b.high, b.low, b.close, b.volume
                        FROM b JOIN iv USING (symbol)"""
                )
            else:
                raise InputError(
                    f"{f}: neither bars (symbol, ts, open, high, low, close) nor funding "
                    "(symbol, ts, funding_rate)"
                )
    return counts(store)


def counts(store: Store) -> dict[str, Any]:
    """The `market import` contract: {"bars", "funding", "symbols"}."""
    bars = store.con.execute("SELECT count(*) FROM bars").fetchall()[0][0]
    funding = store.con.execute("SELECT count(*) FROM funding").fetchall()[0][0]
    symbols = [r[0] for r in store.con.execute(
        "SELECT DISTINCT symbol FROM (SELECT symbol FROM bars UNION SELECT symbol FROM funding) ORDER BY 1"
    ).fetchall()]
    return {"bars": int(bars), "funding": int(funding), "symbols": symbols}


def import_market(store: Store, files: list[Path]) -> dict[str, Any]:
    """The market area's importer when present, else the plain loader."""
    try:
        from alphatrace.market.importer import import_files  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return load_plain(store, files)
    import_files(store, [str(f) for f in files])
    return counts(store)
