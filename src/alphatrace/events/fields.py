"""The event contract of DESIGN.md §2 as data: one table drives validation SQL, JSON Schema
export and docs, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["telemetry", "alpha", "pnl"]
KINDS: tuple[Kind, ...] = ("telemetry", "alpha", "pnl")

# string: JSON string; id: string or integer (stored as text); number: finite JSON number;
# integer: whole JSON number; timestamp: ISO 8601 (UTC if no offset) or epoch s/ms;
# direction: LONG/SHORT/FLAT in any case; horizon: "8h", "90m", "30s", "2d", "1w" or seconds.
FieldType = Literal["string", "id", "number", "integer", "timestamp", "direction", "horizon"]
Bound = Literal["any", "nonneg", "positive"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    bound: Bound = "any"
    doc: str = ""


COMMON: tuple[Field, ...] = (
    Field("run_id", "id", True, doc="joins the three streams; one agent run"),
    Field("ts", "timestamp", doc="event time; ISO 8601 (UTC if no offset) or epoch s/ms"),
    Field("strategy", "string", doc="strategy class the agent belongs to"),
)

SPECS: dict[Kind, tuple[Field, ...]] = {
    "telemetry": (
        *COMMON,
        Field("agent", "string", True),
        Field("latency_ms", "number", bound="nonneg"),
        Field("tokens_in", "integer", bound="nonneg"),
        Field("tokens_out", "integer", bound="nonneg"),
        Field("cost_usd", "number", bound="nonneg"),
        Field("errors", "integer", bound="nonneg"),
        Field("model", "string"),
        Field("start_ts", "timestamp", doc="call start; with end_ts, run latency is wall time"),
        Field("end_ts", "timestamp"),
    ),
    "alpha": (
        *COMMON,
        Field("agent", "string", True),
        Field("symbol", "string", True),
        Field("direction", "direction", True),
        Field("score_final", "number"),
        Field("regime", "string"),
        Field("size_usd", "number", bound="positive"),
        Field("horizon", "horizon", bound="positive"),
    ),
    "pnl": (
        *COMMON,
        Field("realized_pnl_bps", "number", True),
        Field("agent", "string"),
        Field("symbol", "string"),
        Field("entry_price", "number", bound="positive"),
        Field("exit_price", "number", bound="positive"),
        Field("revision", "integer", bound="nonneg"),
    ),
}

# Keys that are part of the envelope, never attrs.
ENVELOPE = ("type", "event_id")

# Shape inference for events with neither --kind nor "type": the seed's bare shapes.
# Checked in this order; the first kind whose marker field is present wins.
SHAPE_MARKERS: tuple[tuple[Kind, tuple[str, ...]], ...] = (
    ("alpha", ("direction",)),
    ("pnl", ("realized_pnl_bps",)),
    ("telemetry", ("latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "model")),
)

DIRECTIONS = ("LONG", "SHORT", "FLAT")

# Aliases accepted for "type" (lower-cased before lookup).
TYPE_ALIASES: dict[str, Kind] = {
    "telemetry": "telemetry",
    "alpha": "alpha",
    "signal": "alpha",
    "pnl": "pnl",
}


def all_field_names() -> list[str]:
    """Every key the contract knows, across kinds, in a stable order."""
    seen: dict[str, None] = {}
    for kind in KINDS:
        for f in SPECS[kind]:
            seen.setdefault(f.name, None)
    for k in ENVELOPE:
        seen.setdefault(k, None)
    return list(seen)


def field_map(kind: Kind) -> dict[str, Field]:
    return {f.name: f for f in SPECS[kind]}
