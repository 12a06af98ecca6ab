"""Importing market files: every format, bad rows with lines, idempotency, transactions."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphatrace.errors import InputError
from alphatrace.market.importer import import_files
from alphatrace.store import Store

T0 = dt.datetime(2024, 1, 1)
H = dt.timedelta(hours=1)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(store: Store, sql: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
    return store.con.execute(sql, params or []).fetchall()


def bars_csv(n: int, *, start: dt.datetime = T0, step: dt.timedelta = H, symbol: str = "BTCUSDT") -> str:
    lines = ["symbol,ts,open,high,low,close,volume"]
    for i in range(n):
        ts = (start + i * step).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{symbol},{ts},{100 + i},{110 + i},{90 + i},{105 + i},{i}")
    return "\n".join(lines) + "\n"


def test_bars_csv_values_and_inferred_interval(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "prices.csv", bars_csv(3, step=dt.timedelta(minutes=15)))
    r = import_files(store, [f])
    assert (r.bars, r.funding, r.symbols, r.updated, r.unchanged, r.quarantined, r.files) == (
        3, 0, ["BTCUSDT"], 0, 0, 0, 1)
    assert rows(store, "SELECT * FROM bars ORDER BY ts") == [
        ("BTCUSDT", 900, T0, 100.0, 110.0, 90.0, 105.0, 0.0),
        ("BTCUSDT", 900, T0 + dt.timedelta(minutes=15), 101.0, 111.0, 91.0, 106.0, 1.0),
        ("BTCUSDT", 900, T0 + dt.timedelta(minutes=30), 102.0, 112.0, 92.0, 107.0, 2.0),
    ]


def test_interval_is_the_median_spacing_per_symbol(store: Store, tmp_path: Path) -> None:
    # BTC: opens at 0,1,2,3,5,6 h -> spacings 1,1,1,2,1 h -> median 1 h despite the gap.
    # ETH in the same file: 4-hourly.
    lines = ["symbol,ts,open,high,low,close"]
    for h in (0, 1, 2, 3, 5, 6):
        lines.append(f"BTCUSDT,{(T0 + h * H).isoformat()},1,1,1,1")
    for h in (0, 4, 8):
        lines.append(f"ETHUSDT,{(T0 + h * H).isoformat()},2,2,2,2")
    import_files(store, [write(tmp_path / "mixed.csv", "\n".join(lines) + "\n")])
    assert rows(store, "SELECT symbol, interval_s, count(*) FROM bars GROUP BY ALL ORDER BY 1") == [
        ("BTCUSDT", 3600, 6), ("ETHUSDT", 14400, 3)]


def test_ticks_are_flat_bars_with_interval_zero(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "trades.csv", "symbol,ts,price\nbtcusdt,1704067200,42000\nBTCUSDT,1704067201500,42001.5\n")
    r = import_files(store, [f])
    assert r.bars == 2
    assert rows(store, "SELECT * FROM bars ORDER BY ts") == [
        ("BTCUSDT", 0, T0, 42000.0, 42000.0, 42000.0, 42000.0, None),
        ("BTCUSDT", 0, T0 + dt.timedelta(seconds=1.5), 42001.5, 42001.5, 42001.5, 42001.5, None),
    ]


RAW_KLINES = (
    "1735689600000,93548.80,94449.20,93460.20,94363.60,5744.609,1735693199999,539615914.46460,105263,3278.334,308056781.54270,0\n"
    "1735693200000,94363.60,94363.70,93545.00,93588.00,3991.464,1735696799999,374890760.68150,83154,1523.590,143102585.09570,0\n"
    "1735696800000,93587.90,94082.40,93561.80,94064.40,2297.236,1735700399999,215473738.81920,60996,1300.814,122017960.64470,0\n"
)
KLINE_HEADER = "openTime,open,high,low,close,volume,closeTime,quoteVolume,trades,takerBuyBase,takerBuyQuote,ignore\n"
EXPECTED_KLINES = [
    ("BTCUSDT", 3600, dt.datetime(2025, 1, 1, 0), 93548.8, 94449.2, 93460.2, 94363.6, 5744.609),
    ("BTCUSDT", 3600, dt.datetime(2025, 1, 1, 1), 94363.6, 94363.7, 93545.0, 93588.0, 3991.464),
    ("BTCUSDT", 3600, dt.datetime(2025, 1, 1, 2), 93587.9, 94082.4, 93561.8, 94064.4, 2297.236),
]


@pytest.mark.parametrize("header", [True, False])
def test_raw_binance_klines_with_or_without_header(store: Store, tmp_path: Path, header: bool) -> None:
    f = write(tmp_path / "binance_raw_BTCUSDT_1h_klines_2025.csv", (KLINE_HEADER if header else "") + RAW_KLINES)
    r = import_files(store, [f])
    assert (r.bars, r.symbols) == (3, ["BTCUSDT"])
    assert rows(store, "SELECT * FROM bars ORDER BY ts") == EXPECTED_KLINES
    assert rows(store, "SELECT format FROM market_files") == [("binance_klines",)]


def test_symbol_option_names_a_file_without_symbol(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "klines.csv", RAW_KLINES)
    with pytest.raises(InputError, match=r"klines\.csv: no symbol column .* pass --symbol"):
        import_files(store, [f])
    r = import_files(store, [f], symbol=" btcusdt ")
    assert r.symbols == ["BTCUSDT"] and r.bars == 3


def test_raw_binance_funding_rounds_jitter_to_the_hour(store: Store, tmp_path: Path) -> None:
    # Jitter as in the real file (+15 ms, +1 ms) and a time 10 ms *before* the hour.
    f = write(
        tmp_path / "binance_raw_BTCUSDT_funding_2025.csv",
        "fundingTime,fundingIntervalHours,fundingRate\n"
        "1735689600015,8,0.00010000\n1735718399990,8,-0.00002500\n1735747200001,8,0.00003\n",
    )
    r = import_files(store, [f])
    assert (r.funding, r.bars) == (3, 0)
    assert rows(store, "SELECT * FROM funding ORDER BY ts") == [
        ("BTCUSDT", dt.datetime(2025, 1, 1, 0), 0.0001, None),
        ("BTCUSDT", dt.datetime(2025, 1, 1, 8), -0.000025, None),
        ("BTCUSDT", dt.datetime(2025, 1, 1, 16), 0.00003, None),
    ]


def test_funding_file_with_mark_price_and_offsets(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "f.csv", "symbol,ts,funding_rate,mark_price\n"
              "ETHUSDT,2023-01-01 00:00:00+00:00,0.0001,1196.1\n"
              "ETHUSDT,2023-01-01T09:00:00.004+01:00,-0.0002,1195.07\n")
    import_files(store, [f])
    assert rows(store, "SELECT * FROM funding ORDER BY ts") == [
        ("ETHUSDT", dt.datetime(2023, 1, 1, 0), 0.0001, 1196.1),
        ("ETHUSDT", dt.datetime(2023, 1, 1, 8), -0.0002, 1195.07),
    ]


def test_parquet_bars_with_epoch_ms_and_text_prices(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "bars.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES ('SOLUSDT', 1704067200000, '10.5', 11.0, 10.0, 10.75), "
        "('SOLUSDT', 1704070800000, '10.75', 12.0, 10.5, 11.5)) v(symbol, ts, open, high, low, close)) "
        f"TO '{f}' (FORMAT parquet)"
    )
    con.close()
    r = import_files(store, [f])
    assert r.bars == 2
    assert rows(store, "SELECT * FROM bars ORDER BY ts") == [
        ("SOLUSDT", 3600, T0, 10.5, 11.0, 10.0, 10.75, None),
        ("SOLUSDT", 3600, T0 + H, 10.75, 12.0, 10.5, 11.5, None),
    ]


def test_gzip_semicolons_and_a_folder(store: Store, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    with gzip.open(d / "BTCUSDT_1h.csv.gz", "wt") as fh:
        fh.write(bars_csv(2).replace(",", ";"))
    write(d / "notes.md", "not market data")
    r = import_files(store, [d])
    assert (r.bars, r.files) == (2, 1)


BAD = """\
symbol,ts,open,high,low,close,volume
BTCUSDT,2024-01-01T00:00:00Z,100,110,90,105,5

