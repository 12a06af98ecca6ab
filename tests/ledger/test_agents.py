"""The per-agent summary, checked against the metric definitions recomputed in plain Python."""

from __future__ import annotations

import math
import statistics

from alphatrace.ledger.api import agent_summary
from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, add_bars, add_pnl, add_telemetry, at, run_reconcile

PNL = [10.0, -5.0, -20.0, 30.0, -1.0]
COST = [0.5, 0.25, 0.0, 1.0, 0.25]
LATENCY = [100.0, 300.0, 200.0, 400.0, 500.0]


def test_agent_summary_matches_the_definitions(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(24 * 12)])
    for i, (bps, cost, lat) in enumerate(zip(PNL, COST, LATENCY, strict=True)):
        rid = f"a{i}"
        add_alpha(store, rid, "BTC", "LONG", at(24 * i + 1), agent="A", size_usd=10_000)
        add_pnl(store, rid, bps)
        add_telemetry(store, rid, agent="A", latency_ms=lat, cost_usd=cost)
    add_telemetry(store, "a-nosignal", agent="A", cost_usd=0.75, ts=at(24 * 2 + 5))
    add_alpha(store, "b0", "BTC", "SHORT", at(3), agent="B")
    run_reconcile(store)
    rows = {r["agent"]: r for r in agent_summary(store.con)}
    assert list(rows) == ["A", "B"]
    a = rows["A"]

    n = len(PNL)
    costs = [*COST[:2], 0.75, *COST[2:]]  # in time order: the no-signal run is the 3rd
    net_usd = [PNL[0] - COST[0], PNL[1] - COST[1], -0.75, PNL[2] - COST[2],
               PNL[3] - COST[3], PNL[4] - COST[4]]   # pnl_usd = bps · 10,000 / 1e4 = bps
    assert (a["runs"], a["realized_runs"]) == (6, 5)
    assert a["hit_rate"] == 2 / 5
    assert math.isclose(a["mean_pnl_bps"], sum(PNL) / n)
    assert a["median_pnl_bps"] == -1.0
    nets = [p - c / 10_000 * 1e4 for p, c in zip(PNL, COST, strict=True)]
    assert math.isclose(a["mean_net_bps"], statistics.mean(nets))
    assert math.isclose(a["median_net_bps"], statistics.median(nets))
    assert math.isclose(a["total_pnl_usd"], sum(PNL))
    assert math.isclose(a["total_cost_usd"], sum(costs))
    assert math.isclose(a["net_usd"], sum(net_usd))
    assert math.isclose(a["profit_factor"], 40 / 26)
    sharpe = statistics.mean(PNL) / statistics.stdev(PNL)
    assert math.isclose(a["sharpe"], sharpe)
    days = (24 * 4 + 1 - 1) / 24  # first to last run
    assert math.isclose(a["sharpe_annualised"], sharpe * math.sqrt(365 * n / days))
    assert a["max_drawdown_bps"] == 25.0             # 10 → 5 → −15 from the peak of 10
    cum, peak, dd = 0.0, 0.0, 0.0
    for x in net_usd:
        cum += x
        peak = max(peak, cum)
        dd = max(dd, peak - cum)
    assert math.isclose(a["max_drawdown_usd"], dd)
    assert a["max_losing_streak"] == 2
    assert math.isclose(a["mean_latency_ms"], statistics.mean(LATENCY))
    assert math.isclose(a["cost_per_run"], sum(costs) / 6)
    assert math.isclose(a["pnl_per_cost"], sum(PNL) / sum(costs))
    b = rows["B"]
    assert (b["runs"], b["realized_runs"], b["hit_rate"]) == (1, 1, 0.0)
    assert b["sharpe"] is None and b["profit_factor"] == 0.0  # one losing run, no winner


def test_summary_is_identical_from_one_call_to_the_next(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + (i % 7) * 0.37 for i in range(24 * 12)])
    for i in range(300):
        add_alpha(store, f"r{i}", "BTC", ["LONG", "SHORT"][i % 2], at(i % 200, i % 60),
                  agent=f"A{i % 3}", size_usd=1_000 + i)
        add_telemetry(store, f"r{i}", agent=f"A{i % 3}", cost_usd=0.001 * (i % 17) + 1e-7)
    run_reconcile(store)
    assert agent_summary(store.con) == agent_summary(store.con)


def test_net_usd_and_cost_count_every_run_realized_or_not(store: Store) -> None:
    """An agent's inference money is spent whether or not its trades are realized: net_usd and
    total_cost_usd count the cost of open and unpriced runs, and unrealized_cost_usd shows
    that part apart. By hand: a realized run with an external +10 bps on 10,000 USD (pnl 10 USD,
    cost 0.5), an open run (cost 2), an unpriced run (no ts, cost 4), a no-signal run (0.75)."""
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    add_alpha(store, "real", "BTC", "LONG", at(1), agent="A", size_usd=10_000)
    add_pnl(store, "real", 10.0)
    add_telemetry(store, "real", agent="A", cost_usd=0.5)
    add_alpha(store, "open", "BTC", "LONG", at(46), agent="A")          # exit due after the data
    add_telemetry(store, "open", agent="A", cost_usd=2.0)
    add_alpha(store, "unpriced", "BTC", "LONG", None, agent="A")
    add_telemetry(store, "unpriced", agent="A", cost_usd=4.0)
    add_telemetry(store, "nosignal", agent="A", cost_usd=0.75, ts=at(3))
    run_reconcile(store)
    (a,) = agent_summary(store.con)
    assert (a["runs"], a["realized_runs"]) == (4, 1)
    assert a["total_pnl_usd"] == 10.0
    assert a["total_cost_usd"] == 0.5 + 2.0 + 4.0 + 0.75
    assert a["unrealized_cost_usd"] == 2.0 + 4.0
    assert a["net_usd"] == 10.0 - (0.5 + 2.0 + 4.0 + 0.75)
