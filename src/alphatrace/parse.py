"""Times and durations as users write them: one grammar for every CLI flag and policy field.

Durations use the event field `horizon`'s grammar (README, "Event fields"): a decimal number
with an optional unit `s`, `m`, `h`, `d` or `w` (any case, blanks around and between allowed), or
a bare number of seconds (a plain decimal, optionally signed or with an exponent: what the
ingest SQL's DOUBLE cast reads). Event ingest evaluates the same grammar in SQL
(`store/validate_sql._horizon_text`); tests/test_parse.py checks that the two agree.

Times are ISO 8601 (UTC when there is no offset), a date (midnight UTC), epoch seconds or
milliseconds by event ingest's magnitude rule (|x| ≥ 1e11 is milliseconds, |x| ≥ 1e14 is out of
range), or a span back from `now` ("7d", "12h", "90m"). Numeric text is always epoch, never a
compact ISO date, as in event ingest.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from fractions import Fraction

from alphatrace.errors import InputError

# RE2's \s (the ingest SQL's) is these five; Python's would also take \v and Unicode blanks.
_WS = "[ \t\n\r\f]"
_UNIT_FORM = re.compile(rf"^{_WS}*([0-9]+(?:\.[0-9]+)?){_WS}*([smhdw]?){_WS}*$", re.IGNORECASE)
_NUMBER = re.compile(rf"^{_WS}*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?){_WS}*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_S = dt.timedelta.max.total_seconds()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

DURATION_FORMS = '"8h", "90m", "30s", "2d", "1w" (any case) or a number of seconds'
TIME_FORMS = ("ISO 8601 (2025-01-31, 2025-01-31T08:00:00Z; UTC when no offset), epoch seconds "
              "or milliseconds, or a span back from now (7d, 12h, 90m)")


class ParseError(InputError, ValueError):
    """A time or duration that does not parse: names the value and the accepted forms.

    A ValueError too, so a pydantic validator turns it into a policy error at the key's line."""

    def __init__(self, message: str, value: object, problem: str) -> None:
        self.value, self.problem = value, problem
        super().__init__(message)


def _fail(name: str | None, value: object, problem: str, forms: str) -> ParseError:
    head = f"{name} {value!r}" if name else repr(value)
    return ParseError(f"{head}: {problem} (use {forms})", value, problem)


def parse_duration(text: str | float, *, name: str | None = None) -> dt.timedelta:
    """A positive duration from `"8h"`, `"90m"`, `"30s"`, `"2d"`, `"1w"`, `" 4 H "` or seconds
    (text or a number); `name` (a flag or key) prefixes the error message."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise _fail(name, text, "not a duration", DURATION_FORMS)
    if isinstance(text, str):
        if m := _UNIT_FORM.match(text):
            seconds = float(m.group(1)) * _UNIT_S[m.group(2).lower()]
        elif m := _NUMBER.match(text):
            seconds = float(m.group(1))
        else:
            raise _fail(name, text, "not a duration", DURATION_FORMS)
    else:
        seconds = float(text)
    if not seconds > 0 or not seconds < _MAX_S:
        raise _fail(name, text, "a duration must be positive and finite", DURATION_FORMS)
    span = dt.timedelta(seconds=seconds)
    if not span:
        raise _fail(name, text, "shorter than a microsecond", DURATION_FORMS)
    return span


def _round_half_away(x: Fraction) -> int:
    """DuckDB's round(): halves away from zero (Python's round() goes to even)."""
    n = math.floor(abs(x) + Fraction(1, 2))
    return n if x >= 0 else -n


def epoch_time(x: float) -> dt.datetime:
    """Epoch seconds, or milliseconds when |x| ≥ 1e11, to the microsecond (event ingest's rule,
    `store/validate_sql._epoch`); |x| ≥ 1e14 or not finite raises ParseError. The scaling is
    exact, so every whole millisecond up to 1e14 comes back as itself."""
    if not math.isfinite(x) or abs(x) >= 1e14:
        raise _fail(None, x, "epoch time out of range (|x| < 1e14)", TIME_FORMS)
    us = _round_half_away(Fraction(x) * (1_000_000 if abs(x) < 1e11 else 1000))
    return _EPOCH + dt.timedelta(microseconds=us)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def parse_time(text: str | float | dt.datetime | dt.date, *, now: dt.datetime | None = None,
               name: str | None = None) -> dt.datetime:
    """A UTC-aware instant from ISO 8601, a date, epoch s/ms or a span back from `now` (default:
    the clock; a naive `now` is UTC). Datetimes, dates and numbers are taken as they are."""
    if isinstance(text, dt.datetime):
        return _utc(text)
    if isinstance(text, dt.date):
        return dt.datetime(text.year, text.month, text.day, tzinfo=dt.UTC)
    try:
        if isinstance(text, int | float) and not isinstance(text, bool):
            return epoch_time(float(text))
        if not isinstance(text, str):
            raise _fail(name, text, "not a time", TIME_FORMS)
        if (m := _UNIT_FORM.match(text)) and m.group(2):
            base = _utc(now) if now is not None else dt.datetime.now(dt.UTC)
            return base - parse_duration(text)
        if m := _NUMBER.match(text):
            return epoch_time(float(m.group(1)))
        iso = text.strip()
        return _utc(dt.datetime.fromisoformat(iso[:-1] + "Z" if iso.endswith("z") else iso))
    except ParseError as e:
        raise _fail(name, text, e.problem, TIME_FORMS) from None
    except OverflowError:
        raise _fail(name, text, "outside the years 1-9999", TIME_FORMS) from None
    except ValueError:
        raise _fail(name, text, "not a time", TIME_FORMS) from None


def parse_since(value: str | float | dt.datetime | dt.date | None, *,
                now: dt.datetime | None = None, name: str = "--since") -> dt.datetime | None:
    """`parse_time` for a filter bound compared with the store's naive-UTC TIMESTAMPs: None stays
    None, the instant comes back naive UTC."""
    if value is None:
        return None
    return parse_time(value, now=now, name=name).replace(tzinfo=None)
