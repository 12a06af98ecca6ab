"""docs/architecture.md §Reconciliation by hand: every expected number below is written out from the formula with the
literal prices of the test, not computed by the code under test."""

from __future__ import annotations

import datetime as dt

import pytest

from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.ledger.helpers import (
    F,
    add_alpha,
    add_bars,
    add_funding,
    add_ticks,
    at,
    leg,
    long_bps,
    run,
    run_reconcile,
    short_bps,
)

TOL = 1e-9
HOURLY = [100.0 + i for i in range(48)]  # bar i opens at T0 + i h with price 100 + i


@pytest.fixture
def btc(store: Store) -> Store:
    add_bars(store, "BTCUSDT", HOURLY)
    return store


def test_long_with_fees_enters_at_next_bar_open(btc: Store) -> None:
    e = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30))
    run_reconcile(btc)
    lg = leg(btc, e)
    assert (lg["entry_ts"], lg["entry_price"]) == (at(1), 101.0)
    assert (lg["exit_ts"], lg["exit_price"]) == (at(9), 109.0)  # 8h default horizon
    assert lg["status"] == "realized"
    assert abs(lg["gross_bps"] - (109 / 101 - 1) * 1e4) < TOL
    assert abs(lg["paper_pnl_bps"] - long_bps(101, 109)) < TOL
    assert abs(lg["fee_bps"] - (long_bps(101, 109) - (109 / 101 - 1) * 1e4)) < TOL
    assert lg["funding_bps"] == 0.0
    assert abs(lg["pnl_usd"] - long_bps(101, 109) * 10_000 / 1e4) < 1e-9
    assert abs(run(btc, "r1")["realized_pnl_bps"] - 781.2925220558) < 1e-6  # bc -l


def test_short_with_fees(btc: Store) -> None:
    e = add_alpha(btc, "r1", "BTCUSDT", "SHORT", at(2, 10), horizon_s=3 * 3600)
    run_reconcile(btc)
    lg = leg(btc, e)
    assert (lg["entry_price"], lg["exit_price"]) == (103.0, 106.0)
    assert abs(lg["gross_bps"] - (1 - 106 / 103) * 1e4) < TOL
    assert abs(lg["paper_pnl_bps"] - short_bps(103, 106)) < TOL
    # the number itself: (1 - 106·1.0005 / (103·0.9995))·1e4
    assert abs(lg["paper_pnl_bps"] - (-301.5585462634)) < 1e-6


def test_without_fees_paper_equals_gross(btc: Store) -> None:
    el = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30))
    es = add_alpha(btc, "r2", "BTCUSDT", "SHORT", at(0, 30))
    run_reconcile(btc, "reconcile: {fee_bps: 0}")
    assert abs(leg(btc, el)["paper_pnl_bps"] - (109 / 101 - 1) * 1e4) < TOL
    assert abs(leg(btc, es)["paper_pnl_bps"] - (1 - 109 / 101) * 1e4) < TOL
    assert leg(btc, el)["fee_bps"] == 0.0


def test_signal_exactly_on_a_bar_open_enters_that_bar(btc: Store) -> None:
    e = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(2))
    run_reconcile(btc)
    assert (leg(btc, e)["entry_ts"], leg(btc, e)["entry_price"]) == (at(2), 102.0)


def test_horizon_not_a_multiple_of_the_bar_size(btc: Store) -> None:
    # entry 01:00, + 90 min = 02:30: no bar opens then, the exit is the 03:00 bar
    e = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 1), horizon_s=5400)
    run_reconcile(btc)
    lg = leg(btc, e)
    assert (lg["exit_ts"], lg["exit_price"]) == (at(3), 103.0)
    assert abs(lg["paper_pnl_bps"] - long_bps(101, 103)) < TOL


