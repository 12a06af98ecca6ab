"""Format detection from column names, and the normalising SQL on hand-made rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.errors import InputError
from alphatrace.market.formats import SEP, Format, detect_format, normalize_sql

# Each layout: (its columns as files spell them, expected kind, expected name).
LAYOUTS = [
    (["symbol", "ts", "open", "high", "low", "close", "volume"], "bars", "bars"),
    (["symbol", "date", "open", "high", "low", "close"], "bars", "bars"),
    (["openTime", "open", "high", "low", "close", "volume", "closeTime", "quoteVolume", "trades",
      "takerBuyBase", "takerBuyQuote", "ignore"], "bars", "binance_klines"),
    (["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
      "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"], "bars", "binance_klines"),
    (["symbol", "ts", "price"], "ticks", "ticks"),
    (["symbol", "timestamp", "price", "volume"], "ticks", "ticks"),
    (["symbol", "ts", "funding_rate", "mark_price"], "funding", "funding"),
    (["fundingTime", "fundingIntervalHours", "fundingRate"], "funding", "binance_funding"),
    (["symbol", "fundingTime", "fundingRate", "markPrice"], "funding", "binance_funding"),
    (["calc_time", "funding_interval_hours", "last_funding_rate"], "funding", "binance_funding"),
]


def respell(name: str, style: int) -> str:
    """The same column as another writer would spell it."""
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").lower().split()
    if style == 0:
        return "_".join(words)
    if style == 1:
        return words[0] + "".join(w.title() for w in words[1:])
    if style == 2:
        return "_".join(words).upper()
    return " ".join(w.title() for w in words)


@given(
    layout=st.sampled_from(LAYOUTS),
    styles=st.lists(st.integers(0, 3), min_size=12, max_size=12),
    extra=st.lists(st.sampled_from(["exchange", "note", "source_id", "n"]), unique=True, max_size=3),
    data=st.data(),
)
def test_detection_ignores_spelling_order_and_extra_columns(
    layout: tuple[list[str], str, str], styles: list[int], extra: list[str], data: st.DataObject
) -> None:
    cols, kind, name = layout
    spelled = [respell(c, s) for c, s in zip(cols, styles, strict=False)] + extra
    shuffled = data.draw(st.permutations(spelled))
    fmt = detect_format(shuffled)
    assert (fmt.kind, fmt.name) == (kind, name)
    # Every canonical column maps to a real column of the file, and no extra column is used.
    assert set(fmt.columns.values()) <= set(shuffled)
    assert not set(fmt.columns.values()) & set(extra)


@given(layout=st.sampled_from([x for x in LAYOUTS if x[1] == "bars" and x[2] == "bars"]),
       drop=st.sampled_from(["high", "low", "close"]))
def test_missing_required_column_is_named(layout: tuple[list[str], str, str], drop: str) -> None:
    cols = [c for c in layout[0] if c != drop]
    with pytest.raises(InputError, match=rf"f\.csv: line 1: missing required column '{drop}'"):
        detect_format(cols, "f.csv")


@pytest.mark.parametrize("cols", [["a", "b"], ["symbol", "ts", "bid", "ask"], []])
def test_unknown_layout_is_an_input_error(cols: list[str]) -> None:
    with pytest.raises(InputError, match="cannot tell the format"):
        detect_format(cols, "f.csv")


def test_bar_and_funding_columns_together_are_refused() -> None:
    with pytest.raises(InputError, match="both bar and funding"):
        detect_format(["symbol", "ts", "open", "high", "low", "close", "funding_rate"])


def run(fmt: Format, rows: Sequence[tuple[object, ...]], names: list[str], types: list[str],
        default_symbol: str | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f'"{n}" {t}' for n, t in zip(names, types, strict=True))
    con.execute(f"CREATE TABLE src (__line BIGINT, {cols})")
    con.executemany(f"INSERT INTO src VALUES ({', '.join('?' * (len(names) + 1))})", rows)
    sql = normalize_sql(fmt, dict(zip(names, types, strict=True)), "src", default_symbol)
    return con.execute(sql + " ORDER BY line").fetchall()


def test_ticks_become_flat_bars_and_funding_rounds_to_the_hour() -> None:
    ticks = detect_format(["symbol", "ts", "price"])
    out = run(ticks, [(2, "btcusdt", "2024-01-01T00:00:01Z", "42000.5")],
              ["symbol", "ts", "price"], ["VARCHAR"] * 3)
    assert [r[:8] for r in out] == [(2, "BTCUSDT", dt.datetime(2024, 1, 1, 0, 0, 1),
                                    42000.5, 42000.5, 42000.5, 42000.5, None)]
    fund = detect_format(["fundingTime", "fundingIntervalHours", "fundingRate"])
    # 1735718399990 is 10 ms before 08:00; 1735747200016 is 16 ms after 16:00 (2025-01-01).
    out = run(fund, [(2, 1735718399990, 8, 0.0001), (3, 1735747200016, 8, -0.0002)],
              ["fundingTime", "fundingIntervalHours", "fundingRate"], ["BIGINT", "BIGINT", "DOUBLE"],
              default_symbol="BTCUSDT")
    assert out == [(2, "BTCUSDT", dt.datetime(2025, 1, 1, 8), 0.0001, None, None),
                   (3, "BTCUSDT", dt.datetime(2025, 1, 1, 16), -0.0002, None, None)]


def test_each_problem_names_the_files_own_column() -> None:
    fmt = detect_format(["Symbol", "Date", "Open", "High", "Low", "Close", "Volume"])
    names = ["Symbol", "Date", "Open", "High", "Low", "Close", "Volume"]
    good = ("ETHUSDT", "2024-01-01", "10", "12", "9", "11", "5")
    rows = [
        (2, *good),
        (3, "ETHUSDT", "2024-01-01", "0", "12", "9", "11", "5"),
        (4, "ETHUSDT", "2024-01-01", "10", "8", "9", "11", "5"),
        (5, "ETHUSDT", "soon", "10", "12", "9", "11", "5"),
        (6, "ETHUSDT", "2024-01-01", "10", "12", "9", "inf", "5"),
        (7, "ETHUSDT", "2024-01-01", "10", "12", "9", "11", "-1"),
        (8, "ETHUSDT", "2024-01-01", "10", "12", "9", "11", None),
        (9, "  ", "2024-01-01", "10", "12", "9", "11", "5"),
        (10, "ETHUSDT", "2024-01-01", "10", "12", None, "11", "5"),
    ]
    out = run(fmt, rows, names, ["VARCHAR"] * 7)
    errs = {r[0]: tuple(str(r[-1]).split(SEP)) if r[-1] else None for r in out}
    assert errs == {
        2: None,
        3: ("Open", "must be > 0 (got 0)"),
        4: ("High", "high (8) is below low (9)"),
        5: ("Date", "cannot parse timestamp soon (use ISO 8601 or epoch seconds/milliseconds)"),
        6: ("Close", "must be finite (got inf)"),
        7: ("Volume", "must be >= 0 (got -1)"),
        8: None,  # volume is optional
        9: ("Symbol", "missing value"),
        10: ("Low", "missing value"),
    }


def test_a_file_without_symbol_needs_a_default() -> None:
    fmt = detect_format(["ts", "price"])
    with pytest.raises(InputError, match="--symbol"):
        normalize_sql(fmt, {"ts": "VARCHAR", "price": "VARCHAR"}, "src", None)


def test_a_column_type_that_cannot_hold_a_price_is_refused() -> None:
    fmt = detect_format(["symbol", "ts", "price"])
    with pytest.raises(InputError, match="'price' has type DATE"):
        normalize_sql(fmt, {"symbol": "VARCHAR", "ts": "VARCHAR", "price": "DATE"}, "src", None)
