"""The real Binance files of ../shared/data/market: counts from its README, and the two BTC
sources agreeing where they overlap."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from alphatrace.market.importer import import_files
from alphatrace.store import Store
from tests.conftest import MARKET_DIR

RAW_KLINES = "binance_raw_BTCUSDT_1h_klines_2025_2026.csv"
RAW_FUNDING = "binance_raw_BTCUSDT_funding_2025_2026.csv"


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return store.con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Store:
    if not MARKET_DIR.is_dir():
        pytest.skip(f"shared market data not found at {MARKET_DIR}")
    store = Store(tmp_path_factory.mktemp("shared") / "all.duckdb")
    import_files(store, [MARKET_DIR])  # the folder: every file, sorted by name
    return store


def test_readme_row_counts(everything: Store) -> None:
    assert rows(everything, "SELECT symbol, interval_s, count(*), min(ts), max(ts) FROM bars "
                            "GROUP BY ALL ORDER BY 1, 2") == [
        # 1h: the 25,696 perp bars plus the raw klines after 2025-12-06 15:00 (13,848 - 8,152).
        ("BTCUSDT", 900, 102_784, dt.datetime(2023, 1, 1), dt.datetime(2025, 12, 6, 15, 45)),
        ("BTCUSDT", 3600, 25_696 + 5_696, dt.datetime(2023, 1, 1), dt.datetime(2026, 7, 31, 23)),
        ("ETHUSDT", 900, 102_784, dt.datetime(2023, 1, 1), dt.datetime(2025, 12, 6, 15, 45)),
        ("ETHUSDT", 3600, 25_696, dt.datetime(2023, 1, 1), dt.datetime(2025, 12, 6, 15)),
    ]
    # Funding: 3,212 settlements each, plus the raw BTC ones after 2025-12-06 08:00 (1,731 - 1,019).
    assert rows(everything, "SELECT symbol, count(*), count(mark_price) FROM funding GROUP BY 1 ORDER BY 1") == [
        ("BTCUSDT", 3_212 + 712, 3_212), ("ETHUSDT", 3_212, 3_212)]
    assert rows(everything, "SELECT count(*) FROM quarantine") == [(0,)]
    read = {Path(p).name: n for p, n in rows(everything, "SELECT path, rows FROM market_files")}
    assert read == {
        "binance_BTCUSDT_perp_1h.parquet": 25_696, "binance_ETHUSDT_perp_1h.parquet": 25_696,
        "binance_BTCUSDT_perp_15m.parquet": 102_784, "binance_ETHUSDT_perp_15m.parquet": 102_784,
        "binance_BTCUSDT_funding_8h.csv": 3_212, "binance_ETHUSDT_funding_8h.csv": 3_212,
        RAW_KLINES: 13_848, RAW_FUNDING: 1_731,
    }


def test_funding_settlements_are_on_the_8h_grid(everything: Store) -> None:
    # The raw file's times carry up to 16 ms of jitter; after import every settlement is at
    # 00:00, 08:00 or 16:00 exactly.
    assert rows(everything, "SELECT count(*) FROM funding WHERE minute(ts) <> 0 OR second(ts) <> 0 "
                            "OR microsecond(ts) <> 0 OR hour(ts) NOT IN (0, 8, 16)") == [(0,)]


def test_the_two_btc_sources_agree_where_they_overlap(market_dir: Path, tmp_path: Path) -> None:
    perp, raw = Store(tmp_path / "perp.duckdb"), Store(tmp_path / "raw.duckdb")
    import_files(perp, [market_dir / "binance_BTCUSDT_perp_1h.parquet",
                        market_dir / "binance_BTCUSDT_funding_8h.csv"])
    import_files(raw, [market_dir / RAW_KLINES, market_dir / RAW_FUNDING])
    assert rows(raw, "SELECT count(*) FROM bars") == [(13_848,)]
    assert rows(raw, "SELECT count(*) FROM funding") == [(1_731,)]
    perp.close()
    raw.con.execute(f"ATTACH '{tmp_path / 'perp.duckdb'}' AS perp (READ_ONLY)")
    overlap = rows(raw, """
        SELECT count(*), count(*) FILTER (WHERE a.open = b.open AND a.close = b.close),
               count(*) FILTER (WHERE a.high = b.high AND a.low = b.low AND a.volume = b.volume)
        FROM bars a JOIN perp.bars b USING (symbol, interval_s, ts)""")
    # 2025-01-01 00:00 -> 2025-12-06 15:00 hourly = 8,152 bars. Every open and close agrees;
    # two bars (2025-01-14 13:00 and 15:00) differ in volume and one of them in low as well.
    assert overlap == [(8_152, 8_152, 8_150)]
    funding = rows(raw, """
        SELECT count(*), count(*) FILTER (WHERE a.funding_rate = b.funding_rate)
        FROM funding a JOIN perp.funding b USING (symbol, ts)""")
    assert funding == [(1_019, 1_019)]
    raw.close()


def test_importing_both_sources_into_one_store(market_dir: Path, store: Store) -> None:
    import_files(store, [market_dir / "binance_BTCUSDT_perp_1h.parquet",
                         market_dir / "binance_BTCUSDT_funding_8h.csv"])
    k = import_files(store, [market_dir / RAW_KLINES])
    assert (k.bars, k.updated, k.unchanged) == (5_696, 2, 8_150)
    f = import_files(store, [market_dir / RAW_FUNDING])
    # Same rates, no mark price in the raw file: the stored mark prices are kept.
    assert (f.funding, f.updated, f.unchanged) == (712, 0, 1_019)
    assert rows(store, "SELECT count(mark_price) FROM funding") == [(3_212,)]
