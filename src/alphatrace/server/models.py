"""Response and request shapes, declared for the OpenAPI document (and checked by schemathesis)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alphatrace.events import KINDS, event_schema


class Problem(BaseModel):
    detail: str


class EventStatus(BaseModel):
    index: int = Field(description="position of the event in the request")
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    kind: str | None = None
    field: str | None = Field(None, description="the offending field, when rejected")
    reason: str | None = Field(None, description="why it was rejected")


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventStatus]


class RunDetail(BaseModel):
    run_id: str
    ledger: dict[str, Any] | None = Field(
        description="the run's ledger row; null until `alphatrace reconcile` has seen the run"
    )
    events: list[dict[str, Any]] = Field(description="every stored event of the run, by (ts, type, event_id)")


class AgentSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    agent: str
    runs_seen: int = Field(description="distinct run_ids among the agent's telemetry and alpha events")
    events: int
    first_seen: str | None
    last_seen: str | None


class Agents(BaseModel):
    agents: list[AgentSummary]


class PipelineHealth(BaseModel):
    """The live pipeline (server/pipeline.py): null in the health body when it is off."""

    policy: str
    passes: int
    failures: int
    caught_up: bool = Field(description="no committed data waits for a pass")
    lag_ms: float = Field(description="derived state behind committed data: growing while a "
                                      "pass is due, else the last pass's lag")
    last_pass_ms: float | None
    last_reconcile_ms: float | None
    last_gates_ms: float | None
    last_decisions: int = Field(description="decision records the last pass appended")
    newest_file_id: int | None
    last_error: str | None = Field(description="why the last pass failed (retried next round)")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    pending_events: int
    pipeline_lag_s: float = Field(description="seconds the oldest committed event not yet in "
                                              "derived state has waited; 0 when up to date")
    pending_notifications: int | None = Field(
        None, description="notification deliveries waiting; null without notifications")
    pipeline: PipelineHealth | None = None


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
    scope: Literal["ingest", "read", "admin"]


class KeyCreated(BaseModel):
    name: str
    scope: str
    key: str = Field(description="shown once; only its hash is stored")


class KeyInfo(BaseModel):
    name: str
    scope: str
    prefix: str
    created_at: str
    revoked: bool
    revoked_at: str | None


class KeyRevoked(BaseModel):
    name: str
    revoked: bool


# One event: any of the three kinds' JSON Schemas, generated from the field table
# (`alphatrace schema --kind K` prints the same documents), so the OpenAPI body cannot drift
# from what ingest enforces. anyOf, not oneOf: an event without `type` may fit several shapes;
# ingest picks its kind (see `events.fields.SHAPE_MARKERS`).
EVENT_SCHEMA: dict[str, Any] = {
    "description": (
        "One event: telemetry, alpha or pnl. Unknown keys are kept as attrs. An event that breaks "
        "its kind's schema is reported per event (status `rejected` with field and reason, HTTP "
        "207) and kept in quarantine; the batch is not failed."
    ),
    "anyOf": [event_schema(kind) for kind in KINDS],
}

EVENTS_BODY_SCHEMA: dict[str, Any] = {
    "description": (
        "A JSON array of events (telemetry, alpha and pnl mixed; the `type` field or the shape "
        "selects the kind), or an object `{\"events\": [...]}`. At most 5 MB. Each event is "
        "validated like a line of a JSON Lines file: see `alphatrace schema --kind K`."
    ),
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": EVENT_SCHEMA},
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {
                            "events": {"type": "array", "items": EVENT_SCHEMA}
                        },
                    },
                ]
            },
            "example": [
                {"type": "telemetry", "run_id": "r-1", "agent": "CryptoFundingRateAgent",
                 "ts": "2025-03-01T08:00:00Z", "model": "gpt-4o", "tokens_in": 1830,
                 "tokens_out": 421, "cost_usd": 0.0088, "latency_ms": 950},
                {"type": "alpha", "run_id": "r-1", "agent": "CryptoFundingRateAgent",
                 "ts": "2025-03-01T08:00:01Z", "symbol": "BTC", "direction": "SHORT",
                 "score_final": -1.42, "regime": "MEAN_REVERT"},
            ],
        }
    },
}

OTLP_BODY_SCHEMA: dict[str, Any] = {
    "description": (
        "An OTLP/HTTP ExportTraceServiceRequest, JSON encoded (application/json) or protobuf "
        "(application/x-protobuf), plain or with Content-Encoding gzip or deflate. At most 5 MB, "
        "compressed and decompressed."
    ),
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    # proto3 JSON: null means the default (no spans)
                    "resourceSpans": {"type": ["array", "null"], "items": {"type": "object"}},
                },
            }
        },
    },
}
