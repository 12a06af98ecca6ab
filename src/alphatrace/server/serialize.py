"""Store rows as JSON-ready values: timestamps as fixed-width ISO 8601 UTC
(`2025-03-01T08:00:00.000000Z`, so text order is time order), JSON columns parsed, non-finite
floats as null (they are not JSON)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import duckdb


def value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Decimal):
        return float(v)
    return v


def rows(cur: duckdb.DuckDBPyConnection, json_cols: tuple[str, ...] = ("attrs",)) -> list[dict[str, Any]]:
    """The fetched rows of an executed query as dicts."""
    names = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        d = {n: value(x) for n, x in zip(names, r, strict=True)}
        for c in json_cols:
            if isinstance(d.get(c), str):
                with contextlib.suppress(ValueError):
                    d[c] = json.loads(d[c])
        out.append(d)
    return out