def test_missing_bars_exit_waits_for_the_next_available_bar(store: Store) -> None:
    opens: list[float | None] = list(HOURLY)
    opens[9] = opens[10] = None  # 09:00 and 10:00 missing
    opens[4] = None              # a hole where a signal enters
    add_bars(store, "BTCUSDT", opens)
    e1 = add_alpha(store, "r1", "BTCUSDT", "LONG", at(0, 30))     # exit due 09:00
    e2 = add_alpha(store, "r2", "BTCUSDT", "SHORT", at(3, 30), horizon_s=3600)  # entry due 04:00
    run_reconcile(store)
    assert (leg(store, e1)["exit_ts"], leg(store, e1)["exit_price"]) == (at(11), 111.0)
    assert abs(leg(store, e1)["paper_pnl_bps"] - long_bps(101, 111)) < TOL
    l2 = leg(store, e2)
    assert (l2["entry_ts"], l2["entry_price"], l2["exit_ts"], l2["exit_price"]) == (
        at(5), 105.0, at(6), 106.0)


def test_holes_in_15_minute_bars(store: Store) -> None:
    opens: list[float | None] = [1000.0 + i for i in range(200)]
    for i in (9, 10, 11, 40):  # 02:15–02:45 and 10:00 missing
        opens[i] = None
    add_bars(store, "ETHUSDT", opens, interval_s=900)
    e = add_alpha(store, "r1", "ETHUSDT", "LONG", at(2, 1), horizon_s=8 * 3600 - 15 * 60)
    run_reconcile(store)
    lg = leg(store, e)
    # entry slot 02:15 is missing -> 03:00 (bar 12); exit 03:00 + 7h45 = 10:45 (bar 43)
    assert (lg["entry_ts"], lg["entry_price"]) == (at(3), 1012.0)
    assert (lg["exit_ts"], lg["exit_price"]) == (at(10, 45), 1043.0)


def test_funding_boundaries_entry_excluded_exit_included(btc: Store) -> None:
    add_funding(btc, "BTCUSDT", [
        (at(1), 0.01, 50.0),      # exactly at entry: excluded
        (at(5), 0.0002, 104.0),   # inside
        (at(9), -0.0003, 110.0),  # exactly at exit: included
        (at(10), 0.05, 100.0),    # after exit: excluded
    ])
    el = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30))
    es = add_alpha(btc, "r2", "BTCUSDT", "SHORT", at(0, 30))
    run_reconcile(btc)
    paid = 0.0002 * 104.0 + -0.0003 * 110.0          # Σ rate·mark over (01:00, 09:00]
    long_funding = -1 * paid / 101.0 * 1e4           # −d · Σ / entry · 1e4
    assert abs(leg(btc, el)["funding_bps"] - long_funding) < TOL
    assert abs(leg(btc, es)["funding_bps"] + long_funding) < TOL
    assert abs(leg(btc, el)["paper_pnl_bps"] - (long_bps(101, 109) + long_funding)) < TOL
    assert abs(leg(btc, es)["paper_pnl_bps"] - (short_bps(101, 109) - long_funding)) < TOL
    # positive rate: longs pay shorts
    assert long_funding > 0  # the net of this window is negative (-0.0122), longs receive


def test_positive_funding_rate_longs_pay(btc: Store) -> None:
    add_funding(btc, "BTCUSDT", [(at(8), 0.001, 100.0)])
    e = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30))
    run_reconcile(btc)
    assert abs(leg(btc, e)["funding_bps"] - (-0.001 * 100.0 / 101.0 * 1e4)) < TOL


def test_missing_mark_price_falls_back_to_the_bar_open(btc: Store) -> None:
    add_funding(btc, "BTCUSDT", [(at(8), 0.0001, None)])  # bar 08:00 opens at 108
    e = add_alpha(btc, "r1", "BTCUSDT", "SHORT", at(0, 30))
    run_reconcile(btc)
    assert abs(leg(btc, e)["funding_bps"] - (0.0001 * 108.0 / 101.0 * 1e4)) < TOL


def test_funding_off_the_hour_uses_the_same_rule(btc: Store) -> None:
    add_funding(btc, "BTCUSDT", [(at(4, 30), 0.0004, 99.0), (at(9, 0), 0.0001, 101.0),
                                 (at(9, 30), 0.5, 1.0)])
    e = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30))
    run_reconcile(btc)
    expected = -(0.0004 * 99.0 + 0.0001 * 101.0) / 101.0 * 1e4
    assert abs(leg(btc, e)["funding_bps"] - expected) < TOL


