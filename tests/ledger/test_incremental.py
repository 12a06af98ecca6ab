"""Incremental reconcile: idempotent, prices only what it must, and always equals a rebuild from
scratch — checked after every step of random histories (new signals, bars appended, holes
back-filled, history edited, funding appended or back-filled, aliases, new markets, policy
changes)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.store import Store
from tests.ledger.helpers import (
    add_alpha,
    add_bars,
    add_funding,
    add_pnl,
    add_telemetry,
    at,
    leg,
    run_reconcile,
)

POLICIES = [None, "reconcile: {fee_bps: 2}", "reconcile: {horizon: 3h, agents: {B: {fee_bps: 0}}}"]


def snapshot(store: Store) -> tuple[list[Any], list[Any]]:
    # each fetched before the next query (`execute` returns the connection: see
    # test_incremental_ledger.snapshot)
    legs = store.con.execute("SELECT * EXCLUDE (file_id, line) FROM legs ORDER BY event_id"
                             ).fetchall()
    return legs, store.con.execute("SELECT * FROM ledger ORDER BY run_id").fetchall()


def test_legs_waiting_for_market_data_are_priced_again_only_when_it_comes(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(24)])
    done = add_alpha(store, "r1", "BTC", "LONG", at(1))
    waiting = add_alpha(store, "r2", "BTC", "LONG", at(20))  # open: exits at 28:00
    doge = add_alpha(store, "r3", "DOGE", "LONG", at(1))     # unpriced: no DOGE market
    first = run_reconcile(store)
    before = snapshot(store)
    fp = leg(store, done)["fingerprint"]
    again = run_reconcile(store)  # nothing new: no leg priced again
    assert (first.priced, again.priced, again.legs, again.full) == (3, 0, 3, False)
    assert snapshot(store) == before
    assert leg(store, done)["fingerprint"] == fp
    add_alpha(store, "r4", "BTC", "SHORT", at(2))  # a new signal alone: only it is priced
    assert run_reconcile(store).priced == 1
    assert (leg(store, waiting)["status"], leg(store, doge)["status"]) == ("open", "unpriced")
    late = add_alpha(store, "r5", "BTC", "LONG", at(30))  # open, with no entry bar yet
    assert run_reconcile(store).priced == 1
    add_bars(store, "BTCUSDT", [124.0 + i for i in range(4)], start=at(24))
    assert run_reconcile(store).priced == 0  # bars up to 27:00: r2 waits for 28:00, r5 for 30:00
    add_bars(store, "BTCUSDT", [128.0, 129.0], start=at(28))
    rep = run_reconcile(store)  # r2's exit bar: r2 alone, not the realized legs, not r5
    assert (rep.priced, leg(store, waiting)["status"]) == (1, "realized")
    assert leg(store, waiting)["exit_price"] == 128.0
    add_bars(store, "BTCUSDT", [130.0], start=at(30))
    rep = run_reconcile(store)  # r5's entry bar: open still, with its entry
    assert (rep.priced, leg(store, late)["status"], leg(store, late)["entry_price"]) == (
        1, "open", 130.0)
    add_bars(store, "DOGEUSDT", [0.1 * (1 + i) for i in range(12)])  # a new market: priced
    rep = run_reconcile(store)
    assert (rep.priced, leg(store, doge)["status"]) == (1, "realized")
    incremental = snapshot(store)
    run_reconcile(store, full=True)
    assert snapshot(store) == incremental


def test_an_unpriced_leg_names_the_markets_as_they_are_now(store: Store) -> None:
    """An ambiguous symbol's leg lists its candidates: a market imported later adds one, and
    the leg is priced again although its own (unresolved) symbol did not move."""
    add_bars(store, "SOLUSDT", [20.0 + i for i in range(12)])
    add_bars(store, "SOLUSDC", [20.0 + i for i in range(12)])
    sol = add_alpha(store, "r1", "SOL", "LONG", at(1))
    run_reconcile(store)
    assert leg(store, sol)["reason"].startswith("ambiguous symbol SOL (matches SOLUSDC, SOLUSDT)")
    add_bars(store, "SOLBTC", [0.01] * 12)
    assert run_reconcile(store).priced == 1
    assert leg(store, sol)["reason"].startswith(
        "ambiguous symbol SOL (matches SOLBTC, SOLUSDC, SOLUSDT)")


def test_appended_bars_do_not_reprice_realized_legs_but_edits_do(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(24)])
    add_alpha(store, "r1", "BTC", "LONG", at(1))
    run_reconcile(store)
    add_bars(store, "BTCUSDT", [200.0], start=at(24))
    assert run_reconcile(store).priced == 0
    store.con.execute("UPDATE bars SET open = 1 WHERE ts = ?", [at(3)])  # history, not the leg's
    assert run_reconcile(store).priced == 1


def test_appended_funding_reprices_only_legs_it_can_reach(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    add_funding(store, "BTCUSDT", [(at(2), 0.001, 100.0)])
    early = add_alpha(store, "r1", "BTC", "LONG", at(0, 30), horizon_s=3600)  # exits 02:00
    late = add_alpha(store, "r2", "BTC", "LONG", at(10))                     # exits 18:00
    run_reconcile(store)
    add_funding(store, "BTCUSDT", [(at(16), 0.002, 120.0)])
    rep = run_reconcile(store)
    assert rep.priced == 1
    assert abs(leg(store, late)["funding_bps"] - (-0.002 * 120.0 / 110.0 * 1e4)) < 1e-9
    assert abs(leg(store, early)["funding_bps"] - (-0.001 * 100.0 / 101.0 * 1e4)) < 1e-9


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    ops = st.one_of(
        st.tuples(st.just("signals"), st.lists(st.tuples(
            st.sampled_from(["BTC", "ETHUSDT", "XBT", "SOL"]),
            st.sampled_from(["LONG", "SHORT", "FLAT", "long"]),
            st.integers(-180, 60 * 60), st.sampled_from([None, 1800, 5400, 36_000]),
            st.sampled_from(["A", "B"])), min_size=1, max_size=6)),
        st.tuples(st.just("append"), st.sampled_from(["BTCUSDT", "ETHUSDT"])),
        st.tuples(st.just("backfill"), st.sampled_from(["BTCUSDT", "ETHUSDT"])),
        st.tuples(st.just("edit"), st.integers(0, 40)),
        st.tuples(st.just("funding_after"), st.integers(1, 30)),
        st.tuples(st.just("funding_before"), st.integers(0, 20)),
        st.tuples(st.just("alias"), st.just(None)),
        # a new market: SOL resolves, then is ambiguous among 2 or 3; BTC becomes ambiguous
        st.tuples(st.just("market"), st.sampled_from(["SOLUSDT", "SOLUSDC", "SOLBTC", "BTCUSDC"])),
        st.tuples(st.just("policy"), st.integers(0, len(POLICIES) - 1)),
        st.tuples(st.just("pnl"), st.tuples(st.integers(0, 9), st.floats(-50, 50))),
        st.tuples(st.just("telemetry"), st.integers(0, 9)),
    )
    return draw(st.lists(ops, min_size=1, max_size=6))


@pytest.mark.slow
@settings(max_examples=10)
@given(history=histories())
def test_incremental_equals_a_rebuild_after_every_step(history: list[tuple[str, Any]]) -> None:
    with Store(":memory:") as store:
        # 1h BTC with holes, 15m ETH; both grow as the history appends bars
        add_bars(store, "BTCUSDT", [None if i in (5, 6, 20) else 100.0 + i for i in range(30)])
        add_bars(store, "ETHUSDT", [50.0 + i / 8 for i in range(30 * 4)], interval_s=900)
        ends = {"BTCUSDT": 30 * 3600, "ETHUSDT": 30 * 3600}
        fund_last = 8
        add_funding(store, "BTCUSDT", [(at(h), 0.0001 * h, 100.0 + h) for h in (0, 8)])
        policy: str | None = None
        markets: set[str] = set()
        n = 0
        for op, arg in history:
            if op == "signals":
                for sym, d, minute, hz, agent in arg:
                    n += 1
                    add_alpha(store, f"r{n % 10}", sym, d, at(0, minute), horizon_s=hz,
                              agent=agent)
            elif op == "append":
                iv = 3600 if arg == "BTCUSDT" else 900
                add_bars(store, arg, [300.0 + ends[arg] / 3600], interval_s=iv,
                         start=at(0, ends[arg] / 60))
                ends[arg] += iv
            elif op == "backfill" and arg == "BTCUSDT":
                store.con.execute("INSERT OR IGNORE INTO bars (symbol, interval_s, ts, open) "
                                  "VALUES ('BTCUSDT', 3600, ?, 777)", [at(5)])
            elif op == "edit":
                store.con.execute("UPDATE bars SET open = open * 1.01 WHERE ts = ?", [at(arg)])
            elif op == "funding_after":
                fund_last += arg
                # OR REPLACE: `funding_before` may already have written that hour
                store.con.execute("INSERT OR REPLACE INTO funding VALUES ('BTCUSDT', ?, 0.0003, "
                                  "NULL)", [at(fund_last)])
            elif op == "funding_before":
                store.con.execute("INSERT OR REPLACE INTO funding VALUES ('BTCUSDT', ?, -0.001, 90)",
                                  [at(arg)])
            elif op == "market" and arg not in markets:
                markets.add(arg)
                add_bars(store, arg, [20.0 + i for i in range(30)])
            elif op == "alias":
                store.con.execute("INSERT OR IGNORE INTO symbol_aliases VALUES ('XBT', 'BTCUSDT')")
            elif op == "policy":
                policy = POLICIES[arg]
            elif op == "pnl":
                add_pnl(store, f"r{arg[0]}", arg[1], revision=n)
            elif op == "telemetry":
                add_telemetry(store, f"r{arg}", latency_ms=10.0 * arg, cost_usd=0.01)
            run_reconcile(store, policy)
            incremental = snapshot(store)
            run_reconcile(store, policy, full=True)
            assert snapshot(store) == incremental, (op, arg)


def test_funding_sums_do_not_depend_on_later_settlements(store: Store) -> None:
    """A leg kept from an earlier reconcile must equal a re-priced one to the last bit, however
    many settlements were appended since (the running sum is exact decimal arithmetic)."""
    add_bars(store, "BTCUSDT", [100.0 + i * 0.01 for i in range(24 * 40)])
    add_funding(store, "BTCUSDT", [(at(h), 0.0001 * ((h * 7) % 13 - 6) / 3, 100.0 + h / 7)
                                   for h in range(0, 24, 8)])
    e = add_alpha(store, "r1", "BTC", "SHORT", at(0, 30), horizon_s=14 * 3600)  # exits 15:00
    run_reconcile(store)
    kept = leg(store, e)["funding_bps"]
    add_funding(store, "BTCUSDT", [(at(h), 0.0003 * ((h * 5) % 11 - 5) / 7, 90.0 + h / 3)
                                   for h in range(24, 24 * 39, 1)])
    assert run_reconcile(store).priced == 0
    run_reconcile(store, full=True)
    assert leg(store, e)["funding_bps"] == kept
