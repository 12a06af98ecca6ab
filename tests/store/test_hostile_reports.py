"""After hostile input, every report command still runs (issue #13 items 1-4).

Before the field ranges, one event with a year past 9999 crashed `ledger`, `forensics`,
`explain` and `report` for the whole store, and one PnL of 1.7e308 stopped every gate. Here a
store gets real prices, well-formed runs of two agents and, in the same files, every hostile
value of tests/store/test_hostile_input.py; then each reporting command must exit 0 with one
JSON document, and the well-formed runs must be in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from tests.store.test_hostile_input import CASES

pytestmark = pytest.mark.slow  # see `make test-fast`

DATA = Path(__file__).resolve().parents[2] / "src" / "alphatrace" / "demo" / "data"
runner = CliRunner()


def _good_runs() -> list[dict[str, Any]]:
    """Two agents, 12 runs each, hourly signals inside the shipped BTC slice (2025-06-01 on)."""
    out: list[dict[str, Any]] = []
    for a, agent in enumerate(("Alpha", "Beta")):
        for i in range(12):
            rid = f"{agent}-{i}"
            ts = f"2025-06-0{2 + a}T{i:02d}:00:00Z"
            out += [
                {"type": "telemetry", "run_id": rid, "agent": agent, "latency_ms": 300 + 10 * i,
                 "tokens_in": 1000, "tokens_out": 200, "cost_usd": 0.01, "errors": 0, "ts": ts},
                {"type": "alpha", "run_id": rid, "agent": agent, "symbol": "BTC",
                 "direction": "LONG" if i % 2 else "SHORT", "score_final": 1.0, "ts": ts,
                 "horizon": "4h", "strategy": "S"},
            ]
    return out


def _cli(db: Path, *args: str) -> Any:
    res = runner.invoke(app, [*args, "--db", str(db), "--json"])
    assert res.exit_code == 0, (args, res.output)
    return json.loads(res.stdout)


def test_every_report_runs_after_hostile_input(tmp_path: Path) -> None:
    db = tmp_path / "hostile.duckdb"
    events = tmp_path / "events.jsonl"
    hostile = [t.format(r=f"bad{i}", kv=f'"{fld}":{val}') for i, (t, fld, val, _) in enumerate(CASES)]
    hostile += ['{"run_id":"A","agent":"Alpha","latency_ms":5,"run_id":"B"}', "\t{not json", ""]
    good = [json.dumps(e) for e in _good_runs()]
    events.write_text("\n".join(good[:10] + hostile + good[10:]) + "\n", encoding="utf-8")

    market = runner.invoke(app, ["market", "import", str(DATA / "BTCUSDT_1h.parquet"),
                                 str(DATA / "BTCUSDT_funding_8h.parquet"), "--db", str(db)])
    assert market.exit_code == 0, market.output
    report = _cli(db, "ingest", str(events))
    assert report["accepted"] == len(good) + sum(1 for c in CASES if c[3])
    assert report["quarantined"] == sum(1 for c in CASES if not c[3]) + 2

    _cli(db, "reconcile")
    ledger = _cli(db, "ledger")
    rows = ledger["runs"] if isinstance(ledger, dict) else ledger
    assert {f"{a}-{i}" for a in ("Alpha", "Beta") for i in range(12)} <= {r["run_id"] for r in rows}
    agents = _cli(db, "agents")
    assert {"Alpha", "Beta"} <= {r["agent"] for r in (agents["agents"] if isinstance(agents, dict) else agents)}
    _cli(db, "explain", "Alpha-3")
    _cli(db, "forensics")
    _cli(db, "confidence")
    decisions = _cli(db, "gates", "evaluate")
    assert decisions  # every subject decided, none stopped by another's data
    _cli(db, "audit", "verify")
    _cli(db, "quarantine")
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--out", str(out), "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "Alpha" in out.read_text(encoding="utf-8")