def test_funding_can_be_switched_off_per_policy_and_agent(btc: Store) -> None:
    add_funding(btc, "BTCUSDT", [(at(5), 0.001, 100.0)])
    a = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30), agent="A")
    b = add_alpha(btc, "r2", "BTCUSDT", "LONG", at(0, 30), agent="B")
    run_reconcile(btc, "reconcile: {agents: {B: {include_funding: false}}}")
    assert leg(btc, a)["funding_bps"] != 0.0
    assert leg(btc, b)["funding_bps"] == 0.0
    run_reconcile(btc, "reconcile: {include_funding: false}")
    assert leg(btc, a)["funding_bps"] == 0.0


def test_lower_case_directions_and_bare_symbols_through_ingest(btc: Store) -> None:
    ingest_events(btc, [
        {"run_id": "r1", "agent": "A", "ts": "2024-01-01T00:30:00Z", "symbol": "btc",
         "direction": "long"},
        {"run_id": "r2", "agent": "A", "ts": "2024-01-01T00:30:00Z", "symbol": "BTC",
         "direction": "Short", "horizon": "2h", "size_usd": 2500},
    ])
    run_reconcile(btc)
    r1, r2 = run(btc, "r1"), run(btc, "r2")
    assert (r1["direction"], r1["symbols"], r1["status"]) == ("LONG", "BTCUSDT", "realized")
    assert abs(r1["paper_pnl_bps"] - long_bps(101, 109)) < TOL
    assert abs(r2["paper_pnl_bps"] - short_bps(101, 103)) < TOL
    assert abs(r2["pnl_usd"] - short_bps(101, 103) * 2500 / 1e4) < 1e-9


def test_aliases_stored_and_from_policy(btc: Store) -> None:
    btc.con.execute("INSERT INTO symbol_aliases VALUES ('XBT', 'BTCUSDT')")
    a = add_alpha(btc, "r1", "XBT", "LONG", at(0, 30))
    b = add_alpha(btc, "r2", "BITCOIN", "LONG", at(0, 30))
    run_reconcile(btc)
    assert leg(btc, a)["market_symbol"] == "BTCUSDT"
    assert leg(btc, b)["status"] == "unpriced"
    assert "unknown symbol BITCOIN" in leg(btc, b)["reason"]
    run_reconcile(btc, "market: {aliases: {BITCOIN: BTCUSDT}}")
    assert (leg(btc, b)["market_symbol"], leg(btc, b)["status"]) == ("BTCUSDT", "realized")


def test_ambiguous_bare_symbol_is_unpriced_with_the_candidates(btc: Store) -> None:
    add_bars(btc, "BTCBUSD", HOURLY)
    e = add_alpha(btc, "r1", "BTC", "LONG", at(0, 30))
    run_reconcile(btc)
    lg = leg(btc, e)
    assert lg["status"] == "unpriced"
    assert "ambiguous symbol BTC" in lg["reason"] and "BTCBUSD, BTCUSDT" in lg["reason"]
    assert run(btc, "r1")["status"] == "unpriced"


def test_flat_opens_nothing(btc: Store) -> None:
    e = add_alpha(btc, "r1", "BTCUSDT", "FLAT", at(0, 30))
    run_reconcile(btc)
    lg = leg(btc, e)
    assert (lg["status"], lg["paper_pnl_bps"], lg["entry_price"], lg["pnl_usd"]) == (
        "realized", 0.0, None, 0.0)
    r = run(btc, "r1")
    assert (r["status"], r["direction"], r["realized_pnl_bps"], r["size_usd"]) == (
        "realized", "FLAT", 0.0, 0.0)


def test_signal_past_the_end_of_the_data_stays_open(btc: Store) -> None:
    e_none = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(60))        # no bar after it at all
    e_half = add_alpha(btc, "r2", "BTCUSDT", "SHORT", at(44, 30))   # entry 45:00, exit 53:00
    run_reconcile(btc)
    l1, l2 = leg(btc, e_none), leg(btc, e_half)
    assert (l1["status"], l1["entry_price"], l1["exit_price"]) == ("open", None, None)
    assert (l2["status"], l2["entry_price"], l2["exit_price"]) == ("open", 145.0, None)
    assert l2["paper_pnl_bps"] is None and l2["pnl_usd"] is None
    assert "awaiting the exit bar" in l2["reason"] and "2024-01-03T05:00:00Z" in l2["reason"]
    r2 = run(btc, "r2")
    assert (r2["status"], r2["realized_pnl_bps"], r2["pnl_usd"]) == ("open", None, None)
    # the bars arrive: the open leg is priced on the next reconcile
    add_bars(btc, "BTCUSDT", [200.0 + i for i in range(12)], start=at(48))
    run_reconcile(btc)
    l2 = leg(btc, e_half)
    assert (l2["status"], l2["exit_ts"], l2["exit_price"]) == ("realized", at(53), 205.0)
    assert abs(l2["paper_pnl_bps"] - short_bps(145, 205)) < TOL


