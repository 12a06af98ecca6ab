"""ledger.known_ts: when a run's PnL became known (docs/ledger.md). Expected times by hand from
the bar layout: bar i of the fixture opens at T0 + i hours; the default horizon is 8 h."""

from __future__ import annotations

import datetime as dt

import pytest

from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, add_bars, add_pnl, at, run, run_reconcile


@pytest.fixture
def mkt(store: Store) -> Store:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    add_bars(store, "ETHUSDT", [20.0 + i / 2 for i in range(48)])
    return store


def test_a_reconciled_run_is_known_at_its_exit_bar_open(mkt: Store) -> None:
    # signal 00:30 -> entry bar 01:00 -> exit at the first bar at or after 09:00
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30))
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert (r["ts"], r["known_ts"]) == (at(0, 30), at(9))


def test_several_legs_are_known_when_the_last_exit_bar_opens(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30), horizon_s=2 * 3600)   # exits 03:00
    add_alpha(mkt, "r1", "ETH", "SHORT", at(2), horizon_s=5 * 3600)      # exits 07:00
    add_alpha(mkt, "r1", "BTC", "FLAT", at(3))
    run_reconcile(mkt)
    assert run(mkt, "r1")["known_ts"] == at(7)


def test_an_all_flat_run_is_known_at_its_signal(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "FLAT", at(4, 15))
    run_reconcile(mkt)
    assert run(mkt, "r1")["known_ts"] == at(4, 15)


def test_an_open_run_is_not_known(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(45))  # exit bar 54:00 does not exist yet
    run_reconcile(mkt)
    r = run(mkt, "r1")
    assert r["status"] == "open" and r["known_ts"] is None


def test_external_pnl_is_known_at_the_ts_of_the_event_used(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30))
    add_pnl(mkt, "r1", 5.0, revision=0, ts=at(20))
    add_pnl(mkt, "r1", 7.0, revision=2, ts=at(12))   # the winning revision
    add_alpha(mkt, "r2", "BTC", "LONG", at(0, 30))
    add_pnl(mkt, "r2", 1.0, symbol="BTCUSDT", ts=at(11))
    add_pnl(mkt, "r2", 2.0, symbol="ETHUSDT", ts=at(13))  # per-symbol: the latest of both
    run_reconcile(mkt)
    assert run(mkt, "r1")["known_ts"] == at(12)
    assert run(mkt, "r2")["known_ts"] == at(13)


def test_a_pnl_event_without_ts_is_known_when_its_file_arrived(mkt: Store) -> None:
    arrived = dt.datetime(2024, 1, 3, 8)
    mkt.con.execute("INSERT INTO ingested_files (file_id, path, ingested_at) VALUES (5, 'p', ?)",
                    [arrived])
    add_alpha(mkt, "r1", "BTC", "LONG", at(0, 30))
    add_pnl(mkt, "r1", 5.0, file_id=5)
    add_alpha(mkt, "r2", "BTC", "LONG", at(0, 30))       # several events: one without ts
    add_pnl(mkt, "r2", 1.0, symbol="BTCUSDT", ts=at(11))
    add_pnl(mkt, "r2", 2.0, symbol="ETHUSDT", file_id=5)
    run_reconcile(mkt)
    assert run(mkt, "r1")["known_ts"] == arrived
    assert run(mkt, "r2")["known_ts"] == arrived


def test_known_ts_is_never_before_the_signal(mkt: Store) -> None:
    add_alpha(mkt, "r1", "BTC", "LONG", at(6))
    add_pnl(mkt, "r1", 5.0, ts=at(2))  # a pnl event stamped before the signal
    run_reconcile(mkt)
    assert run(mkt, "r1")["known_ts"] == at(6)
