"""GET /v1/runs/{run_id} and GET /v1/agents: stored events, ledger rows, shared metrics."""

from __future__ import annotations

import httpx
import pytest

from alphatrace.server.read_routes import agent_summaries, run_detail
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.server.conftest import Server

LEDGER = [  # run_id, agent, ts, pnl_bps, pnl_usd, cost, net_usd, errors, latency
    ("l1", "L", "2025-03-01 08:00:00", 10.0, 10.0, 0.1, 9.9, 0, 100.0),
    ("l2", "L", "2025-03-01 09:00:00", -5.0, -5.0, 0.1, -5.1, 1, 300.0),
    ("l3", "L", "2025-03-01 10:00:00", 20.0, 20.0, 0.1, 19.9, 0, 200.0),
    ("m1", "M", "2025-03-01 08:30:00", None, None, 0.2, None, 0, 50.0),
]


def fill(store: Store) -> None:
    store.con.executemany(
        "INSERT INTO ledger (run_id, agent, ts, realized_pnl_bps, pnl_usd, cost_usd, net_usd, "
        "errors, latency_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'realized')", LEDGER)
    ingest_events(store, [
        {"type": "telemetry", "run_id": "l1", "agent": "L", "ts": "2025-03-01T08:00:05Z",
         "tokens_in": 5, "event_id": "l1:2", "note": "kept"},
        {"type": "alpha", "run_id": "l1", "agent": "L", "ts": "2025-03-01T08:00:00Z",
         "symbol": "BTC", "direction": "long", "event_id": "l1:1"},
        {"type": "pnl", "run_id": "l1", "realized_pnl_bps": 10.0, "event_id": "l1:3"},
        {"type": "telemetry", "run_id": "e1", "agent": "EventsOnly", "ts": 1_740_816_000},
    ])


def test_run_detail_orders_events_and_carries_the_ledger_row(store: Store) -> None:
    fill(store)
    doc = run_detail(store.con, "l1")
    assert doc is not None and doc["run_id"] == "l1"
    assert doc["ledger"]["realized_pnl_bps"] == 10.0 and doc["ledger"]["ts"] == "2025-03-01T08:00:00.000000Z"
    assert [(e["type"], e["event_id"]) for e in doc["events"]] == [
        ("alpha", "l1:1"), ("telemetry", "l1:2"), ("pnl", "l1:3")]  # by ts; no ts last
    assert doc["events"][0]["direction"] == "LONG"
    assert doc["events"][1]["attrs"] == {"note": "kept"}
    assert run_detail(store.con, "nope") is None
    assert run_detail(store.con, "m1")["events"] == []  # type: ignore[index]
    # A hostile run_id is a value, never SQL.
    assert run_detail(store.con, "l1' OR '1'='1") is None


def test_agent_summaries_by_hand(store: Store) -> None:
    fill(store)
    rows = {r["agent"]: r for r in agent_summaries(store.con)}
    assert list(rows) == ["EventsOnly", "L", "M"]
    el = rows["L"]
    assert (el["runs_seen"], el["events"], el["runs"], el["realized_runs"]) == (1, 2, 3, 3)
    assert el["hit_rate"] == pytest.approx(2 / 3)
    assert el["mean_pnl_bps"] == pytest.approx(25 / 3)
    assert el["total_pnl_usd"] == pytest.approx(25.0) and el["total_cost_usd"] == pytest.approx(0.3)
    assert el["net_usd"] == pytest.approx(24.7) and el["mean_latency_ms"] == pytest.approx(200.0)
    assert el["max_losing_streak"] == 1 and el["max_drawdown_bps"] == pytest.approx(5.0)
    assert el["first_seen"] == "2025-03-01T08:00:00.000000Z"
    assert el["last_seen"] == "2025-03-01T08:00:05.000000Z"
    m = rows["M"]  # in the ledger only
    assert (m["events"], m["runs"], m["realized_runs"], m["hit_rate"]) == (0, 1, 0, None)
    e = rows["EventsOnly"]  # events only, not reconciled yet
    assert (e["events"], e["runs"]) == (1, None)


def test_reads_over_http(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth("read")) as c:
        run = c.get("/v1/runs/l1")
        assert run.status_code == 200 and len(run.json()["events"]) == 3
        assert run.json()["ledger"]["pnl_usd"] == 10.0
        assert c.get("/v1/runs/nope").json() == {"detail": "no such run"}
        agents = {a["agent"]: a for a in c.get("/v1/agents").json()["agents"]}
        assert agents["L"]["total_pnl_usd"] == pytest.approx(25.0)
        assert agents["L"]["events"] == 2 and agents["M"]["events"] == 0