def test_unpriceable_signals_carry_a_reason(btc: Store) -> None:
    no_ts = add_alpha(btc, "r1", "BTCUSDT", "LONG", None)
    early = add_alpha(btc, "r2", "BTCUSDT", "LONG", dt.datetime(2023, 12, 31, 22, 59))
    just_before = add_alpha(btc, "r3", "BTCUSDT", "LONG", dt.datetime(2023, 12, 31, 23, 30))
    run_reconcile(btc)
    assert (leg(btc, no_ts)["status"], leg(btc, no_ts)["reason"]) == ("unpriced",
                                                                      "signal has no ts")
    assert leg(btc, early)["reason"] == ("signal before the first bar of BTCUSDT (1h bars from "
                                         "2024-01-01T00:00:00Z): its entry bar is unknown")
    # within one bar of the data: enters the first bar
    assert (leg(btc, just_before)["status"], leg(btc, just_before)["entry_price"]) == (
        "realized", 100.0)


def test_a_signal_exactly_one_bar_before_the_first_bar_is_unpriced(btc: Store) -> None:
    # 1h bars from 2024-01-01 00:00. A signal at 2023-12-31 23:00 would enter the 23:00 bar,
    # which we do not have: its entry bar is unknown (not the 00:00 bar, an hour late).
    # One microsecond later the 23:00 bar (if it existed) opened before the signal, so the
    # first bar at or after it is 00:00 @ 100.
    on = add_alpha(btc, "r1", "BTCUSDT", "LONG", dt.datetime(2023, 12, 31, 23))
    after = add_alpha(btc, "r2", "BTCUSDT", "LONG",
                      dt.datetime(2023, 12, 31, 23, 0, 0, 1))
    run_reconcile(btc)
    assert (leg(btc, on)["status"], leg(btc, on)["entry_price"]) == ("unpriced", None)
    assert "before the first bar of BTCUSDT" in leg(btc, on)["reason"]
    assert run(btc, "r1")["status"] == "unpriced"
    assert (leg(btc, after)["status"], leg(btc, after)["entry_ts"],
            leg(btc, after)["entry_price"]) == ("realized", at(0), 100.0)


def test_ticks_a_signal_exactly_on_the_first_tick_enters_it(store: Store) -> None:
    # ticks have no bar length: only a signal strictly before the first tick is unpriced
    add_ticks(store, "SOLUSDT", [(at(1), 50.0), (at(2), 51.0), (at(12), 52.0)])
    on = add_alpha(store, "r1", "SOLUSDT", "LONG", at(1))
    before = add_alpha(store, "r2", "SOLUSDT", "LONG", at(0, 59))
    run_reconcile(store)
    assert (leg(store, on)["status"], leg(store, on)["entry_price"]) == ("realized", 50.0)
    assert leg(store, before)["status"] == "unpriced"


def test_policy_defaults_and_per_agent_overrides(btc: Store) -> None:
    text = """
reconcile:
  fee_bps: 10
  horizon: 2h
  size_usd: 4000
  agents:
    Fast: {fee_bps: 1, horizon: 90m, size_usd: 100}
"""
    d = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30), agent="Slow")
    o = add_alpha(btc, "r2", "BTCUSDT", "LONG", at(0, 30), agent="Fast")
    ev = add_alpha(btc, "r3", "BTCUSDT", "LONG", at(0, 30), agent="Fast", horizon_s=3600,
                   size_usd=7)
    run_reconcile(btc, text)
    assert abs(leg(btc, d)["paper_pnl_bps"] - long_bps(101, 103, 10 / 1e4)) < TOL
    assert abs(leg(btc, d)["pnl_usd"] - long_bps(101, 103, 10 / 1e4) * 4000 / 1e4) < 1e-9
    # Fast: 90m -> 02:30 -> 03:00 bar, 1 bp a side, 100 USD
    assert abs(leg(btc, o)["paper_pnl_bps"] - long_bps(101, 103, 1 / 1e4)) < TOL
    assert leg(btc, o)["size_usd"] == 100.0
    # the event's own horizon and size win over the agent's
    assert leg(btc, ev)["exit_price"] == 102.0 and leg(btc, ev)["size_usd"] == 7.0


