"""OTLP spans into the store: the writer's entry for them, and the held spans' table.

`store_spans` is the entry the writer calls for a round's OTLP requests (`Writer.submit_events`
with `entry=`): their events go in through the typed entry (store/typed_ingest.py), and in the
same transaction each request's `HoldWrites` (server/trace_hold.py) change `otlp_held`
(migration 0018): the spans newly held are added, and the held spans of the traces released
are deleted. A released span is thus either still in `otlp_held` or already stored, whenever
the collector dies; `load` reads them back at start (`otlp_late.LateWriter.start`).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.server.otlp_runs import SpanTags
from alphatrace.server.trace_hold import HoldWrites
from alphatrace.store import Store
from alphatrace.store.ingest import EventResult
from alphatrace.store.typed_ingest import ingest_typed

_COLUMNS = ("trace_id", "span_id", "held_at", "event", "tags")


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), default=str)


def apply(con: duckdb.DuckDBPyConnection, sides: list[Any]) -> None:
    """Apply the `HoldWrites` of `sides` (None: none) in order: rows of the spans held, then
    deletion of the released traces' rows. Idempotent: a span already there is not added."""
    writes = [w for w in sides if isinstance(w, HoldWrites)]
    rows = [(t.trace_id, t.span_id, w.at, _dumps(event),
             _dumps({"root": t.root, "start": t.start, "values": t.values}))
            for w in writes for event, t in w.held]
    drop = sorted({tid for w in writes for tid in w.drop})
    if rows:
        held_rows = pa.table(  # noqa: F841  (read by name in the SQL)
            list(map(list, zip(*rows, strict=True))), names=list(_COLUMNS))
        con.execute("""INSERT INTO otlp_held SELECT DISTINCT ON (trace_id, span_id) h.*
                       FROM held_rows h ANTI JOIN otlp_held o USING (trace_id, span_id)""")
    if drop:
        dropped = pa.table({"trace_id": drop})  # noqa: F841
        con.execute("DELETE FROM otlp_held WHERE trace_id IN (SELECT trace_id FROM dropped)")


def store_spans(store: Store, events: list[Any], source: str,
                sides: list[Any]) -> list[EventResult]:
    """The writer's entry for OTLP requests (`writer.Entry`): their events and hold writes,
    in one transaction."""
    _, results = ingest_typed(store, events, source,
                              within=(lambda con: apply(con, sides)) if any(sides) else None)
    return results


def save(store: Store, sides: list[Any]) -> None:
    """`apply` in a transaction of its own (when the events went by another way)."""
    with store.transaction() as con:
        apply(con, sides)


def load(store: Store) -> list[tuple[dict[str, Any], SpanTags, float]]:
    """Every held span in the store: (event, tags, epoch seconds first held), for
    `TraceHold.restore`."""
    out = []
    for tid, sid, at, event, tags in store.con.execute(
            "SELECT trace_id, span_id, held_at, event, tags FROM otlp_held "
            "ORDER BY held_at, trace_id, span_id").fetchall():
        t = json.loads(tags)
        values = tuple(tuple(v) for v in t["values"])
        out.append((json.loads(event), SpanTags(tid, sid, bool(t["root"]), int(t["start"]),
                                                values), float(at)))
    return out
