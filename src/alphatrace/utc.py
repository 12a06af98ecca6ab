"""Every datetime the Python API returns is UTC-aware.

The store keeps naive TIMESTAMPs that mean UTC (the session time zone is UTC) and the JSON
output writes them with `Z`; these helpers give Python callers the same meaning, so comparing
a result with `datetime.now(UTC)` or converting it to another zone is correct.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import pyarrow as pa


def iso_z(ts: dt.datetime) -> str:
    """The one text form of an instant in every JSON alphatrace writes (CLI `--json`, HTTP,
    decision records, SDK lines): ISO 8601 in UTC, always six fractional digits, with a Z
    (`2025-03-01T08:00:00.000000Z`). Fixed width, so text order is time order. A naive
    datetime is read as UTC, as everywhere in the store."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def aware(o: Any) -> Any:
    """`o` with every datetime inside (dicts, lists, tuples) UTC-aware: a naive one is read as
    UTC, an aware one converted to UTC."""
    if isinstance(o, dt.datetime):
        return o.replace(tzinfo=dt.UTC) if o.tzinfo is None else o.astimezone(dt.UTC)
    if isinstance(o, dict):
        return {k: aware(v) for k, v in o.items()}
    if isinstance(o, list):
        return [aware(v) for v in o]
    if isinstance(o, tuple):
        return tuple(aware(v) for v in o)
    return o


def aware_table(t: pa.Table) -> pa.Table:
    """`t` with every zone-less timestamp column typed as UTC (the stored instants unchanged)."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit, tz="UTC"), f.nullable, f.metadata)
              if pa.types.is_timestamp(f.type) and f.type.tz is None else f for f in t.schema]
    schema = pa.schema(fields, metadata=t.schema.metadata)
    return t if schema.equals(t.schema) else t.cast(schema)


F = TypeVar("F", bound=Callable[..., Any])


def utc_result(fn: F) -> F:
    """Decorate an API method: its dicts, lists and Arrow tables come back UTC-aware."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        return aware_table(out) if isinstance(out, pa.Table) else aware(out)

    return wrapper  # type: ignore[return-value]
