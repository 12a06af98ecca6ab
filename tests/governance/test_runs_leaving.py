"""Runs that stop counting for a subject are late news for it (issue #14): a run whose ledger row
left the ledger, was excluded, whose known_ts moved past the subject's progress mark, or whose
agent changed, after the mark was set, makes the mark a point of the subject that lost it. Each
scenario goes through ingest, reconcile (or `exclusions apply`) and two catch-ups; the expected
decisions are worked out by hand below, and equal a single evaluation at the mark, and a
catch-up from nothing, over the final data on a fresh store.

Agent A: runs A0-A3 lose 30 bps (hours 0-3), A4 wins 60 (hour 4), A5 loses 30 (hour 5); the
seed's gates kill on `last_5_runs_pnl < -100` from 5 runs. With A4, A's last five never sum
below -60 (A0-A4: -60, A1-A5: -60): hold. Without it, A's five runs at hour 5 (A0-A3, A5) sum
to -150: a kill at hour 5, the mark every subject has after the first catch-up. Agent B: four
runs of +10 (hours 0.5-3.5): inconclusive (4 runs).
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.api import Database
from alphatrace.governance import journal
from alphatrace.store.ingest import ingest_events
from tests.policies import SEED
from tests.rows import h

A = ["A0", "A1", "A2", "A3", "A5"]  # A's runs without A4, in knowledge order
MARK = h(5)


def text(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pnl(rid: str, agent: str, bps: float, hour: float, *, eid: str | None = None,
        revision: int = 0) -> dict[str, Any]:
    """A run known from one external pnl event at `hour` (its knowledge time)."""
    return {"type": "pnl", "event_id": eid or f"{rid}:p", "run_id": rid, "agent": agent,
            "ts": text(h(hour)), "realized_pnl_bps": bps, "revision": revision}


BASE = ([pnl(f"A{i}", "A", -30.0, i) for i in range(4)] + [pnl("A4", "A", 60.0, 4),
                                                           pnl("A5", "A", -30.0, 5)]
        + [pnl(f"B{i}", "B", 10.0, i + 0.5) for i in range(4)])

# The fields of a record the scenarios compare (seq, eval_id and the chain's fields differ
# between stores).
FIELDS = ("as_of", "scope", "subject", "action", "rule", "state", "run_ids")


def ingest(db: Database, events: list[dict[str, Any]]) -> None:
    _, results = ingest_events(db.store, events)
    assert all(r.status == "accepted" for r in results), results
    db.reconcile(SEED)


def caught_up(db: Database) -> list[tuple[Any, ...]]:
    return [tuple(r[f] for f in FIELDS) for r in db.gates.evaluate(SEED)]


def remove(db: Database, run_id: str) -> None:
    """An operator removes a run's events (the next reconcile rebuilds the whole ledger)."""
    db.con.execute("DELETE FROM pnl WHERE run_id = ?", [run_id])


def exclude_winners(db: Database, tmp: Path) -> None:
    pol = tmp / "exclude.yaml"
    pol.write_text("forensics:\n  exclusions:\n    - {name: outlier, reason: too good, "
                   "when: [{field: pnl, op: '>', value: 50}]}\n")
    assert db.apply_exclusions(pol)["excluded"] == 1


def change(db: Database, cause: str, tmp: Path) -> None:
    """A4 stops counting for A after A's mark (hour 5) was set."""
    if cause == "left":
        remove(db, "A4")
        db.reconcile(SEED)
    elif cause == "excluded":
        exclude_winners(db, tmp)
    elif cause == "moved":  # a revision of A4's PnL, known only at hour 10
        ingest(db, [pnl("A4", "A", 60.0, 10, eid="A4:p2", revision=1)])
    elif cause == "agent":  # A4 was B's: its event replaced by one naming B
        remove(db, "A4")
        ingest(db, [pnl("A4", "B", 60.0, 4, eid="A4:b")])


def final(cause: str) -> list[dict[str, Any]]:
    """The events a store holds after `change` (an exclusion is applied on top)."""
    rest = [e for e in BASE if e["run_id"] != "A4"]
    return {"left": rest, "excluded": BASE,
            "moved": [*BASE, pnl("A4", "A", 60.0, 10, eid="A4:p2", revision=1)],
            "agent": [*rest, pnl("A4", "B", 60.0, 4, eid="A4:b")]}[cause]


KILL = (text(MARK), "agent", "A", "kill", "kill_drawdown", "killed", A)
# What the second catch-up records, worked out by hand: A killed at its mark on A0-A3 and A5
# (-150); when A4 moved to hour 10, A holds there (A1-A3, A5, A4: -60) but stays killed; when
# A4 became B's, B (B0-B3, A4: +100, 5 runs) moves from inconclusive to hold at its mark.
WANT = {
    "left": [KILL],
    "excluded": [KILL],
    "moved": [KILL, (text(h(10)), "agent", "A", "hold", None, "killed", [*A, "A4"])],
    "agent": [KILL, (text(MARK), "agent", "B", "hold", None, "candidate",
                     ["B0", "B1", "B2", "B3", "A4"])],
}


