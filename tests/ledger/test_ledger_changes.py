"""`ledger_changes` (migrations 0023, 0028): each reconcile records the runs whose ledger row it
added, changed or removed, whatever changed it (events, bars appended or corrected, a policy),
and only those — the same whether it rebuilt a few rows or the whole ledger — each with its
agent, strategy and knowledge time before and after, when the run counts (has a knowledge
time) on one side at least: a change that counts on neither concerns no window; `exclusions
apply` records the runs whose exclusion changed. The expected runs and sides are found by
comparing the ledger before and after in Python, row by row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alphatrace.api import Database
from alphatrace.store import Store
from tests.ledger.helpers import add_bars, at, run_reconcile
from tests.ledger.test_incremental_ledger import alpha, ingest, telemetry

SIDES = "old_agent, old_strategy, old_known_ts, new_agent, new_strategy, new_known_ts"


def rows(store: Store) -> dict[str, dict[str, Any]]:
    cur = store.con.execute("SELECT * FROM ledger")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def side(row: dict[str, Any] | None) -> tuple[Any, ...]:
    """A run's (agent, strategy, knowledge time when it can count) in a ledger row (None: no
    row)."""
    if row is None:
        return (None, None, None)
    counts = row["realized_pnl_bps"] is not None and row["ts"] is not None
    return (row["agent"], row["strategy"], (row["known_ts"] or row["ts"]) if counts else None)


def recorded(store: Store, seq: int) -> dict[str, tuple[Any, ...]]:
    got = store.con.execute(f"SELECT run_id, {SIDES} FROM ledger_changes WHERE seq = ?",
                            [seq]).fetchall()
    assert len(got) == len({r[0] for r in got})
    return {r[0]: tuple(r[1:]) for r in got}


def reconciled(store: Store, **kw: Any) -> tuple[int, set[str], set[str]]:
    """Reconcile; (its seq, the runs it recorded, the runs whose row differs from before or
    is gone and counts on a side), after checking each recorded run's sides against its rows
    before and after, and that the report counts those runs."""
    before = rows(store)
    report = run_reconcile(store, **kw)
    after = rows(store)
    seq = store.con.execute("SELECT max(seq) FROM reconcile_log").fetchall()[0][0]
    got = recorded(store, seq)
    assert store.con.execute("SELECT count(*) FROM ledger_changes WHERE seq > ?",
                             [seq]).fetchall() == [(0,)]
    for run_id, sides in got.items():
        assert sides == (*side(before.get(run_id)), *side(after.get(run_id))), run_id
    changed = ({k for k, v in after.items() if before.get(k) != v}
               | (before.keys() - after.keys()))
    expected = {k for k in changed
                if side(before.get(k))[2] is not None or side(after.get(k))[2] is not None}
    assert report.changes == len(expected)  # what the live pipeline reads off the report
    return seq, set(got), expected


def test_each_reconcile_records_exactly_the_runs_whose_row_changed(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(10)])
    # runs two hours apart (r0..r3 realized at once), r4 open until bars after hour 10 arrive
    ingest(store, [alpha(f"a{i}", f"r{i}", 120 * i, horizon=3600) for i in range(4)]
           + [alpha("a4", "r4", 9 * 60 + 30, horizon=7200)]
           + [telemetry(f"t{i}", f"r{i}", 10.0 * i) for i in range(5)])
    seq, got, want = reconciled(store)
    # r4 is open: no knowledge time, no window can see its row yet
    assert (seq, got, want) == (1, {f"r{i}" for i in range(4)}, {f"r{i}" for i in range(4)})
    assert store.con.execute("SELECT status FROM ledger WHERE run_id = 'r4'").fetchall() == [
        ("open",)]

    # nothing new: the open leg is priced again, to the same row
    assert reconciled(store) == (2, set(), set())

    # a new event of one run
    ingest(store, [telemetry("t9", "r2", 7.0)])
    assert reconciled(store) == (3, {"r2"}, {"r2"})

    # runs new to the ledger only (no row replaced: `changes.record_added`), one realized;
    # r6, telemetry alone, counts for no window
    ingest(store, [alpha("a5", "r5", 60, horizon=3600), telemetry("t5", "r5", 3.0),
                   telemetry("t6", "r6", 4.0)])
    assert reconciled(store) == (4, {"r5"}, {"r5"})
    assert rows(store)["r6"]["status"] == "no_signal"
    assert recorded(store, 4)["r5"][:3] == (None, None, None)

    # market data alone: r4's exit bar arrives (no event, no file of events)
    add_bars(store, "BTCUSDT", [110.0, 111.0, 112.0], start=at(10))
    assert reconciled(store) == (5, {"r4"}, {"r4"})

    # a corrected bar (history changed, every leg of the symbol repriced): only the runs
    # priced on that bar change
    store.con.execute("UPDATE bars SET open = 150.0 WHERE ts = ?", [at(3)])
    seq, got, want = reconciled(store)
    assert seq == 6 and got == want and want and want <= {"r0", "r1", "r2"}

    # a full rebuild of an unchanged ledger changes no row and records none
    assert reconciled(store, full=True) == (7, set(), set())

    # a policy change reprices everything: the runs whose numbers moved are recorded
    seq, got, want = reconciled(store, text="reconcile: {fee_bps: 9}")
    assert seq == 8 and got == want and len(want) == 6  # r6 (no_signal) counts nowhere

    # r3's events are removed: its row leaves the ledger, recorded with no new side
    store.con.execute("DELETE FROM alpha WHERE run_id = 'r3'")
    store.con.execute("DELETE FROM telemetry WHERE run_id = 'r3'")
    assert reconciled(store, text="reconcile: {fee_bps: 9}") == (9, {"r3"}, {"r3"})
    assert recorded(store, 9)["r3"][3:] == (None, None, None)


def test_exclusions_applied_or_lifted_are_recorded_after_every_reconcile(
        store: Store, tmp_path: Path) -> None:
    """`exclusions apply` records the runs it newly excludes or no longer excludes, with their
    row on both sides, numbered after the last reconcile; the next reconcile numbers after it
    (one counter: a catch-up that read up to a seq misses neither)."""
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(10)])
    ingest(store, [alpha(f"a{i}", f"r{i}", 120 * i, horizon=3600, agent="ABC"[i])
                   for i in range(3)])
    assert reconciled(store)[0] == 1
    after = rows(store)
    db = Database(store)
    pol = tmp_path / "p.yaml"
    # A's run excluded; then B's too; then A's lifted; then the same again: nothing
    for agents, seq, want in ((["A"], 2, {"r0"}), (["A", "B"], 3, {"r1"}), (["B"], 4, {"r0"}),
                              (["B"], 5, set())):
        pol.write_text("forensics:\n  exclusions:\n    - {name: x, reason: r, when: "
                       f"[{{field: agent, op: in, value: {agents}}}]}}\n")
        db.apply_exclusions(pol)
        got = recorded(store, seq)
        assert set(got) == want
        for run_id, sides in got.items():
            assert sides == side(after[run_id]) * 2
    assert reconciled(store) == (5, set(), set())  # after the exclusions' 4
