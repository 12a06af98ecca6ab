"""SQL text helpers every area shares: optional filters, literal quoting and the range checks
of the field table.

Range checks are generated here, once, for event fields (`store/validate_sql.py`) and market
columns (`market/formats.py`), so a documented range means the same thing on every path.
"""

from __future__ import annotations

import datetime as dt

from alphatrace.events.fields import TS_MAX, TS_MIN, Range, show


def filters(*terms: tuple[str, object]) -> tuple[list[str], list[object]]:
    """The optional filters of a query: each (condition with one `?`, value) whose value is not
    None, as the conditions to AND together and their parameters in the same order (a value
    of 0 or '' filters; only None leaves a filter out)."""
    kept = [(cond, value) for cond, value in terms if value is not None]
    return [c for c, _ in kept], [v for _, v in kept]


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def ts_literal(t: dt.datetime) -> str:
    """A naive-UTC datetime as an exact SQL TIMESTAMP literal."""
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{t.isoformat(sep=' ', timespec='microseconds')}'"


def num(x: float) -> str:
    """A SQL DOUBLE literal that reads back exactly (repr is the shortest exact form; quoted, so
    inf and nan read back too)."""
    return f"CAST('{float(x)!r}' AS DOUBLE)"


def range_checks(x: str, rng: Range, shown: str) -> list[tuple[str, str]]:
    """(failure condition, reason SQL) for a DOUBLE value `x` outside `rng`, in order: the lower
    bound first, in the words users already know ("must be >= 0"), then the upper bound.

    `shown` is SQL text for the value as the user wrote it, quoted in the reason.
    """
    got = f"' (got ' || {shown} || ')'"
    lo, hi = lit(show(rng.lo)), lit(show(rng.hi))
    lower = (f"{x} <= {num(rng.lo)}", f"'must be > ' || {lo} || {got}") if rng.lo_open else (
        f"{x} < {num(rng.lo)}", f"'must be >= ' || {lo} || {got}")
    upper = (f"{x} > {num(rng.hi)}", f"'out of range: must be <= ' || {hi} || {got}")
    return [lower, upper]


def ts_range_checks(x: str, shown: str) -> list[tuple[str, str]]:
    """(failure condition, reason SQL) for a TIMESTAMP (UTC) outside [TS_MIN, TS_MAX)."""
    lo, hi = TS_MIN.strftime("%Y-%m-%d"), TS_MAX.strftime("%Y-%m-%d")
    cond = f"({x} < TIMESTAMP '{lo}' OR {x} >= TIMESTAMP '{hi}')"
    return [(cond, f"'out of range: must be from {lo} to before {hi} (got ' || {shown} || ')'")]
