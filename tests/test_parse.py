"""`alphatrace.parse`: the one time and duration grammar, and its agreement with event ingest."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from alphatrace.errors import InputError
from alphatrace.parse import ParseError, parse_duration, parse_since, parse_time
from alphatrace.store.validate_sql import _horizon_text

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
BLANKS = st.text(alphabet=" \t\n\r\f", max_size=3)


# --- durations ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("8h", 28_800), ("90m", 5_400), ("30s", 30), ("2d", 172_800), ("1w", 604_800),
    ("1.5h", 5_400), (" 45 ", 45), ("4H", 14_400), ("2 W", 1_209_600), ("\t8h\n", 28_800),
    ("1e3", 1_000), ("+5", 5), (".5", 0.5), ("3600", 3_600), (7_000, 7_000), (0.5, 0.5),
])
def test_duration_forms(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "h", "8x", "-1h", "0", "0s", 0, -3, True, "1e3h", "3 days",
                                 "8hh", "1_000", "inf", "nan", "1e400", ".5h", "5.h", "\v5"])
def test_bad_durations_name_the_value_and_the_forms(bad: object) -> None:
    with pytest.raises(ParseError) as e:
        parse_duration(bad, name="horizon")  # type: ignore[arg-type]
    msg = str(e.value)
    assert msg.startswith(f"horizon {bad!r}: ") and '"8h", "90m"' in msg
    assert isinstance(e.value, InputError) and isinstance(e.value, ValueError)


@given(st.integers(1, 10**6), st.sampled_from(sorted(UNITS)), st.booleans(), BLANKS, BLANKS,
       BLANKS)
def test_duration_round_trip_any_case_and_blanks(n: int, unit: str, upper: bool, a: str, b: str,
                                                 c: str) -> None:
    text = f"{a}{n}{b}{unit.upper() if upper else unit}{c}"
    assert parse_duration(text) == dt.timedelta(seconds=n * UNITS[unit])


@given(st.timedeltas(min_value=dt.timedelta(microseconds=1), max_value=dt.timedelta(days=10_000)))
def test_duration_round_trip_of_seconds_text(d: dt.timedelta) -> None:
    """Float seconds keep every microsecond below 2**33 s (~272 years: the spacing of floats
    there is 2**-20 s, under a microsecond); repr is exact."""
    assert parse_duration(repr(d.total_seconds())) == d
    assert parse_duration(f" {d.total_seconds():.6f} S ") == d


# --- agreement with event ingest's SQL ---------------------------------------------------------

_CON = duckdb.connect()
_SQL = f"SELECT {_horizon_text('$1')}"


def _ingest_seconds(text: str) -> float | None:
    """What event ingest reads from a `horizon` string (before its range check)."""
    v = _CON.execute(_SQL, [text]).fetchone()
    return None if v is None else v[0]


def _parsed(text: str) -> dt.timedelta | None:
    try:
        return parse_duration(text)
    except ParseError:
        return None


def _ingest_accepts(v: float | None) -> dt.timedelta | None:
    """A value ingest reads is a duration when positive, finite and a timedelta (≥ 1 µs)."""
    if v is None or not math.isfinite(v) or not 0 < v < dt.timedelta.max.total_seconds():
        return None
    return dt.timedelta(seconds=v) or None


# Strings of the grammar's own characters, lower-case units: valid forms and near misses alike.
# Left out on purpose: "_", "inf"/"nan" letters and "\v", which DuckDB's DOUBLE cast (ingest's
# fallback for numeric text) also reads ("1_000", "inf", "\v5"), though they are not in the
# grammar; parse_duration rejects them.
_CHARS = st.text(alphabet="0123456789.eE+- \t\nsmhdwx", max_size=8)
_VALID = st.builds(lambda a, n, f, b, u, c: f"{a}{n}{f}{b}{u}{c}", BLANKS,
                   st.integers(0, 10**9).map(str), st.sampled_from(["", ".0", ".25", ".5"]),
                   BLANKS, st.sampled_from(["", *UNITS]), BLANKS)


@given(st.one_of(_CHARS, _VALID))
@example('8h')
@example('0')
@example('-5')
@example('1e3')
@example('5.')
@example('+.5')
@example('1e400')
@example('1.e3')
@example('5 e3')
@example('1e-9')
@example('')
def test_parse_duration_agrees_with_ingest_sql(text: str) -> None:
    assert _parsed(text) == _ingest_accepts(_ingest_seconds(text))


def test_ingest_reads_upper_case_units_like_parse_duration() -> None:
    assert _ingest_accepts(_ingest_seconds("8H")) == parse_duration("8H")


# --- times -------------------------------------------------------------------------------------

NOW = dt.datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(("text", "want"), [
    ("2025-01-31", dt.datetime(2025, 1, 31, tzinfo=UTC)),
    ("2025-01-31T08:00:00", dt.datetime(2025, 1, 31, 8, tzinfo=UTC)),
    ("2025-01-31T08:00:00Z", dt.datetime(2025, 1, 31, 8, tzinfo=UTC)),
    ("2025-01-31t08:00:00z", dt.datetime(2025, 1, 31, 8, tzinfo=UTC)),
    ("2025-01-31 08:00:00+02:00", dt.datetime(2025, 1, 31, 6, tzinfo=UTC)),
    (" 1700000000 ", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("1700000000000", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("1700000000.25", dt.datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC)),
    ("7d", dt.datetime(2025, 2, 22, 12, tzinfo=UTC)),
    ("12H", dt.datetime(2025, 3, 1, tzinfo=UTC)),
    (" 90 m", dt.datetime(2025, 3, 1, 10, 30, tzinfo=UTC)),
    (1_700_000_000, dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    (dt.date(2025, 1, 2), dt.datetime(2025, 1, 2, tzinfo=UTC)),
    (dt.datetime(2025, 1, 2, 3), dt.datetime(2025, 1, 2, 3, tzinfo=UTC)),
])
def test_time_forms(text: str | float | dt.date, want: dt.datetime) -> None:
    got = parse_time(text, now=NOW)
    assert got == want and got.tzinfo is UTC


@pytest.mark.parametrize(("bad", "problem"), [
    ("yesterday", "not a time"), ("", "not a time"), ("-7d", "not a time"),
    ("1e14", "epoch time out of range"), ("100000000000000", "epoch time out of range"),
    ("-99999999999", "outside the years"), ("2025-13-01", "not a time"),
])
def test_bad_times_name_the_value_and_the_forms(bad: str, problem: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_time(bad, name="--since")
    msg = str(e.value)
    assert msg.startswith(f"--since {bad!r}: {problem}") and "epoch seconds or milliseconds" in msg


def test_seconds_milliseconds_boundary() -> None:
    """Epoch 100,000,000 s is 1973-03-03T09:46:40Z; 1e11 is read as that many milliseconds,
    just below it as seconds (year 5138)."""
    assert parse_time("100000000000") == dt.datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)
    assert parse_time("99999999999") == EPOCH + dt.timedelta(seconds=99_999_999_999)
    assert parse_time("99999999999").year == 5138


@given(st.integers(-62_135_596_800, 10**11 - 1))
def test_epoch_seconds_round_trip(s: int) -> None:
    assert parse_time(str(s)) == EPOCH + dt.timedelta(seconds=s)


@given(st.one_of(st.integers(10**11, 10**14 - 1), st.integers(-62_135_596_800_000, -10**11)))
def test_epoch_milliseconds_round_trip(ms: int) -> None:
    assert parse_time(str(ms)) == EPOCH + dt.timedelta(milliseconds=ms)


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                                               dt.timezone(dt.timedelta(hours=-8))])))
def test_iso_round_trip(t: dt.datetime) -> None:
    assert parse_time(t.isoformat()) == t
    assert parse_time(t.replace(tzinfo=None).isoformat()) == t.replace(tzinfo=UTC)


@given(st.integers(1, 10**5), st.sampled_from(sorted(UNITS)), st.booleans(), BLANKS, BLANKS)
def test_span_back_from_now(n: int, unit: str, upper: bool, a: str, b: str) -> None:
    text = f"{a}{n}{unit.upper() if upper else unit}{b}"
    assert parse_time(text, now=NOW) == NOW - dt.timedelta(seconds=n * UNITS[unit])
    assert parse_time(text, now=NOW.replace(tzinfo=None)) == NOW - parse_duration(text)


def test_since_is_naive_utc_for_the_store() -> None:
    assert parse_since(None) is None
    assert parse_since("2025-01-31T08:00:00+02:00") == dt.datetime(2025, 1, 31, 6)
    with pytest.raises(ParseError, match=r"^--before 'soon'"):
        parse_since("soon", name="--before")