def test_policy_hash_is_stamped_and_a_new_policy_reprices(btc: Store) -> None:
    e = add_alpha(btc, "r1", "BTCUSDT", "LONG", at(0, 30))
    rep1 = run_reconcile(btc)
    assert leg(btc, e)["policy_hash"] == rep1.policy_hash == run(btc, "r1")["policy_hash"]
    rep2 = run_reconcile(btc, "reconcile: {fee_bps: 0}")
    assert rep2.policy_hash != rep1.policy_hash and rep2.full and rep2.priced == 1
    assert leg(btc, e)["policy_hash"] == rep2.policy_hash
    # the hash is of the reconcile section only: other sections do not change it
    rep3 = run_reconcile(btc, "reconcile: {fee_bps: 0}\ngates: {min_runs: 9}")
    assert rep3.policy_hash == rep2.policy_hash and not rep3.full


def test_finest_interval_unless_the_policy_names_one(store: Store) -> None:
    add_bars(store, "BTCUSDT", HOURLY)
    add_bars(store, "BTCUSDT", [100.0 + i / 4 + 0.01 for i in range(48 * 4)], interval_s=900)
    add_bars(store, "ETHUSDT", [10.0 + i for i in range(48 * 4)], interval_s=900)
    e = add_alpha(store, "r1", "BTCUSDT", "LONG", at(0, 20))
    eth = add_alpha(store, "r2", "ETHUSDT", "LONG", at(0, 20))
    run_reconcile(store)
    assert (leg(store, e)["interval_s"], leg(store, e)["entry_price"]) == (900, 100.51)
    run_reconcile(store, "reconcile: {bar_interval: 1h}")
    assert (leg(store, e)["interval_s"], leg(store, e)["entry_price"]) == (3600, 101.0)
    assert leg(store, eth)["status"] == "unpriced"
    assert "no 3600s bars for ETHUSDT" in leg(store, eth)["reason"]


def test_irregular_timestamps_and_ticks_are_priced_by_the_same_rule(store: Store) -> None:
    ticks = [(at(0, 7), 50.0), (at(0, 41), 51.0), (at(2, 3), 52.0), (at(8, 59), 53.0),
             (at(9, 12), 54.0), (at(9, 30), 55.0)]
    add_ticks(store, "SOLUSDT", ticks)
    e = add_alpha(store, "r1", "SOLUSDT", "SHORT", at(0, 8))
    run_reconcile(store)
    lg = leg(store, e)
    # entry: first tick at/after 00:08 = 00:41 @51; exit: first at/after 08:41 = 08:59 @53
    assert (lg["entry_ts"], lg["entry_price"], lg["exit_ts"], lg["exit_price"]) == (
        at(0, 41), 51.0, at(8, 59), 53.0)
    assert abs(lg["paper_pnl_bps"] - short_bps(51, 53)) < TOL
    assert F == 0.0005


def test_a_year_long_hole_in_minute_bars_is_no_special_case(store: Store) -> None:
    # 1-minute bars 00:00–00:04, then nothing for a year (≈525,600 missing slots), then 3 more.
    later = at(24 * 366)
    add_ticks(store, "ETHUSDT", [(at(0, i), 1000.0 + i) for i in range(5)]
              + [(later + dt.timedelta(minutes=i), 2000.0 + i) for i in range(3)], interval_s=60)
    e = add_alpha(store, "r1", "ETHUSDT", "LONG", at(0, 3), horizon_s=24 * 3600)
    e2 = add_alpha(store, "r2", "ETHUSDT", "SHORT", at(0, 4) + dt.timedelta(seconds=1),
                   horizon_s=60)
    run_reconcile(store)
    lg = leg(store, e)
    # entry 00:03 @1003; exit due a day later, in the hole -> first bar after it @2000
    assert (lg["entry_ts"], lg["entry_price"], lg["exit_ts"], lg["exit_price"]) == (
        at(0, 3), 1003.0, later, 2000.0)
    l2 = leg(store, e2)
    # entry due 00:04:01, in the hole -> 2000 at `later`; exit at or after later + 1 min -> 2001
    assert (l2["entry_ts"], l2["entry_price"], l2["exit_ts"], l2["exit_price"]) == (
        later, 2000.0, later + dt.timedelta(minutes=1), 2001.0)
    assert abs(l2["paper_pnl_bps"] - short_bps(2000, 2001)) < TOL


