"""Regenerate the demo's shipped market data (src/alphatrace/demo/data/) from ../shared.

BTCUSDT and ETHUSDT hourly bars and 8-hourly funding, 2025-06-01 00:00 -> the end of the
shared files (2025-12-06), as zstd Parquet with naive-UTC TIMESTAMP columns. Single-threaded
and ordered by ts, so the same inputs give byte-identical files.

    python bench/make_demo_slice.py [--shared ../shared/data/market] [--out src/alphatrace/demo/data]
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "market"
OUT = REPO / "src" / "alphatrace" / "demo" / "data"
START = "2025-06-01 00:00:00"
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _copy(con: duckdb.DuckDBPyConnection, select: str, params: Sequence[object], dest: Path) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE slice AS {select}", list(params))
    n = int(con.execute("SELECT count(*) FROM slice").fetchall()[0][0])
    con.execute(
        f"COPY (SELECT * FROM slice ORDER BY ts) TO '{dest}' "
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
    )
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")
    for sym in SYMBOLS:
        bars = args.shared / f"binance_{sym}_perp_1h.parquet"
        funding = args.shared / f"binance_{sym}_funding_8h.csv"
        targets = [
            (
                "SELECT symbol, CAST(timezone('UTC', ts) AS TIMESTAMP) AS ts, open, high, low, close, volume "
                "FROM read_parquet(?) WHERE ts >= CAST(? AS TIMESTAMPTZ)",
                [str(bars), START + "+00"],
                args.out / f"{sym}_1h.parquet",
            ),
            (
                "SELECT symbol, timezone('UTC', CAST(ts AS TIMESTAMPTZ)) AS ts, "
                "CAST(funding_rate AS DOUBLE) AS funding_rate, "
                "CAST(mark_price AS DOUBLE) AS mark_price "
                "FROM read_csv(?, header = true) WHERE CAST(ts AS TIMESTAMPTZ) >= CAST(? AS TIMESTAMPTZ)",
                [str(funding), START + "+00"],
                args.out / f"{sym}_funding_8h.parquet",
            ),
        ]
        for select, params, dest in targets:
            n = _copy(con, select, params, dest)
            digest = hashlib.sha256(dest.read_bytes()).hexdigest()[:16]
            print(f"{dest.name}: {n} rows, {dest.stat().st_size:,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
