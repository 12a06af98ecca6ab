"""The README's event tables, generated from the field table so the docs cannot drift from
what ingest enforces (tests/test_readme_events.py checks the README holds them)."""

from __future__ import annotations

from alphatrace.events.fields import KINDS, SPECS, TS_MAX, TS_MIN, Field, FieldType

_TYPE_TEXT: dict[FieldType, str] = {
    "string": "non-empty string",
    "id": "non-empty string or integer",
    "number": "finite number",
    "integer": "whole number",
    "timestamp": "ISO 8601 (UTC when no offset) or epoch s/ms",
    "direction": "LONG, SHORT or FLAT, any case",
    "horizon": '"8h", "90m", "30s", "2d", "1w" or seconds',
}


def kinds_markdown() -> str:
    """kind | required | optional, in field-table order."""
    rows = ["| kind | required | optional |", "|---|---|---|"]
    for kind in KINDS:
        req = ", ".join(f.name for f in SPECS[kind] if f.required)
        opt = ", ".join(f.name for f in SPECS[kind] if not f.required)
        rows.append(f"| {kind} | {req} | {opt} |")
    return "\n".join(rows) + "\n"


def _values(f: Field) -> str:
    if f.type == "timestamp":
        return f"{TS_MIN:%Y-%m-%d} ≤ t < {TS_MAX:%Y-%m-%d}"
    if f.range is not None:
        return f.range.text() + (" (seconds)" if f.type == "horizon" else "")
    return "—"


def fields_markdown() -> str:
    """field | kinds | type | values: every field once, with the range ingest enforces."""
    seen: dict[str, tuple[Field, list[str]]] = {}
    for kind in KINDS:
        for f in SPECS[kind]:
            seen.setdefault(f.name, (f, []))[1].append(kind)
    rows = ["| field | kinds | type | values |", "|---|---|---|---|"]
    for name, (f, kinds) in seen.items():
        where = "all" if len(kinds) == len(KINDS) else ", ".join(kinds)
        rows.append(f"| `{name}` | {where} | {_TYPE_TEXT[f.type]} | {_values(f)} |")
    return "\n".join(rows) + "\n"