@pytest.mark.parametrize("cause", ["left", "excluded", "moved", "agent"])
def test_a_run_that_stops_counting_for_a_subject_rejudges_it_at_its_mark(
        tmp_path: Path, cause: str) -> None:
    with at.connect(tmp_path / "live.duckdb") as live:
        ingest(live, BASE)
        first = caught_up(live)
        # before: A holds (never below -60), B inconclusive, both marked at hour 5
        assert [r for r in first if r[1:3] == ("agent", "A")][-1][3:6] == (
            "hold", None, "candidate")
        assert {(r[2], r[3]) for r in first if r[0] == text(MARK)} <= {("A", "hold")}
        change(live, cause, tmp_path)
        got = caught_up(live)
        assert sorted(got) == sorted(WANT[cause])
        kill = next(r for r in live.gates.evaluate(SEED, as_of=MARK, once=True, record=False)
                    if r["subject"] == "A")
        assert kill["metrics"]["last_5_runs_pnl"] == -150.0
        states = dict(journal.lifecycle_states(live.con))

    # batch over the same final data on a fresh store: a single evaluation at the mark, and a
    # catch-up from nothing, reach the same decisions and lifecycle
    with at.connect(tmp_path / "batch.duckdb") as batch:
        ingest(batch, final(cause))
        if cause == "excluded":
            exclude_winners(batch, tmp_path)
        at_mark = {(r["scope"], r["subject"]): tuple(r[f] for f in FIELDS)
                   for r in batch.gates.evaluation(SEED, as_of=MARK, once=True,
                                                   record=False)["decisions"]}
        for want in WANT[cause]:
            if want[0] == text(MARK):
                assert at_mark[want[1:3]] == want
        # from nothing, A is killed at the same point (its fifth run, A5, is known then; B's
        # hold comes at A4's own time, hour 4, which live had judged before A4 was B's)
        assert KILL in caught_up(batch)
        assert dict(journal.lifecycle_states(batch.con)) == states


# -------------------------------------------- property: any batching, the change anywhere after
# A's runs arrived, more runs after it: the live store ends as batch on the final data

LATER = [pnl(f"B{i}", "B", 10.0, i + 2.5) for i in range(4, 8)]  # B's runs at hours 6.5-9.5


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(cause=st.sampled_from(["left", "excluded", "moved", "agent"]),
       cuts=st.lists(st.integers(1, len(BASE) + len(LATER) - 1), max_size=5, unique=True),
       after=st.integers(0, len(LATER)))
def test_any_batching_with_a_run_leaving_anywhere_ends_as_batch(
        tmp_path_factory: pytest.TempPathFactory, cause: str, cuts: list[int],
        after: int) -> None:
    """The events in random batches, each ingested, reconciled and caught up; A4 stops counting
    for A once A's runs are all in, before the `after`-th of B's later runs. Whatever the
    batching, A ends killed (at its mark: hour 5, or later when a batch took A's mark past
    it) and every subject as batch on the final data leaves it (A has no run after A5: when
    A4 arrived before A5 was judged, only the change can re-judge A)."""
    tmp = tmp_path_factory.mktemp("leaving")
    events = BASE + LATER
    split = len(BASE) + after  # the change comes after the events before this index
    bounds = sorted({0, *cuts, split, len(events)})
    with at.connect(tmp / "live.duckdb") as live:
        for a, b in pairwise(bounds):
            if a == split:
                change(live, cause, tmp)
                caught_up(live)
            ingest(live, events[a:b])
            caught_up(live)
        if split == len(events):
            change(live, cause, tmp)
            caught_up(live)
        states = dict(journal.lifecycle_states(live.con))
    with at.connect(tmp / "batch.duckdb") as batch:
        ingest(batch, final(cause) + LATER)
        if cause == "excluded":
            exclude_winners(batch, tmp)
        caught_up(batch)
        assert dict(journal.lifecycle_states(batch.con)) == states
    assert states[("agent", "A")] == "killed"


def test_a_store_from_before_0028_keeps_its_late_runs_through_the_upgrade(tmp_path: Path) -> None:
    """A store as 0027's code left it: `ledger_changes` with run ids only, holding a late run
    (A6, -200 at hour 4.5, before A's mark) and a run that has since left the ledger (X).
    Migration 0028 fills the new side from the ledger (X's stays NULL, and both old sides), and
    the first catch-up after it judges A at its mark: A2-A4, A6, A5 sum to -230, a kill."""
    db = tmp_path / "old.duckdb"
    with at.connect(db) as d:
        ingest(d, BASE)
        caught_up(d)
        ingest(d, [pnl("A6", "A", -200.0, 4.5)])
        d.con.execute("""
            CREATE TABLE _kept AS SELECT seq, run_id FROM ledger_changes
            UNION ALL SELECT 2, 'X';
            DROP TABLE ledger_changes;
            CREATE TABLE ledger_changes (seq BIGINT NOT NULL, run_id VARCHAR NOT NULL);
            INSERT INTO ledger_changes SELECT * FROM _kept ORDER BY seq, run_id;
            DROP TABLE _kept;
            DELETE FROM schema_migrations WHERE version = 28""")
    with at.connect(db) as d:  # migrated
        got = d.con.execute("SELECT run_id, old_agent, old_strategy, old_known_ts, new_agent, "
                            "new_strategy, new_known_ts FROM ledger_changes WHERE seq = 2 "
                            "ORDER BY run_id").fetchall()
        assert got == [("A6", None, None, None, "A", None, h(4.5)),
                       ("X", None, None, None, None, None, None)]
        assert caught_up(d) == [(text(MARK), "agent", "A", "kill", "kill_drawdown", "killed",
                                 ["A0", "A1", "A2", "A3", "A4", "A6", "A5"])]
