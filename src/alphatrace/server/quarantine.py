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

from alphatrace.store import Store
from alphatrace.store.ingest import RAW_LIMIT, insert_quarantine


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
    rows = [(None, source, b.line, b.kind, b.field, b.reason, b.raw[:RAW_LIMIT]) for b in bad]
    with store.transaction() as con:
        return insert_quarantine(con, rows)
