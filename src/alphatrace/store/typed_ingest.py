"""Telemetry events whose fields are already Python values (OTLP spans) into the store, as an
Arrow table with typed columns: no JSON text to write and parse back.

Why: the JSON path (`ingest.ingest_events`) encodes each event to a line, then DuckDB parses
every known key out of it, scans it with a regular expression, counts its keys and rebuilds
its extra keys as `attrs`: about 30 µs of the 45 µs an OTLP span cost a collector round
(bench/bench_otlp.py). The OTLP mapping (`server/otlp.py`) already holds each field as a
value of its type, so this entry puts the fields into typed columns and checks them with the
same value rules (`validate_sql.typed_ok`, from the field table), then stores the rows with
the JSON path's own steps (`ingest.ingest_staged`: identity, dedupe, insert, quarantine).

An event this entry cannot take as it is (not a plain telemetry dict with an `event_id`, a
field whose Python type the JSON path would read differently, a value a rule refuses) is
validated from its JSON line by the JSON path's exact query, in the same call: it is stored
or quarantined with the same field and reason as if it had come as JSON. So the store holds
what `ingest_events` on the same events gives (tests/store/test_typed_ingest.py checks it
with Hypothesis), except the `bytes` of the batch's `ingested_files` row: NULL, no text was read.

`attrs`: the keys beyond the kind's fields, encoded as the JSON path encodes the event
(`encode_events.encode_lines`) and rewritten by DuckDB's JSON writer (`json()`), as the JSON
path's `json_merge_patch` rewrites them: numbers and escapes come out in DuckDB's spelling.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.events.fields import ENVELOPE, SPECS, Field, Kind
from alphatrace.sql import lit
from alphatrace.store.connection import Store
from alphatrace.store.encode_events import encode_lines
from alphatrace.store.ingest import STAGE_BATCH, EventResult, IngestReport, ingest_staged, keyed
from alphatrace.store.statements import parsed, to_arrow
from alphatrace.store.validate_sql import ALL_FIELDS, FIELD_TYPES, _ts_text, typed_ok

KIND: Kind = "telemetry"
FIELDS: tuple[Field, ...] = SPECS[KIND]
KNOWN = frozenset(f.name for f in FIELDS) | frozenset(ENVELOPE)
RAW = "raw {}"  # the column of a field as given (NULL: absent), beside its typed value
EXACT_INT = 2**53  # integers up to this convert to a double exactly, as the JSON text does

# Per field type: the Python types taken as they are (`type(v) is T`, so no bool for a number),
# the Arrow column type, and the SQL giving the JSON path's typed value from the column.
_PY: dict[str, tuple[type, ...]] = {
    "string": (str,), "id": (str,), "timestamp": (str,),
    "number": (int, float), "integer": (int,)}
_ARROW = {"string": pa.string(), "id": pa.string(), "timestamp": pa.string(),
          "number": pa.float64(), "integer": pa.float64()}
_SQL_TYPE = {"string": "VARCHAR", "id": "VARCHAR", "direction": "VARCHAR", "number": "DOUBLE",
             "integer": "DOUBLE", "horizon": "DOUBLE", "timestamp": "TIMESTAMP"}


def _q(name: str) -> str:
    return f'"{name}"'


def _typed_value(f: Field) -> str:
    """The staged value of field `f` from its typed column, as `validate_sql` stages it."""
    return _ts_text(_q(f.name)) if f.type == "timestamp" else _q(f.name)


def _staged_sql() -> str:
    """`validate_sql.fast_sql`'s columns from the typed table `typed` (line_no, usable,
    event_id, each telemetry field, attrs_text): `ok` when the row was usable and every value
    rule holds. Fields of the other kinds are NULL, of the type the JSON path stages them as."""
    own = {f.name: f for f in FIELDS}
    cols = []
    for k in ALL_FIELDS:
        if k in ("type", "event_id"):
            continue
        f = own.get(k)
        cols.append(f"{_q(k)}" if f is not None
                    else f"NULL::{_SQL_TYPE[FIELD_TYPES[k].type]} AS {_q(k)}")
    typed = ", ".join(f"{_typed_value(f)} AS {_q(f.name)}, {_q(f.name)} AS {_q(RAW.format(f.name))}"
                      for f in FIELDS)
    return f"""
