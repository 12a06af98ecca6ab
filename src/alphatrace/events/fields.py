"""The event contract (docs/architecture.md §Events) as data: one table drives the validation
SQL (`store/validate_sql.py`, ranges via `alphatrace.sql.range_checks`), the JSON Schema
(`events/jsonschema.py`: `alphatrace schema --kind K` and the OpenAPI body of POST /v1/events)
and the README's event tables (`events/markdown.py`), so they can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Kind = Literal["telemetry", "alpha", "pnl"]
KINDS: tuple[Kind, ...] = ("telemetry", "alpha", "pnl")

# string: JSON string; id: string or integer (stored as text); number: finite JSON number;
# integer: whole JSON number; timestamp: ISO 8601 (UTC if no offset) or epoch s/ms;
# direction: LONG/SHORT/FLAT in any case; horizon: "8h", "90m", "30s", "2d", "1w" or seconds.
FieldType = Literal["string", "id", "number", "integer", "timestamp", "direction", "horizon"]


@dataclass(frozen=True)
class Range:
    """The values a number may take: [lo, hi], or (lo, hi] when `lo_open`.

    Every number has one, so a value no real run produces (an integer beyond 2^63, a PnL of
    1.7e308 whose sum overflows to infinity) is quarantined at ingest instead of breaking a
    later cast, sum or report for the whole store. Enforced by `alphatrace.sql.range_checks`
    on every ingest path (files, HTTP, OTLP, SDK) and in market import. The typed entry
    (store/typed_ingest.py: JSON bodies, OTLP spans, the SDK's store sink) stores the rows it
    clears without that SQL: it clears a number only within these bounds
    (`store.typed_rules.numbers_ok`, never looser), and every other row goes through it.
    """

    lo: float
    hi: float
    lo_open: bool = False

    def text(self) -> str:
        op = "<" if self.lo_open else "≤"
        return f"{show(self.lo)} {op} x ≤ {show(self.hi)}"


def show(x: float) -> str:
    """A bound as people read it: `1e12` for a large power of ten, else digits with commas."""
    if abs(x) >= 1e7 and math.log10(abs(x)).is_integer():
        return ("-" if x < 0 else "") + f"1e{round(math.log10(abs(x)))}"
    return f"{int(x):,}" if x == int(x) else f"{x:g}"


# Timestamps: [TS_MIN, TS_MAX). A 64-bit nanosecond timestamp (pandas, numpy, Arrow in any
# unit) holds every instant in it, with ten years of room for a signal's horizon.
TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2250, 1, 1, tzinfo=UTC)

COUNT = Range(0, 1e12)  # tokens: a trillion per run is far beyond any model's context
MONEY = Range(0, 1e9)  # USD of inference per run
PRICE = Range(0, 1e12, lo_open=True)
BPS = Range(-1e7, 1e7)  # ±100,000 %: a 1,000x levered move
REVISION = Range(0, 2**53 - 1)  # every integer up to 2^53 is exact in a double
HORIZON_S = Range(0, 3650 * 86400, lo_open=True)  # ten years


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    range: Range | None = None  # numbers, integers and horizons (in seconds)
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
        Field("latency_ms", "number", range=Range(0, 1e10)),
        Field("tokens_in", "integer", range=COUNT),
        Field("tokens_out", "integer", range=COUNT),
        Field("cost_usd", "number", range=MONEY),
        Field("errors", "integer", range=Range(0, 1e9)),
        Field("model", "string"),
        Field("start_ts", "timestamp", doc="call start; with end_ts, run latency is wall time"),
        Field("end_ts", "timestamp"),
    ),
    "alpha": (
        *COMMON,
        Field("agent", "string", True),
        Field("symbol", "string", True),
        Field("direction", "direction", True),
        Field("score_final", "number", range=Range(-1e12, 1e12)),
        Field("regime", "string"),
        Field("size_usd", "number", range=Range(0, 1e13, lo_open=True)),
        Field("horizon", "horizon", range=HORIZON_S),
    ),
    "pnl": (
        *COMMON,
        Field("realized_pnl_bps", "number", True, range=BPS),
        Field("agent", "string"),
        Field("symbol", "string"),
        Field("entry_price", "number", range=PRICE),
        Field("exit_price", "number", range=PRICE),
        Field("revision", "integer", range=REVISION),
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
