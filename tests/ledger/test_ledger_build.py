"""The run ledger (docs/architecture.md §Ledger): multi-leg weighting, external pnl revisions, telemetry sums,
orphans, ordering and determinism. Expected values are written out by hand."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from alphatrace.ledger.api import ledger_rows
from alphatrace.store import Store
from tests.ledger.helpers import (
    add_alpha,
    add_bars,
    add_pnl,
    add_telemetry,
    at,
    long_bps,
    run,
    run_reconcile,
    short_bps,
)

TOL = 1e-9


@pytest.fixture
def mkt(store: Store) -> Store:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    add_bars(store, "ETHUSDT", [20.0 + i / 2 for i in range(48)])
    add_bars(store, "SOLUSDT", [5.0 + i / 10 for i in range(48)])
    return store


def test_multi_leg_run_is_size_weighted_in_bps_and_summed_in_usd(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=10_000)
    add_alpha(mkt, "r1", "ETH", "SHORT", at(0, 30), size_usd=5_000)
    run_reconcile(mkt)
    a, b = long_bps(101, 109), short_bps(20.5, 24.5)
    r = run(mkt, "r1")
    assert abs(r["paper_pnl_bps"] - (10_000 * a + 5_000 * b) / 15_000) < TOL
    assert abs(r["pnl_usd"] - (a * 1.0 + b * 0.5)) < 1e-9
    assert (r["symbols"], r["direction"], r["n_legs"], r["size_usd"]) == (
        "BTCUSDT,ETHUSDT", "MIXED", 2, 15_000.0)
    assert r["entry_price"] is None and r["exit_price"] is None  # multi-leg: no single price
    assert abs(r["gross_bps"] + r["fee_bps"] + r["funding_bps"] - r["paper_pnl_bps"]) < TOL


def test_three_legs_and_a_flat_one(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=3_000)
    add_alpha(mkt, "r1", "ETH", "LONG", at(1, 30), size_usd=2_000)
    add_alpha(mkt, "r1", "SOL", "SHORT", at(2, 30), size_usd=1_000)
    add_alpha(mkt, "r1", "BTC", "FLAT", at(0, 10), size_usd=99_000)  # no weight
    run_reconcile(mkt)
    a, b, c = long_bps(101, 109), long_bps(21, 25), short_bps(5.3, 6.1)
    r = run(mkt, "r1")
    assert abs(r["paper_pnl_bps"] - (3_000 * a + 2_000 * b + 1_000 * c) / 6_000) < TOL
    assert r["size_usd"] == 6_000.0 and r["direction"] == "MIXED"
    assert r["ts"] == at(0, 10)  # the run's first signal


def test_flat_next_to_a_position_takes_no_weight(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=10_000)
    add_alpha(mkt, "r1", "ETH", "FLAT", at(0, 30), size_usd=10_000)
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert r["paper_pnl_bps"] == long_bps(101, 109) or abs(
        r["paper_pnl_bps"] - long_bps(101, 109)) < TOL
    assert r["size_usd"] == 10_000.0


def test_all_flat_run_costs_its_inference(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "FLAT", at(0, 30))
    add_telemetry(mkt, "r1", cost_usd=0.25)
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert (r["status"], r["realized_pnl_bps"], r["pnl_usd"], r["net_usd"], r["net_bps"]) == (
        "realized", 0.0, 0.0, -0.25, None)


def test_telemetry_sums_and_latency_rules(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30))
    add_telemetry(mkt, "r1", latency_ms=100.0, tokens_in=10, tokens_out=1, cost_usd=0.01,
                  errors=0, model="m1")
    add_telemetry(mkt, "r1", latency_ms=250.5, tokens_in=20, tokens_out=2, cost_usd=0.02,
                  errors=2, model="m2")
    add_telemetry(mkt, "r1", latency_ms=49.5, tokens_in=30, tokens_out=3, cost_usd=0.03,
                  model="m1")
    # every record timed: wall time from the first start to the last end
    for s, e in ((at(1), at(1, 0.5)), (at(1, 0.25), at(1, 2))):
        add_telemetry(mkt, "r2", latency_ms=999.0, start_ts=s, end_ts=e)
    # one record untimed: back to the sum of latencies
    add_telemetry(mkt, "r3", latency_ms=10.0, start_ts=at(1), end_ts=at(2))
    add_telemetry(mkt, "r3", latency_ms=5.0)
    run_reconcile(mkt)
    r1 = run(mkt, "r1")
    assert (r1["latency_ms"], r1["tokens_in"], r1["tokens_out"], r1["errors"], r1["model"]) == (
        400.0, 60, 6, 2, "m1,m2")
    assert abs(r1["cost_usd"] - 0.06) < 1e-15
    assert abs(r1["net_usd"] - (long_bps(101, 109) - 0.06)) < 1e-9
    assert abs(r1["net_bps"] - (long_bps(101, 109) - 0.06 / 10_000 * 1e4)) < 1e-9
    assert run(mkt, "r2")["latency_ms"] == 120_000.0  # 01:00:00 -> 01:02:00
    assert run(mkt, "r3")["latency_ms"] == 15.0


def test_external_pnl_latest_revision_wins_history_kept(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=2_000)
    add_pnl(mkt, "r1", 5.0, revision=0)
    add_pnl(mkt, "r1", 7.0, revision=2)
    add_pnl(mkt, "r1", 6.0, revision=1)
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert (r["realized_pnl_bps"], r["pnl_source"], r["external_pnl_bps"]) == (
        7.0, "external", 7.0)
    assert abs(r["paper_pnl_bps"] - long_bps(101, 109)) < TOL
    assert abs(r["execution_gap_bps"] - (7.0 - long_bps(101, 109))) < TOL
    assert r["pnl_usd"] == 7.0 * 2_000 / 1e4 and r["n_pnl"] == 3
    hist = mkt.con.execute("SELECT revision, is_latest FROM pnl_history WHERE run_id = 'r1' "
                           "ORDER BY revision").fetchall()
    assert hist == [(0, False), (1, False), (2, True)]


def test_revision_ties_break_by_ts_then_ingest_order(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30))
    add_alpha(mkt, "r2", "BTC", "LONG", at(0, 30))
    add_pnl(mkt, "r1", 1.0, revision=3, ts=at(5))
    add_pnl(mkt, "r1", 2.0, revision=3, ts=at(4))     # older ts loses
    add_pnl(mkt, "r2", 3.0, revision=1, ts=at(5), file_id=7, line=1)
    add_pnl(mkt, "r2", 4.0, revision=1, ts=at(5), file_id=2, line=9)  # ingested earlier
    run_reconcile(mkt)
    assert run(mkt, "r1")["realized_pnl_bps"] == 1.0
    assert run(mkt, "r2")["realized_pnl_bps"] == 3.0


def test_per_symbol_external_figures_are_weighted_by_their_legs(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=3_000, agent="A")
    add_alpha(mkt, "r1", "ETH", "LONG", at(0, 30), size_usd=1_000, agent="A")
    add_pnl(mkt, "r1", 10.0, symbol="BTCUSDT")
    add_pnl(mkt, "r1", 99.0, symbol="btc", revision=0)       # same market, older (line order)
    add_pnl(mkt, "r1", -20.0, symbol="ETH")
    add_pnl(mkt, "r1", 30.0, symbol="BTC", revision=1)      # BTC's latest
    # a symbol the run never traded: weighted by the agent's default size (policy: 500)
    add_alpha(mkt, "r2", "BTC", "LONG", at(0, 30), size_usd=1_500, agent="A")
    add_pnl(mkt, "r2", 4.0, symbol="BTC")
    add_pnl(mkt, "r2", 8.0, symbol="SOL")
    run_reconcile(mkt, "reconcile: {agents: {A: {size_usd: 500}}}")
    r1 = run(mkt, "r1")
    assert abs(r1["realized_pnl_bps"] - (30.0 * 3_000 + -20.0 * 1_000) / 4_000) < TOL
    assert abs(r1["pnl_usd"] - (30.0 * 3_000 + -20.0 * 1_000) / 1e4) < 1e-9
    r2 = run(mkt, "r2")
    assert abs(r2["realized_pnl_bps"] - (4.0 * 1_500 + 8.0 * 500) / 2_000) < TOL
    assert r2["size_usd"] == 2_000.0


def test_a_single_per_symbol_figure_takes_the_size_of_its_market_legs(mkt: Store) -> None:
    # one pnl event per run (the common case, priced without ranking): same weights as above
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=3_000, agent="A")
    add_pnl(mkt, "r1", 12.0, symbol="btc/usdt")                 # its only leg's market
    add_alpha(mkt, "r2", "ETH", "LONG", at(0, 30), size_usd=3_000, agent="A")
    add_pnl(mkt, "r2", 6.0, symbol="BTCUSDT")                   # a market it never traded
    add_alpha(mkt, "r3", "BTC", "LONG", at(0, 30), size_usd=2_000, agent="A")
    add_alpha(mkt, "r3", "ETH", "SHORT", at(0, 30), size_usd=7_000, agent="A")
    add_pnl(mkt, "r3", -5.0, symbol="ETH")                      # one of its two legs
    add_alpha(mkt, "r4", "SOL", "FLAT", at(0, 30), size_usd=9_000, agent="A")
    add_pnl(mkt, "r4", 3.0, symbol="SOLUSDT")                   # FLAT deploys nothing
    run_reconcile(mkt, "reconcile: {agents: {A: {size_usd: 500}}}")
    got = {r: (run(mkt, r)["realized_pnl_bps"], run(mkt, r)["size_usd"], run(mkt, r)["pnl_usd"],
               run(mkt, r)["pnl_source"]) for r in ("r1", "r2", "r3", "r4")}
    assert got == {"r1": (12.0, 3_000.0, 12.0 * 3_000 / 1e4, "external"),
                   "r2": (6.0, 500.0, 6.0 * 500 / 1e4, "external"),
                   "r3": (-5.0, 7_000.0, -5.0 * 7_000 / 1e4, "external"),
                   "r4": (3.0, 500.0, 3.0 * 500 / 1e4, "external")}


def test_a_per_symbol_figure_on_a_flat_only_market_takes_the_default_size(mkt: Store) -> None:
    """FLAT deploys nothing, so a per-symbol figure on a market where the run's only leg is FLAT
    has no deployed size to weigh it: it is weighted by the agent's default size (policy:
    agent A 500, default 10,000), whatever size the FLAT event carried (9,000). The same with
    several pnl events per run (revisions; the ranked path) and next to a real position."""
    # one FLAT leg, two revisions of its market's figure: the latest (3.0) on 500 USD
    add_alpha(mkt, "r1", "SOL", "FLAT", at(0, 30), size_usd=9_000, agent="A")
    add_pnl(mkt, "r1", 7.0, symbol="SOLUSDT")
    add_pnl(mkt, "r1", 3.0, symbol="SOLUSDT", revision=1)
    # FLAT on SOL next to a 3,000 USD BTC position: SOL weighs 500, BTC 3,000
    add_alpha(mkt, "r2", "SOL", "FLAT", at(0, 30), size_usd=9_000, agent="A")
    add_alpha(mkt, "r2", "BTC", "LONG", at(0, 30), size_usd=3_000, agent="A")
    add_pnl(mkt, "r2", 8.0, symbol="SOL")
    add_pnl(mkt, "r2", -2.0, symbol="BTC")
    # another agent: the section default, 10,000
    add_alpha(mkt, "r3", "SOL", "FLAT", at(0, 30), size_usd=9_000, agent="B")
    add_pnl(mkt, "r3", 4.0, symbol="SOLUSDT")
    run_reconcile(mkt, "reconcile: {agents: {A: {size_usd: 500}}}")
    got = {r: (run(mkt, r)["realized_pnl_bps"], run(mkt, r)["size_usd"], run(mkt, r)["pnl_usd"])
           for r in ("r1", "r2", "r3")}
    assert got["r1"] == (3.0, 500.0, 3.0 * 500 / 1e4)
    assert got["r3"] == (4.0, 10_000.0, 4.0 * 10_000 / 1e4)
    bps, size, usd = got["r2"]
    assert abs(bps - (8.0 * 500 + -2.0 * 3_000) / 3_500) < TOL and size == 3_500.0
    assert abs(usd - (8.0 * 500 + -2.0 * 3_000) / 1e4) < 1e-12


def test_run_level_external_figure_wins_over_per_symbol(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), size_usd=3_000)
    add_pnl(mkt, "r1", 10.0, symbol="BTC")
    add_pnl(mkt, "r1", -4.0)
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert (r["realized_pnl_bps"], r["pnl_usd"]) == (-4.0, -4.0 * 3_000 / 1e4)


def test_external_pnl_of_an_open_run_is_its_realized_figure(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(47, 30))
    add_pnl(mkt, "r1", 12.5)
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert (r["status"], r["paper_pnl_bps"], r["realized_pnl_bps"], r["pnl_source"]) == (
        "open", None, 12.5, "external")


def test_orphans_are_listed_with_their_reason_and_counted(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30))
    add_alpha(mkt, "r2", "NOPE", "LONG", at(0, 30))
    add_alpha(mkt, "r3", "BTC", "LONG", at(50))
    add_telemetry(mkt, "t_only", agent="B", cost_usd=0.5, ts=at(3))
    add_pnl(mkt, "p_only", -3.0, agent="C", ts=at(2))
    run_reconcile(mkt)
    t, p = run(mkt, "t_only"), run(mkt, "p_only")
    assert (t["status"], t["reason"], t["pnl_usd"], t["net_usd"], t["realized_pnl_bps"]) == (
        "no_signal", "no alpha event (telemetry only)", 0.0, -0.5, None)
    assert (p["status"], p["reason"], p["realized_pnl_bps"], p["agent"]) == (
        "no_signal", "no alpha event (pnl only: unknown run)", -3.0, "C")
    res = ledger_rows(mkt.con)
    assert res.summary == {"runs": 5, "realized": 1, "open": 1, "unpriced": 1, "no_signal": 2,
                           "telemetry_without_signal": 1, "pnl_unknown_run": 1,
                           "external_pnl": 1}
    assert [r["run_id"] for r in ledger_rows(mkt.con, status="no_signal").to_pylist()] == [
        "p_only", "t_only"]


def test_rows_are_ordered_by_ts_then_run_id_and_unique(mkt: Store) -> None:
    for rid, t in (("b", at(2)), ("a", at(2)), ("c", at(1)), ("z", None)):
        add_alpha(mkt, rid, "BTC", "LONG", t)
    add_telemetry(mkt, "y", ts=None)
    run_reconcile(mkt)
    ids = [r["run_id"] for r in ledger_rows(mkt.con).to_pylist()]
    assert ids == ["c", "a", "b", "y", "z"]
    assert mkt.con.execute("SELECT count(*), count(DISTINCT run_id) FROM ledger").fetchall() == [
        (5, 5)]


def test_a_rebuild_is_bit_identical(mkt: Store) -> None:
    for i in range(40):
        rid = f"r{i % 13}"
        add_alpha(mkt, rid, ["BTC", "ETH", "SOL"][i % 3], ["LONG", "SHORT", "FLAT"][i % 3 - 1],
                  at(i % 30, 7 * i % 60), size_usd=1000 + 37 * i)
        add_telemetry(mkt, rid, latency_ms=0.1 * i, cost_usd=0.001 * i + 0.0003)
        add_pnl(mkt, rid, i * 0.37 - 3, symbol=["BTC", None][i % 2], revision=i % 3)
    run_reconcile(mkt)
    first = json.dumps(ledger_rows(mkt.con).to_pylist(), default=str)
    legs1 = mkt.con.execute("SELECT * FROM legs ORDER BY event_id").fetchall()
    run_reconcile(mkt, full=True)
    assert json.dumps(ledger_rows(mkt.con).to_pylist(), default=str) == first
    assert mkt.con.execute("SELECT * FROM legs ORDER BY event_id").fetchall() == legs1


def test_since_agent_strategy_filters(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), agent="A", strategy="S1")
    add_alpha(mkt, "r2", "BTC", "LONG", at(5), agent="B", strategy="S2")
    run_reconcile(mkt)
    assert [r["run_id"] for r in ledger_rows(mkt.con, since="2024-01-01T01:00:00Z").to_pylist()] \
        == ["r2"]
    assert [r["run_id"] for r in ledger_rows(mkt.con, since=dt.date(2024, 1, 1)).to_pylist()] \
        == ["r1", "r2"]
    assert [r["run_id"] for r in ledger_rows(mkt.con, agent="A").to_pylist()] == ["r1"]
    assert [r["run_id"] for r in ledger_rows(mkt.con, strategy="S2").to_pylist()] == ["r2"]
    assert ledger_rows(mkt.con, agent="A").summary["runs"] == 1