SELECT line_no, {lit(KIND)} AS kind, NULL::VARCHAR AS err, NULL::VARCHAR AS bad_line,
       CASE WHEN ok THEN event_id END AS event_id, {', '.join(cols)},
       CASE WHEN ok THEN attrs END AS attrs, ok
FROM (
  SELECT *, coalesce(usable AND trim(event_id) <> '' AND (attrs_text IS NULL OR attrs IS NOT NULL)
                     AND {typed_ok(KIND, RAW)}, false) AS ok
  FROM (
    SELECT line_no, usable, event_id, {typed},
           attrs_text, NULLIF(CAST(try(json(attrs_text)) AS VARCHAR), '{{}}') AS attrs
    FROM typed
  )
)"""


STAGED_SQL = keyed(_staged_sql())


@functools.lru_cache(maxsize=1024)
def _extra_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in keys if k not in KNOWN)


def typed_table(events: list[Any]) -> pa.Table:
    """The events as typed columns: line_no (1-based), usable, event_id, one column per
    telemetry field, attrs_text (the extra keys as JSON text, NULL without any).

    Usable: a plain dict of kind telemetry with a text `event_id`, whose fields have the
    Python types of their field type (an id or a timestamp given as a number, a bool for a
    number: the JSON path decides those). A row that is not usable has NULL values: it is
    validated from its JSON line instead. Checked column by column (a set of types per
    column): a collector round has thousands of events, nearly all usable."""
    usable = [type(e) is dict for e in events]
    rows: list[dict[str, Any]] = [e if ok else {} for e, ok in zip(events, usable, strict=True)]
    ids = [e.get("event_id") for e in rows]
    for i, (e, eid) in enumerate(zip(rows, ids, strict=True)):
        if type(eid) is not str or e.get("type") != KIND:
            usable[i] = False
    values: dict[str, list[Any]] = {}
    for f in FIELDS:
        col = values[f.name] = [e.get(f.name) for e in rows]
        allowed = _PY[f.type]
        types = set(map(type, col))
        types.discard(type(None))
        if not types.issubset(allowed) or (
                int in types and max(abs(v) for v in col if type(v) is int) > EXACT_INT):
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
        keys = _extra_keys(tuple(e))
        if keys:
            extras.append({k: e[k] for k in keys})
            where.append(i)
    if extras:
        text = encode_lines(extras).decode("utf-8")
        for i, t in zip(where, text.split("\n"), strict=False):
            attrs[i] = t
    cols: dict[str, pa.Array] = {
        "line_no": pa.array(range(1, len(rows) + 1), pa.int64()),
        "usable": pa.array(usable, pa.bool_()),
        "event_id": pa.array(ids, pa.string()),
    }
    for f in FIELDS:
        cols[f.name] = pa.array(values[f.name], _ARROW[f.type])
    cols["attrs_text"] = pa.array(attrs, pa.string())
    return pa.table(cols)


def stage(con: duckdb.DuckDBPyConnection, events: list[Any]) -> tuple[pa.Table, pa.Table]:
    """(staged rows, JSON lines of the rows not cleared): what `ingest.ingest_staged` takes."""
    typed = typed_table(events)  # noqa: F841  (read by name in the SQL)
    # The statement parsed once (`statements.parsed`), as ingest.py runs its own: `con.sql`
    # parsed the text and bound it into a relation every round before running it, ~8 ms more
    # CPU a round than this (bench/RESULTS.md, session of 2026-12-02, otlpcpu).
    con.execute(parsed(con, STAGED_SQL))
    staged = to_arrow(con, STAGE_BATCH)
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
    same store contents), faster for plain telemetry dicts. `within(con)`: more writes in
    the same transaction (the collector's held OTLP spans)."""
    if not events:
        if within is not None:
            with store.transaction() as con:
                within(con)
        return IngestReport(), []
    staged, lines = stage(store.con, events)
    return ingest_staged(store, staged, lines, source, within)
