"""The OpenAPI body schema of POST /v1/events is the JSON Schema generated from the field table
(`events.jsonschema.event_schema`), not a hand-written copy that could drift from ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from alphatrace.events import KINDS, event_schema
from alphatrace.server.app import create_app


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
