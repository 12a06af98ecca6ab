"""On a store built from the shared real Binance data, gate decisions equal the docs/architecture.md §Governance
definitions applied by hand: PnL recomputed independently from the raw bar files (the ledger
tests' oracle), windows, metrics and actions in plain Python."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from tests.ledger.test_real_data import FILES, _expected
from tests.policies import SEED_FLAG

pytestmark = pytest.mark.slow  # see `make test-fast`

runner = CliRunner()

AGENTS = {  # agent: (strategy, behaviour, runs)
    "Oracle": ("MOMENTUM", "right", 26),
    "Contrarian": ("CARRY", "wrong", 22),
    "Erratic": ("MOMENTUM", "random", 24),
    "Newbie": ("ARB", "right", 4),
}


def _events(bars: pd.DataFrame) -> list[dict[str, Any]]:
    rng = random.Random(11)
    times, opens = list(bars["ts"]), list(bars["open"])
    out: list[dict[str, Any]] = []
    for agent, (strategy, how, n) in AGENTS.items():
        start = dt.datetime(2024, 3, 1, 0, 30) + dt.timedelta(hours=rng.randint(0, 48))
        for k in range(n):
            t = start + dt.timedelta(days=k, hours=rng.randint(0, 12))
            i = times.index(pd.Timestamp(t.replace(minute=0)) + pd.Timedelta(hours=1))
            move = opens[i + 8] - opens[i]  # entry bar, exit 8h later (default horizon)
            right = "LONG" if move > 0 else "SHORT"
            wrong = "SHORT" if move > 0 else "LONG"
            direction = {"right": right, "wrong": wrong,
                         "random": rng.choice(["LONG", "SHORT"])}[how]
            rid = f"{agent}-{k:02d}"
            out.append({"run_id": rid, "agent": agent, "strategy": strategy, "symbol": "BTC",
                        "direction": direction, "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ")})
            errors = 1 if how == "random" and rng.random() < 0.35 else 0
            out.append({"run_id": rid, "agent": agent, "strategy": strategy,
                        "latency_ms": rng.choice([300, 450, 650, 900]) if how != "right" else 400,
                        "tokens_in": 1000, "tokens_out": 100, "cost_usd": 0.01, "errors": errors})
    return out


def _decide(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """docs/architecture.md §Governance by hand over one subject's realized runs."""
    runs = sorted(runs, key=lambda r: (r["ts"], r["run_id"]))[-20:]
    pnl = [r["pnl"] for r in runs]
    m = {"rolling_pnl_bps": sum(pnl), "last_5_runs_pnl": sum(pnl[-5:]),
         "error_rate": sum(1 for r in runs if r["errors"] > 0) / len(runs),
         "median_latency_ms": statistics.median(r["latency"] for r in runs)}
    if len(runs) < 5:
        action = "inconclusive"
    elif m["last_5_runs_pnl"] < -100 or m["error_rate"] > 0.2:
        action = "kill"
    elif m["rolling_pnl_bps"] > 150 and m["error_rate"] == 0 and m["median_latency_ms"] < 700:
        action = "promote"
    else:
        action = "hold"
    return {"action": action, "metrics": m, "run_ids": sorted(r["run_id"] for r in runs)}


def test_gates_on_real_prices_equal_the_rules_by_hand(market_dir: Path, tmp_path: Path) -> None:
    bars = {s: pd.read_parquet(market_dir / f"binance_{s}_perp_1h.parquet") for s in ("BTCUSDT", "ETHUSDT")}
    for b in bars.values():
        b["ts"] = pd.to_datetime(b["ts"]).dt.tz_localize(None)
    funding = {s: pd.read_csv(market_dir / f"binance_{s}_funding_8h.csv") for s in ("BTCUSDT", "ETHUSDT")}
    for f in funding.values():
        f["ts"] = pd.to_datetime(f["ts"]).dt.tz_localize(None)
    events = _events(bars["BTCUSDT"])
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    db = str(tmp_path / "real.duckdb")
    for args in (["market", "import", *[str(market_dir / f) for f in FILES]], ["ingest", str(src)],
                 ["reconcile"]):
        r = runner.invoke(app, [*args, "--db", db])
        assert r.exit_code == 0, r.output
    out = runner.invoke(app, ["gates", "evaluate", *SEED_FLAG, "--once", "--db", db, "--json"])
    assert out.exit_code == 0, out.output
    got = {(d["scope"], d["subject"]): d for d in json.loads(out.stdout)["decisions"]}

    # expected, independently
    per_run: dict[str, dict[str, Any]] = {}
    for e in events:
        r = per_run.setdefault(e["run_id"], {"run_id": e["run_id"]})
        if "direction" in e:
            exp = _expected(e, bars, funding)
            r.update(agent=e["agent"], strategy=e["strategy"], ts=e["ts"], pnl=exp["paper"])
        else:
            r.update(errors=e["errors"], latency=e["latency_ms"])
    subjects: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in per_run.values():
        subjects.setdefault(("agent", r["agent"]), []).append(r)
        subjects.setdefault(("strategy", r["strategy"]), []).append(r)
    want = {k: _decide(v) for k, v in subjects.items()}
    killed_strategies = {s for (sc, s), d in want.items() if sc == "strategy" and d["action"] == "kill"}
    for agent, (strategy, _, _) in AGENTS.items():
        if strategy in killed_strategies and want[("agent", agent)]["action"] != "kill":
            want[("agent", agent)] = {**want[("agent", agent)], "action": "kill", "cascade": strategy}

    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        assert g["action"] == w["action"], (key, g, w)
        if "cascade" in w:
            assert g.get("cascade_from") == w["cascade"]
            continue
        assert sorted(g["run_ids"]) == w["run_ids"], key
        for name, value in w["metrics"].items():
            # records round metric values to 12 significant digits (docs/governance.md)
            assert g["metrics"][name] == pytest.approx(value, rel=1e-11, abs=1e-9), (key, name)
    # the scenario exercises every action
    assert {w["action"] for w in want.values()} >= {"promote", "kill", "inconclusive"}
