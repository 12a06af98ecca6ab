"""File-name and column-name reading: symbol, interval, canonical columns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.market.names import (
    interval_from_filename,
    interval_label,
    norm_column,
    symbol_from_filename,
)


@pytest.mark.parametrize(
    ("name", "symbol", "interval"),
    [
        ("binance_raw_BTCUSDT_1h_klines_2025_2026.csv", "BTCUSDT", 3600),
        ("binance_raw_BTCUSDT_funding_2025_2026.csv", "BTCUSDT", None),
        ("binance_ETHUSDT_perp_15m.parquet", "ETHUSDT", 900),
        ("BTCUSDT-1h-2024-01.csv", "BTCUSDT", 3600),  # data.vision naming
        ("BTCUSDT-fundingRate-2024-01.csv", "BTCUSDT", None),
        ("btcusdt_4h.csv.gz", "BTCUSDT", 14400),  # lower case: known quote suffix
        ("1000PEPEUSDT-1m.csv", "1000PEPEUSDT", 60),
        ("ETHBTC_1d.csv", "ETHBTC", 86400),
        ("prices.csv", None, None),
        ("BTCUSDT_vs_ETHUSDT_1h.csv", None, 3600),  # two symbols: refuse to guess
        ("BTCUSDT_1M.csv", "BTCUSDT", None),  # a month has no fixed length
    ],
)
def test_filename_symbol_and_interval(name: str, symbol: str | None, interval: int | None) -> None:
    assert symbol_from_filename(name) == symbol
    assert interval_from_filename(name) == interval


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0, "tick"), (60, "1m"), (900, "15m"), (3600, "1h"), (28800, "8h"), (86400, "1d"),
     (604800, "1w"), (90, "90s"), (5400, "90m"), (None, None)],
)
def test_interval_label(seconds: int | None, label: str | None) -> None:
    assert interval_label(seconds) == label


@given(st.integers(min_value=1, max_value=10**7))
def test_interval_label_round_trips_through_a_file_name(seconds: int) -> None:
    label = interval_label(seconds)
    assert label is not None
    assert interval_from_filename(f"XRPUSDT_{label}.csv") == seconds


@pytest.mark.parametrize("spelling", ["openTime", "open_time", "OPEN TIME", " Open-Time "])
def test_column_spellings_share_one_key(spelling: str) -> None:
    assert norm_column(spelling) == "opentime"
