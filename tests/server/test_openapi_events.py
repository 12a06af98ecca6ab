"""The OpenAPI body schema of POST /v1/events is the JSON Schema generated from the field table
(`events.jsonschema.event_schema`), not a hand-written copy that could drift from ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alphatrace.events import KINDS, SPECS, event_schema
from alphatrace.server.app import create_app
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events


def _openapi(tmp_path: Path) -> dict[str, Any]:
    with TestClient(create_app(tmp_path / "s.duckdb", warn_without_keys=False)) as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_event_body_schema_is_the_generated_one(tmp_path: Path) -> None:
    body = _openapi(tmp_path)["paths"]["/v1/events"]["post"]["requestBody"]
    forms = body["content"]["application/json"]["schema"]["oneOf"]
    array, wrapped = forms
    expected = [event_schema(k) for k in KINDS]
    assert array["items"]["anyOf"] == expected
    assert wrapped["properties"]["events"]["items"]["anyOf"] == expected


def test_the_schema_carries_the_field_table_ranges(tmp_path: Path) -> None:
    # written out from the field table by hand: tokens_in is a count in [0, 1e12], the pnl
    # kind requires run_id and realized_pnl_bps within ±1e7
    body = _openapi(tmp_path)["paths"]["/v1/events"]["post"]["requestBody"]
    kinds = body["content"]["application/json"]["schema"]["oneOf"][0]["items"]["anyOf"]
    by_kind = {k["properties"]["type"]["enum"][0]: k for k in kinds}
    assert set(by_kind) == {"telemetry", "alpha", "pnl"}
    tokens = by_kind["telemetry"]["properties"]["tokens_in"]
    assert (tokens["type"], tokens["minimum"], tokens["maximum"]) == (["integer", "null"], 0, 1e12)
    pnl = by_kind["pnl"]
    assert pnl["required"] == ["run_id", "realized_pnl_bps"]
    bps = pnl["properties"]["realized_pnl_bps"]
    assert (bps["minimum"], bps["maximum"]) == (-1e7, 1e7)


MINIMAL: dict[str, dict[str, Any]] = {
    "telemetry": {"run_id": "r", "agent": "A", "model": "m"},  # model: its shape marker
    "alpha": {"run_id": "r", "agent": "A", "symbol": "BTC", "direction": "LONG"},
    "pnl": {"run_id": "r", "realized_pnl_bps": 1.5},
}


def test_schema_and_ingest_agree_on_null_and_blank(tmp_path: Path) -> None:
    # Ingest reads null in an optional field (and in type and event_id) as absent, and refuses
    # a blank event_id: the schema must say the same, or a client validating against it
    # would refuse events the collector takes (and the reverse).
    rs = pytest.importorskip("jsonschema_rs")
    events: list[dict[str, Any]] = []
    for kind in KINDS:
        optional = [f.name for f in SPECS[kind] if not f.required]
        events.append({**MINIMAL[kind], "type": kind, "event_id": None,
                       **dict.fromkeys(optional)})
        events.append({**MINIMAL[kind], "type": None, "event_id": f"e-{kind}"})
        events.append({**MINIMAL[kind], "type": kind, "event_id": "  "})
    with Store(tmp_path / "s.duckdb") as store:
        _, results = ingest_events(store, events)
    for ev, res in zip(events, results, strict=True):
        kind = next(k for k in KINDS if all(f in ev for f in MINIMAL[k])
                    and (ev["type"] in (k, None)))
        valid = rs.validator_for(event_schema(kind)).is_valid(ev)
        assert valid == (res.status == "accepted"), (ev, res)
    assert [r.status for r in results] == ["accepted", "accepted", "rejected"] * 3
