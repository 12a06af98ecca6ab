"""SQL expressions that turn one source column into a typed value, chosen by its DuckDB type.

CSV columns arrive as text and Parquet columns typed; both must give the same TIMESTAMP (UTC)
or DOUBLE for the same instant or number, and text that does not parse must give NULL (never a
query error), so the validation step can name the line and field instead of failing the file.

Epoch numbers use the magnitude rule of event ingest, extended to µs and ns:
|x| < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds. Every date
from 1975 to 2200 is unambiguous under it.
"""

from __future__ import annotations

from alphatrace.sql import lit

__all__ = ["lit"]  # re-exported: the market readers quote through this module

INT_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
     "UBIGINT", "UHUGEINT"}
)
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE", "REAL"})
TEXT_TYPES = frozenset({"VARCHAR", "TEXT", "STRING"})
TS_NAIVE_TYPES = frozenset(
    {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATETIME", "DATE"}
)
TS_TZ_TYPES = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMPTZ_NS", "TIMESTAMP_NS WITH TIME ZONE"})

_INT_RE = "^[+-]?[0-9]+$"
_DEC_RE = "^[+-]?[0-9]{1,20}[.][0-9]{0,9}$"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _base(type_: str) -> str:
    t = type_.upper()
    return "DECIMAL" if t.startswith("DECIMAL") or t.startswith("NUMERIC") else t


def is_numeric_type(type_: str) -> bool:
    t = _base(type_)
    return t in INT_TYPES or t in FLOAT_TYPES or t == "DECIMAL"


def epoch_int_sql(x: str) -> str:
    """TIMESTAMP from a BIGINT epoch in s/ms/µs/ns (exact integer arithmetic; ns rounds half up)."""
    return (
        f"try(CASE WHEN abs({x}) < 100000000000 THEN make_timestamp({x} * 1000000) "
        f"WHEN abs({x}) < 100000000000000 THEN make_timestamp({x} * 1000) "
        f"WHEN abs({x}) < 100000000000000000 THEN make_timestamp({x}) "
        f"ELSE make_timestamp(CASE WHEN {x} >= 0 THEN ({x} + 500) // 1000 "
        f"ELSE -((-{x} + 500) // 1000) END) END)"
    )


def epoch_decimal_sql(d: str) -> str:
    """TIMESTAMP from a DECIMAL(38, 9) epoch, rounded to the µs; exact for decimal text."""
    return (
        f"try(CASE WHEN abs({d}) < 1e11 THEN make_timestamp(CAST(round({d} * 1000000) AS BIGINT)) "
        f"WHEN abs({d}) < 1e14 THEN make_timestamp(CAST(round({d} * 1000) AS BIGINT)) "
        f"WHEN abs({d}) < 1e17 THEN make_timestamp(CAST(round({d}) AS BIGINT)) "
        f"ELSE make_timestamp(CAST(round({d} / 1000) AS BIGINT)) END)"
    )


def epoch_float_sql(x: str) -> str:
    """TIMESTAMP from a DOUBLE epoch (fractional seconds allowed), rounded to the µs.

    The double goes through its shortest text form to DECIMAL, then is scaled exactly:
    `4323283200.237` * 1e6 in floating point (or DuckDB's direct DOUBLE -> DECIMAL cast)
    would give ...237001 µs.
    """
    d = f"coalesce(TRY_CAST(CAST({x} AS VARCHAR) AS DECIMAL(38, 9)), CAST({x} AS DECIMAL(38, 9)))"
    return f"(CASE WHEN isfinite({x}) AND abs({x}) < 1e27 THEN {epoch_decimal_sql(d)} END)"


def text_ts_sql(s: str) -> str:
    """TIMESTAMP from text: an integer or decimal epoch, else ISO 8601 (UTC when no offset).

    ISO text must start with a date (YYYY-MM-DD): DuckDB would also accept words such as
    `epoch` or `infinity`, which are not times a market file means.
    """
    t = f"trim({s})"
    return (
        f"(CASE WHEN regexp_full_match({t}, '{_INT_RE}') "
        f"THEN {epoch_int_sql(f'TRY_CAST({t} AS BIGINT)')} "
        f"WHEN regexp_full_match({t}, '{_DEC_RE}') "
        f"THEN {epoch_decimal_sql(f'TRY_CAST({t} AS DECIMAL(38, 9))')} "
        f"WHEN TRY_CAST({t} AS DOUBLE) IS NOT NULL "
        f"THEN {epoch_float_sql(f'TRY_CAST({t} AS DOUBLE)')} "
        f"WHEN regexp_matches({t}, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
        f"THEN try(timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ))) END)"
    )


def ts_sql(col: str, type_: str) -> str | None:
    """TIMESTAMP (UTC) expression for a column of this type; None if the type cannot be a time."""
    t = _base(type_)
    if t in TS_TZ_TYPES:
        return f"timezone('UTC', {col})"
    if t in TS_NAIVE_TYPES:
        return f"CAST({col} AS TIMESTAMP)"
    if t in INT_TYPES:
        return epoch_int_sql(f"TRY_CAST({col} AS BIGINT)")
    if t in FLOAT_TYPES or t == "DECIMAL":
        return epoch_float_sql(f"CAST({col} AS DOUBLE)")
    if t in TEXT_TYPES:
        return text_ts_sql(col)
    return None


def is_text_type(type_: str) -> bool:
    return _base(type_) in TEXT_TYPES


def number_sql(col: str, type_: str) -> str | None:
    """DOUBLE expression for a column of this type; None if the type cannot be a number."""
    if is_numeric_type(type_):
        return f"CAST({col} AS DOUBLE)"
    if _base(type_) in TEXT_TYPES:
        return f"TRY_CAST(trim({col}) AS DOUBLE)"
    return None


def text_sql(col: str, type_: str) -> str:
    """The value as the user wrote it (for messages), NULL stays NULL."""
    if _base(type_) in TEXT_TYPES:
        return col
    return f"CAST({col} AS VARCHAR)"
