"""Events whose fields are already Python values (the collector's JSON bodies, OTLP spans)
into the store, as an Arrow table with typed columns: no JSON text to write and parse back.

Why: the JSON path (`ingest.ingest_events`) encodes each event to a line, then DuckDB parses
every known key out of it, scans it with a regular expression, counts its keys and rebuilds
its extra keys as `attrs`, in one statement whose binding and planning alone cost a collector
round 20-25 ms whatever its size (about 70% of a 500-event round, 2026-12-05). The events are
already Python values of their field types, so this entry puts the fields into typed columns,
clears the rows whose values pass the field table's rules with Arrow compute functions
(`typed_rules`: no DuckDB statement to plan each round), then stores the rows with the JSON
path's own steps (`ingest.ingest_staged`: identity, dedupe, insert, quarantine).

An event this entry cannot take as it is (not a plain dict with a `type` of telemetry, alpha
or pnl as written and a text `event_id`, a field whose Python type the JSON path would read
differently, a value `typed_rules` does not clear) goes the JSON path's way from its JSON line,
in the same call (`ingest.ingest_staged`): it is stored or quarantined with the same field and
reason as if it had come as JSON. So the store holds what `ingest_events` on the same events
gives (tests/store/test_typed_ingest.py and tests/server/test_otlp_typed.py check it with
Hypothesis), except the `bytes` of the batch's `ingested_files` row: NULL, no text was read.

`attrs`: the keys beyond the kind's fields, encoded as the JSON path encodes the event
(`encode_events.encode_lines`); the JSON path's `json_merge_patch` rewrites them in DuckDB's
spelling, so a text whose spelling DuckDB would change (`typed_rules.json_ok`) is not cleared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.events.fields import ENVELOPE, KINDS, SPECS, Field, Kind
from alphatrace.store.connection import Store
from alphatrace.store.encode_events import encode_lines
from alphatrace.store.ingest import EventResult, IngestReport, ingest_staged
from alphatrace.store.typed_rules import (
    FLEX,
    NUMBER_COL,
    bools,
    cleared,
    identity_keys,
    json_ok,
)
from alphatrace.store.validate_sql import ALL_FIELDS, FIELD_TYPES

KNOWN: dict[Kind, frozenset[str]] = {
    k: frozenset(f.name for f in SPECS[k]) | frozenset(ENVELOPE) for k in KINDS}
# the event id is checked as the text fields are (`trim(event_id) <> ''`), and is required
_CHECKED: dict[Kind, list[Field]] = {k: [Field("event_id", "string", True), *SPECS[k]]
                                     for k in KINDS}
EXACT_INT = 2**53  # integers up to this convert to a double exactly, as the JSON text does

# Per field type: the Python types taken as they are (`type(v) is T`, so no bool for a number),
# and the Arrow column type of `typed_table` (a timestamp or horizon has two: its text, and its
# number in `NUMBER_COL`).
_PY: dict[str, tuple[type, ...]] = {
    "string": (str,), "id": (str,), "direction": (str,), "timestamp": (str, int, float),
    "horizon": (str, int, float), "number": (int, float), "integer": (int,)}
_ARROW = {"string": pa.string(), "id": pa.string(), "direction": pa.string(),
          "number": pa.float64(), "integer": pa.float64()}
# the type the JSON path stages each field type's value as
_STAGED = {"string": pa.string(), "id": pa.string(), "direction": pa.string(),
           "number": pa.float64(), "integer": pa.float64(), "horizon": pa.float64(),
           "timestamp": pa.timestamp("us")}


@functools.lru_cache(maxsize=1024)
def _extra_keys(kind: Kind, keys: tuple[str, ...]) -> tuple[str, ...]:
    known = KNOWN[kind]
    return tuple(k for k in keys if k not in known)


def _beyond_exact(col: list[Any], types: set[type]) -> bool:
    """Whether an integer of `col` (of these value types, None aside) is beyond EXACT_INT. A
    column of integers alone (token counts) is bounded by its min and max, which run in C."""
    if types == {int}:
        ints = [v for v in col if v is not None]
        return max(ints) > EXACT_INT or min(ints) < -EXACT_INT
    return max(abs(v) for v in col if type(v) is int) > EXACT_INT


def typed_table(events: list[Any], kind: Kind, line_nos: list[int] | None = None) -> pa.Table:
    """The events as typed columns: line_no (`line_nos`, default 1-based positions), usable,
    event_id, one column per field of `kind` (a timestamp or horizon field: its text values,
    and its numbers in `NUMBER_COL`), attrs_text (the extra keys as JSON text, NULL without
    any).

    Usable: a plain dict whose `type` is `kind` as written, with a text `event_id`, whose
    fields have the Python types of their field type (an id given as a number, a bool for a
    number: the JSON path decides those). A row that is not usable has NULL values: it goes the
    JSON path's way instead. Checked column by column (a set of types per column): a collector
    round has thousands of events, nearly all usable."""
    fields = SPECS[kind]
    usable = [type(e) is dict for e in events]
    rows: list[dict[str, Any]] = [e if ok else {} for e, ok in zip(events, usable, strict=True)]
    ids = [e.get("event_id") for e in rows]
    for i, (e, eid) in enumerate(zip(rows, ids, strict=True)):
        if type(eid) is not str or e.get("type") != kind:
            usable[i] = False
    values: dict[str, list[Any]] = {}
    for f in fields:
        col = values[f.name] = [e.get(f.name) for e in rows]
        allowed = _PY[f.type]
        types = set(map(type, col))
        types.discard(type(None))
        if not types.issubset(allowed) or (int in types and _beyond_exact(col, types)):
            for i, v in enumerate(col):
                if v is not None and (type(v) not in allowed
                                      or (type(v) is int and abs(v) > EXACT_INT)):
                    usable[i] = False
    if not all(usable):
        gone = [i for i, ok in enumerate(usable) if not ok]
        for col in (ids, *values.values()):
            for i in gone:
                col[i] = None
        for i in gone:
            rows[i] = {}
    attrs: list[str | None] = [None] * len(rows)
    extras, where = [], []
    for i, e in enumerate(rows):
        keys = _extra_keys(kind, tuple(e))
        if keys:
            extras.append({k: e[k] for k in keys})
            where.append(i)
    if extras:
        text = encode_lines(extras).decode("utf-8")
        for i, t in zip(where, text.split("\n"), strict=False):
            attrs[i] = t
    cols: dict[str, pa.Array] = {
        "line_no": pa.array(line_nos if line_nos is not None else range(1, len(rows) + 1),
                            pa.int64()),
        "usable": pa.array(usable, pa.bool_()),
        "event_id": pa.array(ids, pa.string()),
    }
    for f in fields:
        col = values[f.name]
        if f.type in FLEX:
            cols[f.name] = pa.array([v if type(v) is str else None for v in col], pa.string())
            cols[NUMBER_COL.format(f.name)] = pa.array(
                [None if type(v) is str else v for v in col], pa.float64())
        else:
            cols[f.name] = pa.array(col, _ARROW[f.type])
    cols["attrs_text"] = pa.array(attrs, pa.string())
    return pa.table(cols)


def staged_table(typed: pa.Table, kind: Kind) -> pa.Table:
    """`validate_sql.fast_sql`'s columns (and `ingest.keyed`'s key halves) from `typed_table`'s:
    `ok` where the row is usable and `typed_rules` clears every value, the typed values and
    attrs of those rows; fields of the other kinds NULL, of the types the JSON path stages
    them as. The rows not cleared have no event id, attrs or key: the JSON path redoes them."""
    n = typed.num_rows
    attrs = typed.column("attrs_text")
    checked, values = cleared({k: typed.column(k) for k in typed.column_names}, _CHECKED[kind])
    ok = pa.array(checked & bools(typed.column("usable")) & bools(json_ok(attrs)))
    none = pa.scalar(None, pa.string())
    event_id = pc.if_else(ok, typed.column("event_id"), none)
    cols: dict[str, Any] = {"line_no": typed.column("line_no"),
                            "kind": pa.array([kind] * n, pa.string()),
                            "err": pa.nulls(n, pa.string()),
                            "bad_line": pa.nulls(n, pa.string()),
                            "event_id": event_id}
    for k in ALL_FIELDS:
        if k not in ("type", "event_id"):
            if k in values:  # timestamps and horizons, read
                cols[k] = values[k]
            elif k in KNOWN[kind]:
                cols[k] = typed.column(k)
            else:  # another kind's
                cols[k] = pa.nulls(n, _STAGED[FIELD_TYPES[k].type])
    cols["attrs"] = pc.if_else(ok, attrs, none)
    cols["ok"] = ok
    cols["key_hi"], cols["key_lo"] = identity_keys(kind, event_id.to_pylist())
    return pa.table(cols)


def stage(events: list[Any]) -> tuple[pa.Table, pa.Table]:
    """(staged rows in event order, JSON lines of the rows not cleared): what
    `ingest.ingest_staged` takes. Each kind's rows are staged apart; a row of no kind this
    entry takes is staged, not cleared, with the telemetry rows."""
    by_kind: dict[Kind, list[int]] = {}
    for i, e in enumerate(events):
        t = e.get("type") if type(e) is dict else None
        by_kind.setdefault(t if type(t) is str and t in KNOWN else "telemetry", []).append(i)
    parts = [staged_table(typed_table([events[i] for i in idx], kind, [i + 1 for i in idx]), kind)
             for kind, idx in by_kind.items()]
    staged = parts[0] if len(parts) == 1 else pa.concat_tables(parts).sort_by("line_no")
    redo = pc.filter(staged.column("line_no"), pc.invert(staged.column("ok"))).to_pylist()
    text = encode_lines([events[i - 1] for i in redo]).decode("utf-8") if redo else ""
    lines = pa.table({"line_no": pa.array(redo, pa.int64()),
                      "line": pa.array(text.split("\n")[: len(redo)], pa.large_string())})
    return staged, lines


def ingest_typed(
    store: Store,
    events: list[Any],
    source: str = "<api>",
    within: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> tuple[IngestReport, list[EventResult]]:
    """Ingest in-memory events with a status per event, as `ingest.ingest_events` does (the
    same store contents), faster for plain dicts of the event kinds. `within(con)`: more writes in
    the same transaction (the collector's held OTLP spans)."""
    if not events:
        if within is not None:
            with store.transaction() as con:
                within(con)
        return IngestReport(), []
    staged, lines = stage(events)
    return ingest_staged(store, staged, lines, source, within)