BTCUSDT,2024-01-01T01:00:00Z,105,100,110,104,5
BTCUSDT,not-a-time,105,110,90,104,5
BTCUSDT,2024-01-01T02:00:00Z,-1,110,90,104,5
BTCUSDT,2024-01-01T03:00:00Z,105,110,90,nan,5
BTCUSDT,2024-01-01T04:00:00Z,105,110,90,104
,2024-01-01T05:00:00Z,105,110,90,104,5
BTCUSDT,2024-01-01T06:00:00Z,105,110,90,104,-3
BTCUSDT,2024-01-01T01:00:00Z,101,111,91,104,7
BTCUSDT,2024-01-01T07:00:00Z,105,110,90,abc,5
BTCUSDT,2024-01-01T03:00:00+01:00,106,110,90,104,5
BTCUSDT,2024-01-01T02:00:00Z,107,110,90,104,5
BTCUSDT,2024-01-01T03:00:00Z,105,110,90,104,
BTCUSDT,2024-01-01T03:00:00Z,105,110,90,104,
BTCUSDT,2024-01-01T04:00:00Z,105,110,90,104,5,9
"""


def test_bad_rows_are_reported_with_line_and_field_and_good_rows_kept(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "bad_BTCUSDT_1h.csv", BAD)
    r = import_files(store, [f])
    expected = [
        (4, "high", "high (100) is below low (110)"),
        (5, "ts", "cannot parse timestamp not-a-time (use ISO 8601 or epoch seconds/milliseconds)"),
        (6, "open", "must be > 0 (got -1)"),
        (7, "close", "must be finite (got nan)"),
        (8, "volume", "too few fields (expected 7 fields: symbol, ts, open, high, low, close, volume)"),
        (9, "symbol", "missing value"),
        (10, "volume", "must be >= 0 (got -3)"),
        (12, "close", "not a number (got abc)"),
        (13, "ts", "same symbol and ts as line 14 with different values (the later line is kept)"),
        (17, None, "too many fields (expected 7 fields: symbol, ts, open, high, low, close, volume)"),
    ]
    got = rows(store, "SELECT line, field, reason FROM quarantine ORDER BY line")
    assert got == expected
    assert rows(store, "SELECT DISTINCT kind, path FROM quarantine") == [("bars", str(f))]
    assert rows(store, "SELECT raw FROM quarantine WHERE line IN (6, 17) ORDER BY line") == [
        ("BTCUSDT,2024-01-01T02:00:00Z,-1,110,90,104,5",),
        ("BTCUSDT,2024-01-01T04:00:00Z,105,110,90,104,5,9",)]
    assert [(p["line"], p["field"], p["reason"]) for p in r.problems] == expected
    # Kept: line 2 (00:00), 11 (01:00), 14 (02:00, wins over line 13, the same instant in
    # +01:00), 15 and 16 (03:00, the same row twice: one bar, the repeat counted unchanged).
    assert rows(store, "SELECT ts, open, volume FROM bars ORDER BY ts") == [
        (T0, 100.0, 5.0), (T0 + H, 101.0, 7.0), (T0 + 2 * H, 107.0, 5.0), (T0 + 3 * H, 105.0, None)]
    assert (r.bars, r.unchanged, r.quarantined) == (4, 1, 10)


def test_blank_and_crlf_lines_keep_physical_line_numbers(store: Store, tmp_path: Path) -> None:
    text = "\r\n\r\nsymbol,ts,price\r\nBTCUSDT,2024-01-01,1\r\n\r\n   \r\nBTCUSDT,2024-01-02,0\r\n"
    f = tmp_path / "t.csv"
    f.write_bytes(text.encode())
    import_files(store, [f])
    assert rows(store, "SELECT line, field, reason FROM quarantine") == [(7, "price", "must be > 0 (got 0)")]
    assert rows(store, "SELECT lines_exact FROM market_files") == [(True,)]


def test_invalid_utf8_line_is_quarantined(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "u.csv"
    f.write_bytes(b"symbol,ts,price\nBTCUSDT,2024-01-01,1\nBTC\xff,2024-01-02,2\nBTCUSDT,2024-01-03,3\n")
    r = import_files(store, [f])
    assert r.bars == 2
    assert rows(store, "SELECT line, reason FROM quarantine") == [
        (3, "not valid UTF-8 (expected 3 fields: symbol, ts, price)")]


def test_reimport_is_idempotent_and_changes_are_counted(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "BTCUSDT_1h.csv", bars_csv(4) + "BTCUSDT,bad,1,1,1,1,1\n")
    first = import_files(store, [f])
    again = import_files(store, [f])
    assert (first.bars, first.unchanged, first.quarantined) == (4, 0, 1)
    assert (again.bars, again.updated, again.unchanged, again.quarantined) == (0, 0, 4, 1)
    assert rows(store, "SELECT count(*) FROM bars") == [(4,)]
    assert rows(store, "SELECT count(*) FROM quarantine") == [(1,)]  # not recorded twice
    # A correction: one close changed, one volume left empty (keeps the stored volume), one new bar.
    lines = bars_csv(5).splitlines()
    lines[2] = lines[2].rsplit(",", 2)[0] + ",999,"  # bar 1: close 999, volume empty
    fixed = write(tmp_path / "BTCUSDT_1h_v2.csv", "\n".join(lines) + "\n")
    r = import_files(store, [fixed])
    assert (r.bars, r.updated, r.unchanged) == (1, 1, 3)
    assert rows(store, "SELECT close, volume FROM bars WHERE ts = ?", [T0 + H]) == [(999.0, 1.0)]
    assert rows(store, "SELECT count(*) FROM bars") == [(5,)]


def test_batch_is_checked_before_anything_is_written(store: Store, tmp_path: Path) -> None:
    good = write(tmp_path / "BTCUSDT_1h.csv", bars_csv(2))
    unknown = write(tmp_path / "other.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match=r"other\.csv: line 1: no header with known columns"):
        import_files(store, [good, unknown])
    missing = write(tmp_path / "nohigh.csv", "symbol,ts,open,low,close\nBTCUSDT,2024-01-01,1,1,1\n")
    with pytest.raises(InputError, match=r"nohigh\.csv: line 1: missing required column 'high'"):
        import_files(store, [good, missing])
    with pytest.raises(InputError, match="no such file"):
        import_files(store, [good, tmp_path / "absent.csv"])
    assert rows(store, "SELECT count(*) FROM bars") == [(0,)]


def test_a_file_is_all_or_nothing(
    file_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Make the last query of the file's transaction fail, after its bars and quarantine rows
    # were written: the store must be as before.
    f = write(tmp_path / "BTCUSDT_1h.csv", bars_csv(3) + "BTCUSDT,bad,1,1,1,1,1\n")
    monkeypatch.setattr("alphatrace.market.importer.PROBLEMS_KEPT", "not a number")
    with pytest.raises(duckdb.Error):
        import_files(file_store, [f])
    for table in ("bars", "quarantine", "market_files"):
        assert rows(file_store, f"SELECT count(*) FROM {table}") == [(0,)]
    monkeypatch.undo()
    assert import_files(file_store, [f]).bars == 3


def test_single_bars_without_an_interval_hint_are_refused(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "single.csv", "symbol,ts,open,high,low,close\n"
              "BTCUSDT,2024-01-01,1,1,1,1\nETHUSDT,2024-01-01,1,1,1,1\n")
    with pytest.raises(InputError, match="cannot infer the bar interval of BTCUSDT from a single bar"):
        import_files(store, [f])
    assert rows(store, "SELECT count(*) FROM bars") == [(0,)]


def test_single_bar_interval_comes_from_the_name_or_the_store(store: Store, tmp_path: Path) -> None:
    one_bar = "symbol,ts,open,high,low,close\nBTCUSDT,2024-01-02,1,1,1,1\n"
    import_files(store, [write(tmp_path / "BTCUSDT_4h.csv", one_bar)])
    assert rows(store, "SELECT interval_s FROM bars") == [(14400,)]
    import_files(store, [write(tmp_path / "more.csv", one_bar.replace("01-02", "01-03"))])
    assert rows(store, "SELECT DISTINCT interval_s FROM bars") == [(14400,)]


def test_in_file_funding_conflict_after_rounding(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "binance_raw_ETHUSDT_funding.csv",
              "fundingTime,fundingIntervalHours,fundingRate\n1735689600015,8,0.0001\n1735689599999,8,0.0002\n")
    r = import_files(store, [f])
    assert (r.funding, r.quarantined) == (1, 1)
    assert rows(store, "SELECT funding_rate FROM funding") == [(0.0002,)]
    assert rows(store, "SELECT line, kind FROM quarantine") == [(2, "funding")]


ROW_KINDS = st.sampled_from(["good", "bad_price", "blank", "spaces", "too_many", "too_few"])


@pytest.fixture(scope="module")
def reused_store() -> Iterator[Store]:
    with Store(":memory:") as s:
        yield s


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kinds=st.lists(ROW_KINDS, min_size=1, max_size=30), crlf=st.booleans(),
       leading_blanks=st.integers(0, 2), final_newline=st.booleans())
def test_csv_line_numbers_survive_blank_and_broken_lines(
    reused_store: Store, tmp_path: Path, kinds: list[str], crlf: bool, leading_blanks: int, final_newline: bool
) -> None:
    # Expected lines computed from the text we write, independently of the importer.
    lines = [""] * leading_blanks + ["symbol,ts,price"]
    bad_lines, good = [], 0
    for i, k in enumerate(kinds):
        ts = (T0 + i * H).isoformat()
        text = {"good": f"BTCUSDT,{ts},{i + 1}", "bad_price": f"BTCUSDT,{ts},-{i + 1}",
                "blank": "", "spaces": "  ", "too_many": f"BTCUSDT,{ts},1,2",
                "too_few": "BTCUSDT"}[k]
        lines.append(text)
        if k in ("bad_price", "too_many", "too_few"):
            bad_lines.append(len(lines))
        good += k == "good"
    nl = "\r\n" if crlf else "\n"
    f = tmp_path / f"lines_{len(kinds)}_{int(crlf)}_{leading_blanks}_{int(final_newline)}.csv"
    f.write_bytes((nl.join(lines) + (nl if final_newline else "")).encode())
    store = reused_store
    store.con.execute("DELETE FROM bars")
    r = import_files(store, [f])
    assert [p["line"] for p in r.problems] == bad_lines
    assert r.bars == good
    assert rows(store, "SELECT open FROM bars ORDER BY ts") == [
        (float(i + 1),) for i, k in enumerate(kinds) if k == "good"]