def test_each_leg_and_run_says_which_bar_interval_priced_it(store: Store) -> None:
    # BTCUSDT has 1h and 15m bars (the 15m opens are 0.01 above the hourly grid), ETHUSDT 1h.
    add_bars(store, "BTCUSDT", HOURLY)
    add_bars(store, "BTCUSDT", [100.0 + i / 4 + 0.01 for i in range(48 * 4)], interval_s=900)
    add_bars(store, "ETHUSDT", [10.0 + i for i in range(48)])
    btc = add_alpha(store, "r1", "BTCUSDT", "LONG", at(0, 20))
    add_alpha(store, "r2", "BTCUSDT", "LONG", at(0, 20))
    add_alpha(store, "r2", "ETHUSDT", "SHORT", at(0, 20))
    flat = add_alpha(store, "r3", "BTCUSDT", "FLAT", at(0, 20))
    unknown = add_alpha(store, "r4", "XRPUSDT", "LONG", at(0, 20))
    waiting = add_alpha(store, "r5", "ETHUSDT", "LONG", at(44, 30))  # exit due 2024-01-03 05:00
    no_bar = add_alpha(store, "r6", "ETHUSDT", "LONG", at(60))
    run_reconcile(store)
    # the finest: 15m; entry at the 00:30 bar, 100 + 2/4 + 0.01
    assert (leg(store, btc)["bar_interval"], leg(store, btc)["entry_price"]) == ("15m", 100.51)
    assert [leg(store, e)["bar_interval"] for e in (flat, unknown, waiting, no_bar)] == [
        None, None, "1h", "1h"]
    assert leg(store, waiting)["reason"] == (
        "awaiting the exit bar of ETHUSDT at or after 2024-01-03T05:00:00Z (1h bars)")
    assert leg(store, no_bar)["reason"] == "no bar of ETHUSDT at or after the signal yet (1h bars)"
    runs = {r: run(store, r)["bar_interval"] for r in ("r1", "r2", "r3", "r4", "r5", "r6")}
    assert runs == {"r1": "15m", "r2": "15m,1h", "r3": None, "r4": None, "r5": "1h", "r6": "1h"}
    assert run(store, "r5")["reason"] == leg(store, waiting)["reason"]
    # the same run on the hourly bars says so
    run_reconcile(store, "reconcile: {bar_interval: 1h}")
    assert (leg(store, btc)["bar_interval"], leg(store, btc)["entry_price"]) == ("1h", 101.0)
    assert (run(store, "r1")["bar_interval"], run(store, "r2")["bar_interval"]) == ("1h", "1h")


def test_a_flat_event_without_ts_is_unpriced_not_realized_at_zero(btc: Store) -> None:
    # FLAT opens nothing, but a signal without a time cannot be placed in the data at all:
    # the rule for every signal without ts comes first, so it is unpriced, and so is its run.
    e = add_alpha(btc, "r1", "BTCUSDT", "FLAT", None)
    timed = add_alpha(btc, "r2", "BTCUSDT", "FLAT", at(0, 30))
    run_reconcile(btc)
    lg = leg(btc, e)
    assert (lg["status"], lg["reason"], lg["paper_pnl_bps"], lg["pnl_usd"]) == (
        "unpriced", "signal has no ts", None, None)
    r = run(btc, "r1")
    assert (r["status"], r["realized_pnl_bps"], r["pnl_usd"], r["reason"]) == (
        "unpriced", None, None, "signal has no ts")
    assert (leg(btc, timed)["status"], run(btc, "r2")["realized_pnl_bps"]) == ("realized", 0.0)
