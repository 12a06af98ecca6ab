"""Market data for the demo tests: the shipped slice when it is there, else the same window
cut from the shared real data (skipped when neither exists)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from alphatrace.demo import shipped
from alphatrace.demo.simulate import DemoEvents, simulate

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "market"
FIRST, LAST = "2025-06-01", "2025-12-07"


def _shipped_ok() -> bool:
    d = shipped.data_dir()
    return d.is_dir() and any(p.suffix == ".parquet" for p in d.iterdir())


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of market files for `alphatrace demo --data`."""
    if _shipped_ok():
        return shipped.data_dir()
    if not SHARED.is_dir():
        pytest.skip("neither the shipped demo slice nor the shared market data is present")
    out = tmp_path_factory.mktemp("demo_data")
    con = duckdb.connect()
    for sym in ("BTCUSDT", "ETHUSDT"):
        bars = (SHARED / f"binance_{sym}_perp_1h.parquet").as_posix()
        fund = (SHARED / f"binance_{sym}_funding_8h.csv").as_posix()
        con.execute(
            f"COPY (SELECT symbol, ts, open, high, low, close, volume FROM '{bars}' "
            f"WHERE ts >= '{FIRST}' AND ts < '{LAST}' ORDER BY ts) TO '{out / (sym + '_1h.parquet')}'"
        )
        con.execute(
            f"COPY (SELECT symbol, CAST(ts AS TIMESTAMPTZ) AS ts, funding_rate, mark_price "
            f"FROM read_csv('{fund}') WHERE ts >= '{FIRST}' AND ts < '{LAST}' ORDER BY ts) "
            f"TO '{out / (sym + '_funding_8h.parquet')}'"
        )
    return out


@pytest.fixture(scope="session")
def demo_market(demo_data_dir: Path) -> tuple[pa.Table, pa.Table]:
    """(bars, funding) as Arrow, read straight from the files (not through the store)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    bars_tables, fund_tables = [], []
    for f in sorted(demo_data_dir.glob("*.parquet")):
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{f.as_posix()}'").fetchall()}
        if "funding_rate" in cols:
            fund_tables.append(con.sql(
                f"SELECT symbol, CAST(ts AS TIMESTAMP) AS ts, funding_rate, mark_price FROM '{f.as_posix()}'"
            ).to_arrow_table())
        else:
            bars_tables.append(con.sql(
                f"SELECT symbol, CAST(ts AS TIMESTAMP) AS ts, open, high, low, close FROM '{f.as_posix()}'"
            ).to_arrow_table())
    return pa.concat_tables(bars_tables), pa.concat_tables(fund_tables)


@pytest.fixture(scope="session")
def demo(demo_market: tuple[pa.Table, pa.Table]) -> DemoEvents:
    bars, funding = demo_market
    return simulate(bars, seed=7, funding=funding)


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
