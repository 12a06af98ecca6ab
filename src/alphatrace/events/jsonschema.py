"""JSON Schema (draft 2020-12) for each event kind, generated from the field table.

Ingest reads a JSON null in an optional field (and in `type`, `event_id`) as the field being absent,
so the schema allows null there; a required field that is null is missing.
"""

from __future__ import annotations

from typing import Any

from alphatrace.events.fields import DIRECTIONS, SPECS, TS_MAX, TS_MIN, Field, Kind

_TS = {
    "oneOf": [
        {"type": "string", "description": "ISO 8601; UTC when no offset is given"},
        {"type": "number", "description": "epoch seconds, or milliseconds when >= 1e11"},
    ],
    "description": (f"from {TS_MIN:%Y-%m-%d} (inclusive) to {TS_MAX:%Y-%m-%d} (exclusive), "
                    "UTC"),
}


def _field_schema(f: Field) -> dict[str, Any]:
    s: dict[str, Any]
    if f.type == "string":
        s = {"type": "string", "minLength": 1}
    elif f.type == "id":
        s = {"type": ["string", "integer"], "minLength": 1}
    elif f.type == "number":
        s = {"type": "number"}
    elif f.type == "integer":
        s = {"type": "integer"}
    elif f.type == "timestamp":
        s = dict(_TS)
    elif f.type == "direction":
        s = {
            "type": "string",
            "pattern": "^(?i:" + "|".join(DIRECTIONS) + ")$",
            "description": "LONG, SHORT or FLAT, any case",
        }
    else:  # horizon
        s = {
            "oneOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhdw]?\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": 'holding horizon: "8h", "90m", "30s", "2d", "1w" or seconds',
        }
    if f.range is not None:
        target = s["oneOf"][1] if f.type == "horizon" else s  # a horizon's number is seconds
        target.pop("exclusiveMinimum", None)
        target["exclusiveMinimum" if f.range.lo_open else "minimum"] = f.range.lo
        target["maximum"] = f.range.hi
    if f.doc:
        s["description"] = f"{f.doc}; {s['description']}" if "description" in s else f.doc
    return s if f.required else _nullable(s)


def _nullable(s: dict[str, Any]) -> dict[str, Any]:
    """`s` or null (absent)."""
    if "oneOf" in s:
        return {**s, "oneOf": [*s["oneOf"], {"type": "null"}]}
    t = s["type"]
    return {**s, "type": [*(t if isinstance(t, list) else [t]), "null"]}


def event_schema(kind: Kind) -> dict[str, Any]:
    fields = SPECS[kind]
    props: dict[str, Any] = {
        "type": {"enum": [kind, None],
                 "description": "the kind; absent or null: inferred from the event's shape"},
        "event_id": _nullable({"type": "string", "pattern": r"\S",
                               "description": "identity; default: hash of the event"}),
    }
    props.update({f.name: _field_schema(f) for f in fields})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://alphatrace.dev/schema/{kind}.json",
        "title": f"alphatrace {kind} event",
        "type": "object",
        "properties": props,
        "required": [f.name for f in fields if f.required],
        "additionalProperties": True,
        "description": "Unknown extra fields are kept as attrs.",
    }
