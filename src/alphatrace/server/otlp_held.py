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
import math
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from alphatrace.server.otlp_runs import SpanTags
from alphatrace.server.trace_hold import HoldWrites
from alphatrace.store import Store
from alphatrace.store.ingest import EventResult
from alphatrace.store.typed_ingest import ingest_typed

_COLUMNS = ("trace_id", "span_id", "held_at", "event", "tags")
_JSON = json.JSONEncoder(separators=(",", ":"), default=str).encode
# orjson refuses (TypeError) datetimes, dataclasses and subclasses of the JSON types instead of
# writing forms of its own: those go to `json`, whose `default` writes them as before.
_OPTS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | \
    orjson.OPT_PASSTHROUGH_SUBCLASS


def _finite(v: Any) -> bool:
    """Whether `v` (JSON types) holds no non-finite float, which orjson writes as null where
    `json` writes NaN or Infinity (and reads them back)."""
    c = v.__class__
    if c is float:
        return math.isfinite(v)
    if c is dict:
        return all(_finite(x) for x in v.values())
    if c is list or c is tuple:
        return all(_finite(x) for x in v)
    return True


def _dumps(v: Any) -> str:
    """A held row's JSON text, read back by `load` with `json.loads` as `json.dumps`'s would
    be: orjson's (a held span's event is written under load, once per span: ~5 µs a span less
    than `json`'s; bench/bench_otlp_cpu.py --split) unless orjson refuses the value (ints
    beyond 64 bits, lone surrogates, keys that are not strings, `_OPTS`) or wrote a null that
    may be a non-finite float; then `json`'s, as before."""
    try:
        text = orjson.dumps(v, option=_OPTS)
    except TypeError:
        return _JSON(v)
    if b"null" in text and not _finite(v):
        return _JSON(v)
    return text.decode()


def apply(con: duckdb.DuckDBPyConnection, sides: list[Any]) -> None:
    """Apply the `HoldWrites` of `sides` (None: none) in order: rows of the spans held, then
    deletion of the released traces' rows. A plain append: the hold adds a span once
    (`TraceHold._admit`), and a row there twice would do no harm (`TraceHold.restore` holds a
    span once, a release deletes its trace's rows), so the append does not look for one (a
    join with the table cost ~1.1 ms a round of 400 spans)."""
    writes = [w for w in sides if isinstance(w, HoldWrites)]
    held = [(w.at, event, t) for w in writes for event, t in w.held]
    drop = sorted({tid for w in writes for tid in w.drop})
    if held:
        held_rows = pa.table([  # noqa: F841  (read by name in the SQL)
            [t.trace_id for _, _, t in held], [t.span_id for _, _, t in held],
            [at for at, _, _ in held], [_dumps(event) for _, event, _ in held],
            [_dumps({"root": t.root, "start": t.start, "values": t.values})
             for _, _, t in held]], names=list(_COLUMNS))
        con.execute("INSERT INTO otlp_held SELECT * FROM held_rows")
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
