"""Market data for the demo tests: the real BTC/ETH slice shipped inside the package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from alphatrace.demo import shipped
from alphatrace.demo.simulate import DemoEvents, simulate


@pytest.fixture(scope="session")
def demo_data_dir() -> Path:
    """The market slice shipped in the package: what `alphatrace demo` imports by default."""
    d = shipped.data_dir()
    assert sorted(p.name for p in d.glob("*.parquet")) == [
        "BTCUSDT_1h.parquet", "BTCUSDT_funding_8h.parquet",
        "ETHUSDT_1h.parquet", "ETHUSDT_funding_8h.parquet",
    ]
    return d


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
