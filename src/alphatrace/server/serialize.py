"""Store rows as JSON-ready values: timestamps as `alphatrace.utc.iso_z` (as every JSON output
writes them), JSON columns parsed, non-finite floats as null (they are not JSON)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import duckdb

from alphatrace.utc import iso_z


def value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return iso_z(v)
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
