"""Quarantine for what the collector rejects before the store's validation sees it.

The store's ingest quarantines the events it rejects itself. Two kinds never get that far: OTLP
spans that cannot become an event at all (no trace id, a time past the year 9999), and an event
on which ingest raised instead of answering (a value DuckDB cannot convert). They are recorded
here, in the same table and the same shape (path = the route's source, e.g. `<otlp>`; line =
1 + the item's position in its request; raw = its JSON), so `alphatrace quarantine` lists them
with everything else. A rejected item already recorded (same path, line and raw, i.e. an
exporter's retry) is not recorded twice, as in ingest.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from alphatrace.store import Store
from alphatrace.store.ingest import RAW_LIMIT


@dataclass(frozen=True)
class Bad:
    line: int  # 1 + the position in the request
    kind: str | None
    field: str | None
    reason: str
    raw: str


def record(store: Store, source: str, bad: list[Bad]) -> int:
    """Insert `bad` into quarantine (run it on the writer thread); returns how many were new."""
    if not bad:
        return 0
    rows = pa.table({  # noqa: F841  (read by name in the SQL)
        "path": pa.array([source] * len(bad), pa.string()),
        "line": pa.array([b.line for b in bad], pa.int64()),
        "kind": pa.array([b.kind for b in bad], pa.string()),
        "field": pa.array([b.field for b in bad], pa.string()),
        "reason": pa.array([b.reason for b in bad], pa.string()),
        "raw": pa.array([b.raw[:RAW_LIMIT] for b in bad], pa.string()),
    })
    with store.transaction() as con:
        new = con.execute(
            """INSERT INTO quarantine (file_id, path, line, kind, field, reason, raw)
               SELECT DISTINCT ON (r.line, r.raw) NULL, r.path, r.line, r.kind, r.field, r.reason,
                      r.raw
               FROM rows r
               WHERE NOT EXISTS (SELECT 1 FROM quarantine q
                                 WHERE q.path = r.path AND q.line = r.line AND q.raw = r.raw)"""
        ).fetchall()[0][0]
    return int(new)
