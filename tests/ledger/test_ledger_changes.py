"""`ledger_changes` (migration 0023): each reconcile records the runs whose ledger row it added
or changed, whatever changed it (events, bars appended or corrected, a policy), and only those
— the same whether it rebuilt a few rows or the whole ledger. The expected runs are found by
comparing the ledger before and after in Python, row by row."""

from __future__ import annotations

from typing import Any

from alphatrace.store import Store
from tests.ledger.helpers import add_bars, at, run_reconcile
from tests.ledger.test_incremental_ledger import alpha, ingest, telemetry


def rows(store: Store) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r for r in store.con.execute("SELECT * FROM ledger").fetchall()}


def reconciled(store: Store, **kw: Any) -> tuple[int, set[str], set[str]]:
    """Reconcile; (its seq, the runs it recorded, the runs whose row differs from before)."""
    before = rows(store)
    run_reconcile(store, **kw)
    after = rows(store)
    seq = store.con.execute("SELECT max(seq) FROM reconcile_log").fetchall()[0][0]
    got = [r[0] for r in store.con.execute(
        "SELECT run_id FROM ledger_changes WHERE seq = ?", [seq]).fetchall()]
    assert len(got) == len(set(got))
    assert store.con.execute("SELECT count(*) FROM ledger_changes WHERE seq > ?",
                             [seq]).fetchall() == [(0,)]
    return seq, set(got), {k for k, v in after.items() if before.get(k) != v}


def test_each_reconcile_records_exactly_the_runs_whose_row_changed(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(10)])
    # runs two hours apart (r0..r3 realized at once), r4 open until bars after hour 10 arrive
    ingest(store, [alpha(f"a{i}", f"r{i}", 120 * i, horizon=3600) for i in range(4)]
           + [alpha("a4", "r4", 9 * 60 + 30, horizon=7200)]
           + [telemetry(f"t{i}", f"r{i}", 10.0 * i) for i in range(5)])
    seq, got, want = reconciled(store)
    assert (seq, got, want) == (1, {f"r{i}" for i in range(5)}, {f"r{i}" for i in range(5)})
    assert store.con.execute("SELECT status FROM ledger WHERE run_id = 'r4'").fetchall() == [
        ("open",)]

    # nothing new: the open leg is priced again, to the same row
    assert reconciled(store) == (2, set(), set())

    # a new event of one run
    ingest(store, [telemetry("t9", "r2", 7.0)])
    assert reconciled(store) == (3, {"r2"}, {"r2"})

    # market data alone: r4's exit bar arrives (no event, no file of events)
    add_bars(store, "BTCUSDT", [110.0, 111.0, 112.0], start=at(10))
    assert reconciled(store) == (4, {"r4"}, {"r4"})

    # a corrected bar (history changed, every leg of the symbol repriced): only the runs
    # priced on that bar change
    store.con.execute("UPDATE bars SET open = 150.0 WHERE ts = ?", [at(3)])
    seq, got, want = reconciled(store)
    assert seq == 5 and got == want and want and want <= {"r0", "r1", "r2"}

    # a full rebuild of an unchanged ledger changes no row and records none
    assert reconciled(store, full=True) == (6, set(), set())

    # a policy change reprices everything: the runs whose numbers moved are recorded
    seq, got, want = reconciled(store, text="reconcile: {fee_bps: 9}")
    assert seq == 7 and got == want and len(want) == 5
