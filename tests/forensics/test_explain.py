"""`explain`: waterfall, every cause with its evidence, the sentence, unknown runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from alphatrace.errors import NotFoundError
from alphatrace.forensics.api import Forensics
from alphatrace.forensics.config import ForensicsConfig
from alphatrace.forensics.explain import History, because, causes, waterfall
from alphatrace.store import Store
from tests.rows import T0, full_row, insert, insert_alpha, insert_bars, insert_rows

CFG = ForensicsConfig()


def history_rows(n: int = 20) -> list[dict[str, Any]]:
    """Agent A's earlier runs: latency 500, 510, ..., cost 0.010, 0.011, 0.010, ..."""
    return [full_row(f"h{i:02d}", T0 + dt.timedelta(hours=i), latency_ms=500.0 + 10 * i,
                       cost_usd=0.010 + 0.001 * (i % 2), realized_pnl_bps=5.0)
            for i in range(n)]


def test_waterfall_steps_sum_to_net_usd() -> None:
    row = full_row("r", T0, gross_bps=-30.0, fee_bps=-10.0, funding_bps=-2.0, paper_pnl_bps=-42.0,
                     realized_pnl_bps=-47.0, pnl_source="external", execution_gap_bps=-5.0,
                     size_usd=20_000.0, cost_usd=0.5)
    steps = {s["step"]: s for s in waterfall(row)}
    assert steps["gross_move"]["usd"] == pytest.approx(-60.0)  # -30 bps of 20k
    assert steps["fees"]["usd"] == pytest.approx(-20.0)
    assert steps["funding"]["usd"] == pytest.approx(-4.0)
    assert steps["execution_gap"]["usd"] == pytest.approx(-10.0)  # -94 + 84
    assert steps["inference_cost"]["usd"] == pytest.approx(-0.5)
    assert steps["net"]["usd"] == pytest.approx(-94.5)
    w = waterfall(row)
    assert sum(s["usd"] for s in w[:-1]) == pytest.approx(w[-1]["usd"])
    assert w[-2]["cumulative_usd"] == pytest.approx(-94.5)


def test_unpriced_run_has_only_inference() -> None:
    row = full_row("r", T0, status="unpriced", cost_usd=0.2)
    w = waterfall(row)
    assert [s["step"] for s in w] == ["inference_cost", "net"]
    assert w[-1]["usd"] == pytest.approx(-0.2)


