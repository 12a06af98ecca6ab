"""Timestamp and number parsing in SQL, checked against Python's own datetime arithmetic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.market.sqlexpr import number_sql, ts_sql

EPOCH = dt.datetime(1970, 1, 1)
instants = st.datetimes(min_value=dt.datetime(1975, 1, 1), max_value=dt.datetime(2200, 1, 1))
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: dt.timedelta(minutes=m))


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    yield c
    c.close()


def parse(con: duckdb.DuckDBPyConnection, value: object, type_: str) -> dt.datetime | None:
    expr = ts_sql("x", type_)
    assert expr is not None
    rows = con.execute(f"SELECT {expr} FROM (SELECT CAST(? AS {type_}) AS x)", [value]).fetchall()
    got: dt.datetime | None = rows[0][0]
    return got


def micros(t: dt.datetime) -> int:
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


@settings(max_examples=150)
@given(t=instants, off=offsets, sep=st.sampled_from(["T", " "]))
def test_iso_text_with_offset_is_converted_to_utc(
    con: duckdb.DuckDBPyConnection, t: dt.datetime, off: dt.timedelta, sep: str
) -> None:
    local = (t + off).replace(tzinfo=dt.timezone(off))
    assert parse(con, local.isoformat(sep=sep), "VARCHAR") == t


@settings(max_examples=100)
@given(t=instants)
def test_iso_text_without_offset_or_with_z_is_utc(con: duckdb.DuckDBPyConnection, t: dt.datetime) -> None:
    assert parse(con, t.isoformat(), "VARCHAR") == t
    assert parse(con, t.isoformat() + "Z", "VARCHAR") == t


@settings(max_examples=150)
@given(t=instants, unit=st.sampled_from(["s", "ms", "us", "ns"]), as_text=st.booleans())
def test_integer_epochs_pick_their_unit_by_magnitude(
    con: duckdb.DuckDBPyConnection, t: dt.datetime, unit: str, as_text: bool
) -> None:
    us = micros(t)
    if unit == "s":
        t, n = t.replace(microsecond=0), us // 1_000_000
    elif unit == "ms":
        t, n = t.replace(microsecond=t.microsecond // 1000 * 1000), us // 1000
    elif unit == "us":
        n = us
    else:
        n = us * 1000 + 499  # sub-µs part below half a µs rounds down
    got = parse(con, str(n), "VARCHAR") if as_text else parse(con, n, "BIGINT")
    assert got == t


@settings(max_examples=100)
@given(t=instants)
def test_fractional_epoch_seconds(con: duckdb.DuckDBPyConnection, t: dt.datetime) -> None:
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)  # ms precision survives a double
    us = micros(t)
    text = f"{us // 1_000_000}.{us % 1_000_000 // 1000:03d}"
    assert parse(con, text, "VARCHAR") == t
    assert parse(con, float(text), "DOUBLE") == t


@settings(max_examples=50)
@given(t=instants, off=offsets)
def test_typed_timestamp_columns(con: duckdb.DuckDBPyConnection, t: dt.datetime, off: dt.timedelta) -> None:
    assert parse(con, t, "TIMESTAMP") == t
    aware = (t + off).replace(tzinfo=dt.timezone(off))
    assert parse(con, aware, "TIMESTAMPTZ") == t


@settings(max_examples=100)
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=20)
       | st.sampled_from(["epoch", "infinity", "-infinity", "now", "today", "allballs"]))
def test_text_without_digits_never_parses(con: duckdb.DuckDBPyConnection, s: str) -> None:
    # No digits: neither an epoch nor a date, and never a query error.
    assert parse(con, s, "VARCHAR") is None


@pytest.mark.parametrize("s", ["2024-13-01", "yesterday", "1e400", "nan", "12:00", "2024-01-01 25:00"])
def test_unparsable_text_gives_null(con: duckdb.DuckDBPyConnection, s: str) -> None:
    assert parse(con, s, "VARCHAR") is None


@pytest.mark.parametrize(("s", "want"), [(" 1.5 ", 1.5), ("1e3", 1000.0), ("abc", None), ("", None)])
def test_numbers_from_text(con: duckdb.DuckDBPyConnection, s: str, want: float | None) -> None:
    expr = number_sql("x", "VARCHAR")
    assert con.execute(f"SELECT {expr} FROM (SELECT ?::VARCHAR AS x)", [s]).fetchall()[0][0] == want


def test_types_that_cannot_hold_a_value() -> None:
    assert ts_sql("x", "BOOLEAN") is None
    assert number_sql("x", "TIMESTAMP") is None


@pytest.mark.parametrize(
    ("s", "want"),
    [
        ("1704067200000000500", dt.datetime(2024, 1, 1, 0, 0, 0, 1)),  # ns: half a µs rounds up
        ("1704067200000000499", dt.datetime(2024, 1, 1)),
        ("1735689600015", dt.datetime(2025, 1, 1, 0, 0, 0, 15000)),  # raw Binance funding time
        ("99999999999", dt.datetime(5138, 11, 16, 9, 46, 39)),  # just below 1e11: still seconds
        ("100000000000", dt.datetime(1973, 3, 3, 9, 46, 40)),  # 1e11: milliseconds
        ("2023-01-01 00:00:00+00:00", dt.datetime(2023, 1, 1)),  # the shared funding CSVs
        ("2025-01-01", dt.datetime(2025, 1, 1)),
    ],
)
def test_known_instants(con: duckdb.DuckDBPyConnection, s: str, want: dt.datetime) -> None:
    assert parse(con, s, "VARCHAR") == want
