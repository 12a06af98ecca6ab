"""`gates evaluate` catch-up: every knowledge time since the progress mark, in time order, only
news recorded, each record stamped with the knowledge time it was decided at. Expected
decisions by hand (seed policy: kill when the last-5 sum < −100, 5 runs to be conclusive)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.api import Database
from alphatrace.governance import replay
from tests.policies import SEED
from tests.rows import h, insert, reset, run, series

from .test_backtest import ledgers


def text(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def losing_then_late(db: Database) -> None:
    # runs at hours 0..8; A0007 is known only at hour 20
    rows = series("A", [10.0] * 4 + [-30.0] * 5, strategy=None)
    rows[7] = run("A0007", "A", -30.0, hour=7, strategy=None, known=h(20))
    insert(db.con, rows)


def test_a_kill_is_stamped_at_the_knowledge_time_of_its_evidence(db: Database) -> None:
    losing_then_late(db)
    recs = db.gates.evaluate(SEED, catch_up=True)
    # h4: 5 runs, last-5 = +10 (hold); h8: A0003..A0006 + A0008 = −110 (kill); h20: A0004..
    # A0006, A0008, A0007 = −150 (fires again on new evidence)
    assert [(r["as_of"], r["action"], r["state"], r["metrics"]["runs"]) for r in recs] == [
        (text(h(0)), "inconclusive", "candidate", 1), (text(h(4)), "hold", "candidate", 5),
        (text(h(8)), "kill", "killed", 8), (text(h(20)), "kill", "killed", 9)]
    assert recs[2]["metrics"]["last_5_runs_pnl"] == -110.0
    assert recs[2]["run_ids"][-1] == "A0008" and recs[3]["run_ids"][-1] == "A0007"
    assert len({r["eval_id"] for r in recs}) == 4  # one evaluation per knowledge time
    assert replay.progress(db.con) == {("agent", "A"): h(20)}
    assert db.audit_verify()["ok"]


def test_the_next_catch_up_evaluates_only_new_points(db: Database) -> None:
    losing_then_late(db)
    db.gates.evaluate(SEED, catch_up=True)
    assert db.gates.evaluate(SEED, catch_up=True) == []  # unchanged data: nothing
    insert(db.con, [run("A0009", "A", 50.0, hour=30, strategy=None),
                    run("A0010", "A", 50.0, hour=31, strategy=None),
                    run("A0011", "A", 1.0, hour=9, strategy=None, known=h(25)),
                    run("A0012", "A", -1.0, hour=9.5, strategy=None, known=h(15))])
    doc = db.gates.evaluation(SEED, catch_up=True)
    # A0012 is known at 15, before the mark (20): no point of its own, counted from the next.
    # h25: last 5 = A0006 A0008 A0012 A0007 A0011 = −30 −30 −1 −30 +1 = −90: no kill, so the
    # killed agent holds (news); h30: −10, h31: +70: holds again (not news)
    assert [(d["as_of"], d["action"], d["state"], d["changed"], d["metrics"]["runs"])
            for d in doc["decisions"]] == [(text(h(25)), "hold", "killed", True, 11),
                                            (text(h(31)), "hold", "killed", False, 13)]
    assert doc["decisions"][0]["run_ids"][-5:] == ["A0006", "A0008", "A0012", "A0007", "A0011"]
    assert replay.progress(db.con) == {("agent", "A"): h(31)}
    # the log is append-only: the h20 kill stays, and the audit names the late run as what
    # changed its inputs (late data, not tampering)
    problems = db.audit_verify()["problems"]
    assert [(p["seq"], p["kind"]) for p in problems] == [(4, "inputs_changed")]
    assert "+1 (A0012)" in problems[0]["detail"]


def test_a_catch_up_from_before_a_record_applies_it_when_the_walk_reaches_it(
        db: Database) -> None:
    # A: +10 ×4 then −30 ×5 at hours 0..8: killed at h8 (last 5 = −110)
    insert(db.con, series("A", [10.0] * 4 + [-30.0] * 5, strategy=None))
    assert [r["action"] for r in db.gates.evaluate(SEED, catch_up=True)][-1] == "kill"
    # then C's first run, known at h3, and A's next, known at h12: the catch-up starts at h3,
    # before A's records from h4 on, and must apply them by the time it judges A at h12
    insert(db.con, [run("C0000", "C", 5.0, hour=3, strategy=None),
                    run("A0009", "A", 50.0, hour=12, strategy=None)])
    doc = db.gates.evaluation(SEED, catch_up=True)
    # h12: last 5 = −30 ×4 + 50 = −70, no kill: the killed agent holds, still killed
    assert [(d["as_of"], d["subject"], d["action"], d["state"]) for d in doc["decisions"]
            if d["subject"] == "A"] == [(text(h(12)), "A", "hold", "killed")]
    # C's run, known at h3, is late for the evaluations since: the audit says so
    assert {p["kind"] for p in db.audit_verify()["problems"]} == {"inputs_changed"}


def test_a_one_week_run_kills_when_its_loss_is_known_not_at_its_signal(db: Database) -> None:
    # the 2023-01-07 example: four losses known at once, the fifth a one-week run
    t = dt.datetime(2023, 1, 7, 16)
    rows = [run(f"r{i}", "A", -30.0, ts=t - dt.timedelta(hours=4 - i), strategy=None)
            for i in range(4)]
    rows.append(run("r4", "A", -30.0, ts=t, strategy=None, known=t + dt.timedelta(days=7)))
    insert(db.con, rows)
    kills = [r for r in db.gates.evaluate(SEED, catch_up=True) if r["action"] == "kill"]
    assert [(r["as_of"], r["run_ids"][-1]) for r in kills] == [
        (text(t + dt.timedelta(days=7)), "r4")]


def test_a_strategy_kill_cascades_at_its_knowledge_time(db: Database) -> None:
    insert(db.con, series("A", [-40.0] * 5, strategy="S")
           + series("B", [1.0] * 3, strategy="S", start_hour=10))
    recs = db.gates.evaluate(SEED, catch_up=True)
    kills: dict[tuple[str, str], tuple[str, str, str | None]] = {}
    for r in recs:  # each subject's first kill
        if r["action"] == "kill":
            kills.setdefault((r["scope"], r["subject"]), (r["as_of"], r["rule"], r["cascade_from"]))
    # S and A reach 5 runs summing −200 at hour 4; B signals first at hour 10 and is
    # cascade-killed at its first knowledge time
    assert kills == {("agent", "A"): (text(h(4)), "kill_drawdown", None),
                     ("strategy", "S"): (text(h(4)), "kill_drawdown", None),
                     ("agent", "B"): (text(h(10)), "cascade", "S")}
    assert db.audit_verify()["ok"]


# -------------------------------------------- property: no look-ahead

@pytest.fixture(scope="module")
def two() -> Iterator[tuple[Database, Database]]:
    a, b = at.connect(":memory:"), at.connect(":memory:")
    yield a, b
    a.close()
    b.close()


def _as_at(rows: list[dict[str, Any]], t: dt.datetime) -> list[dict[str, Any]]:
    """The store as it was at `t`: runs not signalled yet are absent, runs whose PnL became
    known later are open (what removing every bar after `t` and reconciling leaves)."""
    out = []
    for r in rows:
        if r["ts"] > t:
            continue
        if r["known_ts"] is not None and r["known_ts"] > t:
            r = {**r, "realized_pnl_bps": None, "pnl_usd": None, "net_usd": None,
                 "net_bps": None, "known_ts": None, "status": "open"}
        out.append(r)
    return out


@pytest.mark.slow
@settings(max_examples=15)
@given(rows=ledgers(), cut=st.integers(0, 600))
def test_no_decision_depends_on_what_became_known_later(
        two: tuple[Database, Database], rows: list[dict[str, Any]], cut: int) -> None:
    full, past = two
    reset(full.con)
    reset(past.con)
    t = h(cut)
    insert(full.con, rows)
    insert(past.con, _as_at(rows, t))
    fields = ("as_of", "scope", "subject", "action", "rule", "state", "cascade_from",
              "metrics", "run_ids")
    want = [tuple(r[f] for f in fields) for r in full.gates.evaluate(SEED, catch_up=True)
            if r["as_of"] <= text(t)]
    got = [tuple(r[f] for f in fields) for r in past.gates.evaluate(SEED, catch_up=True)]
    assert got == want