def _explain(store: Store, rows: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    insert(store.con, rows)
    return Forensics(store).explain(run_id)


def test_slow_above_agent_p90(store: Store) -> None:
    rows = [*history_rows(), full_row("r", T0 + dt.timedelta(days=2), latency_ms=900.0,
                                         realized_pnl_bps=1.0)]
    doc = _explain(store, rows, "r")
    slow = next(c for c in doc["causes"] if c["cause"] == "slow")
    # latencies 500..690 step 10: linear p90 = 500 + 0.9·19·10 = 671
    assert slow["evidence"]["agent_p90_ms"] == pytest.approx(np.quantile(np.arange(500, 700, 10), 0.9))
    assert slow["evidence"]["agent_p90_ms"] == pytest.approx(671.0)
    assert slow["evidence"]["history_runs"] == 20
    assert slow["evidence"]["rule"] == "above_agent_p90"


def test_not_slow_without_history_but_absolute_limit_applies(store: Store) -> None:
    rows = [full_row("r1", T0, latency_ms=900.0, realized_pnl_bps=1.0),
            full_row("r2", T0 + dt.timedelta(hours=1), latency_ms=6000.0, realized_pnl_bps=1.0)]
    insert(store.con, rows)
    db = Forensics(store)
    assert all(c["cause"] != "slow" for c in db.explain("r1")["causes"])
    slow = next(c for c in db.explain("r2")["causes"] if c["cause"] == "slow")
    assert slow["evidence"]["rule"] == "above_abs_limit" and slow["evidence"]["abs_limit_ms"] == 5000


def test_history_is_only_earlier_runs(store: Store) -> None:
    # a later, very slow run must not raise the p90 the earlier run is judged against
    rows = [*history_rows(), full_row("r", T0 + dt.timedelta(days=2), latency_ms=700.0),
            full_row("later", T0 + dt.timedelta(days=3), latency_ms=99_000.0)]
    doc = _explain(store, rows, "r")
    slow = next(c for c in doc["causes"] if c["cause"] == "slow")
    assert slow["evidence"]["agent_p90_ms"] == pytest.approx(671.0)


def test_cost_spike_robust_z(store: Store) -> None:
    rows = [*history_rows(), full_row("r", T0 + dt.timedelta(days=2), cost_usd=0.05,
                                         realized_pnl_bps=-3.0)]
    doc = _explain(store, rows, "r")
    spike = next(c for c in doc["causes"] if c["cause"] == "cost_spike")
    hist = np.array([0.010 + 0.001 * (i % 2) for i in range(20)])
    med = np.median(hist)
    mad = np.median(np.abs(hist - med))
    assert spike["evidence"]["median_usd"] == pytest.approx(med)
    assert spike["evidence"]["mad_usd"] == pytest.approx(mad)
    assert spike["evidence"]["robust_z"] == pytest.approx((0.05 - med) / (1.4826 * mad))
    assert spike["evidence"]["ratio"] == pytest.approx(0.05 / med)


def test_small_cost_rise_is_not_a_spike() -> None:
    h = History(runs=20, cost_runs=20, cost_median=0.0105, cost_mad=0.0005, cost_mean_ad=0.0005)
    row = full_row("r", T0, cost_usd=0.012)  # z = 2.0 < 3.5
    assert all(c["cause"] != "cost_spike" for c in causes(row, h, [], CFG))


def test_constant_cost_history_uses_the_ratio() -> None:
    h = History(runs=20, cost_runs=20, cost_median=0.01, cost_mad=0.0, cost_mean_ad=0.0)
    assert any(c["cause"] == "cost_spike" for c in causes(full_row("r", T0, cost_usd=0.02), h, [], CFG))
    assert all(c["cause"] != "cost_spike" for c in causes(full_row("r", T0, cost_usd=0.012), h, [], CFG))


def test_wrong_errored_and_execution_gap() -> None:
    row = full_row("r", T0, direction="SHORT", gross_bps=-25.0, entry_price=100.0, exit_price=100.25,
                     errors=2, realized_pnl_bps=-60.0, paper_pnl_bps=-35.0, execution_gap_bps=-25.0,
                     pnl_source="external")
    found = {c["cause"]: c["evidence"] for c in causes(row, History(), [], CFG)}
    assert found["wrong"]["gross_bps"] == -25.0 and found["wrong"]["direction"] == "SHORT"
    assert found["errored"] == {"errors": 2}
    assert found["execution_gap"]["execution_gap_bps"] == -25.0
    assert "slow" not in found and "cost_spike" not in found


def test_a_small_gap_and_a_winning_move_fire_nothing() -> None:
    row = full_row("r", T0, gross_bps=12.0, realized_pnl_bps=2.0, paper_pnl_bps=12.0,
                     execution_gap_bps=-10.0)
    assert causes(row, History(), [], CFG) == []


def test_mis_regimed_from_bars_over_the_holding_window(store: Store) -> None:
    con = store.con
    # declared RANGING (mean-revert) but BTC rose in a straight line during the 8h window
    insert_bars(con, "BTCUSDT", T0 - dt.timedelta(days=8), [100.0 + 0.01 * (i % 2) for i in range(8 * 24)])
    insert_bars(con, "BTCUSDT", T0, [100.0 * 1.004**i for i in range(12)])
    insert_alpha(con, "r", T0 + dt.timedelta(minutes=10), regime="RANGING", horizon_s=8 * 3600)
    insert(con, [full_row("r", T0 + dt.timedelta(minutes=10), regime="RANGING",
                                   gross_bps=-50.0, direction="SHORT", realized_pnl_bps=-60.0)])
    doc = Forensics(store).explain("r")
    mis = next(c for c in doc["causes"] if c["cause"] == "mis_regimed")
    leg = mis["evidence"]["legs"][0]
    assert leg["symbol"] == "BTCUSDT"  # "BTC" resolved to the market symbol
    assert leg["realised"] == "TREND" and leg["declared_family"] == "MEAN_REVERT"
    # entry = first bar at/after 00:10 = 01:00; exit = first bar ≥ 09:00: 9 opens, 8 returns
    assert leg["window_start"] == (T0 + dt.timedelta(hours=1)).replace(tzinfo=dt.UTC)
    assert leg["window_end"] == (T0 + dt.timedelta(hours=9)).replace(tzinfo=dt.UTC)
    assert leg["bars"] == 9
    assert leg["reading"]["efficiency_ratio"] == pytest.approx(1.0)
    assert "mis_regimed" in [c["cause"] for c in doc["causes"]]
    assert "RANGING" in doc["because"] and "TREND" in doc["because"]


def test_legs_table_window_wins_over_the_alpha_event(store: Store) -> None:
    con = store.con
    insert_bars(con, "ETHUSDT", T0, [100.0, 101, 100, 101, 100, 101, 100, 101, 100, 120, 140])
    insert_alpha(con, "r", T0, symbol="ETH", regime="TRENDING", horizon_s=8 * 3600)
    insert_rows(con, "legs", [{
        "event_id": "e-r-ETH", "run_id": "r", "ts": T0, "symbol": "ETH", "market_symbol": "ETHUSDT",
        "direction": "LONG", "regime": "TRENDING", "horizon_s": 8 * 3600.0, "interval_s": 3600,
        "entry_ts": T0, "exit_ts": T0 + dt.timedelta(hours=8), "status": "realized",
        "policy_hash": "h"}])
    insert(con, [full_row("r", T0, regime="TRENDING", realized_pnl_bps=-5.0)])
    leg = next(c for c in Forensics(store).explain("r")["causes"] if c["cause"] == "mis_regimed")["evidence"]["legs"][0]
    assert leg["realised"] == "MEAN_REVERT"  # the zigzag of hours 0..8, not the later rally
    assert leg["bars"] == 9


def test_because_sentence() -> None:
    row = full_row("r7", T0, realized_pnl_bps=-40.0, cost_usd=0.5, errors=1, gross_bps=-30.0,
                     direction="LONG")
    found = causes(row, History(), [], CFG)
    assert because(row, found) == ("Run r7 lost $40.50 net (−40.0 bps before $0.50 of inference): "
                                   "the market moved against the LONG (−30.0 bps gross) and it hit 1 error.")
    assert because(full_row("r8", T0, realized_pnl_bps=3.0, cost_usd=0.1), []) == \
        "Run r8 made $2.90 net (+3.0 bps before $0.10 of inference); no failure cause fired."


def test_unknown_run(store: Store) -> None:
    with pytest.raises(NotFoundError, match="unknown run 'nope'"):
        Forensics(store).explain("nope")


def test_run_with_events_but_no_ledger_row(store: Store) -> None:
    insert_alpha(store.con, "r", T0)
    with pytest.raises(NotFoundError, match="reconcile"):
        Forensics(store).explain("r")


def test_explain_document_has_the_ledger_row(store: Store) -> None:
    doc = _explain(store, [full_row("r", T0, realized_pnl_bps=4.0)], "r")
    assert doc["run_id"] == "r" and doc["realized_pnl_bps"] == 4.0 and doc["excluded"] is None
    assert {"waterfall", "causes", "because"} <= set(doc)
