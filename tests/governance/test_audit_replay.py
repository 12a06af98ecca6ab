"""`audit verify` re-decides a catch-up log from one replay plan: a recorded decision whose
metrics or action were altered (hashes recomputed, so only the re-computation can see it) is
named at its seq with its subject and field; a clean catch-up log verifies; the planned
re-decision agrees with the reference (one `gates.decide` per evaluation) on random logs.
Expected numbers by hand (seed policy: kill when the last-5 sum < −100, 5 runs to be
conclusive)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.api import Database
from alphatrace.governance import audit, journal, redecide
from alphatrace.governance.reads import StoreReads
from tests.policies import SEED
from tests.rows import h, insert, reset, run, series

from .chain import rehash
from .test_backtest import ledgers


def losing_then_late(db: Database) -> None:
    """Runs at hours 0..8, A0007 known only at hour 20. The catch-up records: h0 inconclusive,
    h4 hold (last 5 = +10), h8 kill (last 5 = −110), h20 kill again on new evidence (−150)."""
    rows = series("A", [10.0] * 4 + [-30.0] * 5, strategy=None)
    rows[7] = run("A0007", "A", -30.0, hour=7, strategy=None, known=h(20))
    insert(db.con, rows)
    recs = db.gates.evaluate(SEED, catch_up=True)
    assert [(r["seq"], r["action"]) for r in recs] == [
        (1, "inconclusive"), (2, "hold"), (3, "kill"), (4, "kill")]


def problems(db: Database, recompute: bool = True) -> list[tuple[int | None, str]]:
    return [(p["seq"], p["kind"]) for p in db.audit_verify(recompute=recompute)["problems"]]


def test_a_clean_catch_up_log_verifies(db: Database) -> None:
    losing_then_late(db)
    assert db.audit_verify()["ok"] is True


def test_an_altered_metric_is_named_with_its_seq_subject_and_field(db: Database) -> None:
    losing_then_late(db)
    # the kill at h8 still follows from its altered metrics (latency is not what killed it),
    # and the hashes are recomputed: the chain and the record's own consistency are intact
    db.con.execute("UPDATE decisions SET metrics = replace(metrics, '\"median_latency_ms\":100.0',"
                   " '\"median_latency_ms\":150.0') WHERE seq = 3")
    rehash(db.con)
    assert problems(db, recompute=False) == []
    out = db.audit_verify()["problems"]
    assert [(p["seq"], p["kind"]) for p in out] == [(3, "inputs_changed")]
    assert out[0]["detail"] == "agent 'A': metrics: median_latency_ms 150.0 → 100.0"


def test_an_altered_action_is_named_with_its_seq_subject_and_field(db: Database) -> None:
    losing_then_late(db)
    # the h20 kill rewritten as a hold of the killed agent, with a last-5 sum that does not
    # kill (−50): consistent with its own metrics, so only the re-computation sees it
    db.con.execute("UPDATE decisions SET action = 'hold', rule = NULL, fired = '[]', "
                   "metrics = replace(metrics, '\"last_5_runs_pnl\":-150.0', "
                   "'\"last_5_runs_pnl\":-50.0') WHERE seq = 4")
    rehash(db.con)
    # the chain is intact; `decision_newest`, written with the record, still says kill
    assert problems(db, recompute=False) == [(4, "edited")]
    out = db.audit_verify()["problems"]
    assert [(p["seq"], p["kind"]) for p in out] == [(4, "edited"), (4, "inputs_changed")]
    assert out[0]["detail"].startswith("decision_newest names seq 4 (kill, ")
    detail = out[1]["detail"]
    assert detail.startswith("agent 'A': action: hold → kill; rule: None → kill_drawdown; ")
    assert "fired: [] → ['kill_drawdown']" in detail
    assert "metrics: last_5_runs_pnl -50.0 → -150.0" in detail


def test_a_cascade_in_a_catch_up_log_verifies_and_its_alteration_is_named(db: Database) -> None:
    # strategy S: A loses from h0, B wins from h100; S is killed at h8 (A's five losses are
    # S's last five), so B is cascade-killed when it joins S at h100
    insert(db.con, series("A", [-30.0] * 5) + series("B", [40.0] * 3, start_hour=100))
    recs = db.gates.evaluate(SEED, catch_up=True)
    kills = [(r["seq"], r["scope"], r["subject"], r["cascade_from"]) for r in recs
             if r["action"] == "kill"]
    assert ("agent", "B", "S") in [k[1:] for k in kills]
    assert db.audit_verify()["ok"] is True
    seq = next(s for s, sc, sub, _ in kills if (sc, sub) == ("agent", "B"))
    db.con.execute(f"UPDATE decisions SET run_ids = '[\"B0000\",\"B0001\"]' WHERE seq = {seq}")
    rehash(db.con)
    out = db.audit_verify()["problems"]
    assert [(p["seq"], p["kind"]) for p in out] == [(seq, "inputs_changed")]
    assert out[0]["detail"].startswith("agent 'B': run_ids: ")


def test_single_evaluations_verify_too(db: Database) -> None:
    """A log of `--once` evaluations at times that are nobody's point (h5.5, h30) is re-decided
    as it was made: every subject at that time."""
    insert(db.con, series("A", [10.0] * 4 + [-30.0] * 5) + series("B", [40.0] * 6))
    db.gates.evaluate(SEED, as_of=h(5.5), once=True)
    db.gates.evaluate(SEED, as_of=h(30), once=True)
    assert {r["as_of"] for r in journal.read_records(db.con)} == {
        "2024-01-01T05:30:00.000000Z", "2024-01-02T06:00:00.000000Z"}
    assert db.audit_verify()["ok"] is True


@st.composite
def losing(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Two agents in two strategy classes, mostly losing, PnL often known late: kills,
    cascades and late data are common."""
    n = draw(st.integers(8, 40))
    hours = sorted(draw(st.lists(st.integers(0, 300), min_size=n, max_size=n, unique=True)))
    return [run(f"r{i:03d}", draw(st.sampled_from(["A", "B"])),
                draw(st.sampled_from([-60.0, -40.0, -25.0, 5.0, 45.0, None])), hour=hr,
                strategy=draw(st.sampled_from(["S", "T"])),
                lag_h=draw(st.sampled_from([0.0, 0.0, 2.0, 30.0])),
                errors=draw(st.sampled_from([0, 0, 0, 0, 1])))
            for i, hr in enumerate(hours)]


def test_a_plan_is_built_only_for_a_policy_with_many_evaluations(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `--once` evaluations over a history: one query each (the plan would read every run
    about 40 times). A catch-up whose kill fires again at each of 46 points (D's last five
    always sum to −150): 47 evaluations, one plan."""
    built: list[int] = []
    real = redecide.Windows

    def counted(*args: Any) -> redecide.Windows:
        built.append(1)
        return real(*args)

    monkeypatch.setattr(redecide, "Windows", counted)
    insert(db.con, series("A", [10.0] * 4 + [-30.0] * 5) + series("B", [40.0] * 6))
    db.gates.evaluate(SEED, as_of=h(5.5), once=True)
    db.gates.evaluate(SEED, as_of=h(30), once=True)
    assert db.audit_verify()["ok"] is True and built == []
    reset(db.con)
    insert(db.con, series("D", [-30.0] * 50, strategy=None))
    recs = db.gates.evaluate(SEED)
    assert sum(r["subject"] == "D" for r in recs) == 47  # inconclusive, then 46 kills
    assert db.audit_verify()["ok"] is True and built == [1]


@settings(max_examples=25)
@given(rows=st.one_of(ledgers(), losing()))
def test_a_catch_up_log_always_verifies(shared: Database, rows: list[dict[str, Any]]) -> None:
    reset(shared.con)
    insert(shared.con, rows)
    shared.gates.evaluate(SEED, catch_up=True)
    assert shared.audit_verify()["problems"] == []  # a short log: one query per evaluation
    assert _recheck(shared, _planned(shared)) == []  # and from the plan


def _planned(db: Database) -> redecide.Redecide:
    """The plan's re-decider up to the log's newest as-of, whatever the log's length."""
    times = [dt.datetime.strptime(str(r["as_of"]), "%Y-%m-%dT%H:%M:%S.%fZ")
             for r in journal.read_records(db.con) if r["as_of"] is not None]
    return redecide.planned(StoreReads(db.con), max(times, default=h(0)))


def _recheck(db: Database, how: redecide.Redecide) -> list[dict[str, Any]]:
    order = audit.chain_order(journal.read_records(db.con))
    return audit.recheck(db.con, order, set(), set(), how)


@settings(max_examples=25)
@given(rows=st.one_of(ledgers(), losing()), cut=st.integers(0, 400),
       once=st.integers(0, 600), data=st.data())
def test_the_planned_re_decision_is_the_reference(
        shared: Database, rows: list[dict[str, Any]], cut: int, once: int,
        data: st.DataObject) -> None:
    """Two catch-ups with late data between them (so inputs_changed is expected), a single
    evaluation at any time and a revive: the problems found from the replay plan are the ones
    one `gates.decide` per evaluation finds."""
    reset(shared.con)
    t = h(cut)
    early = [r for r in rows if r["known_ts"] is None or r["known_ts"] <= t]
    insert(shared.con, early)
    shared.gates.evaluate(SEED, catch_up=True)
    insert(shared.con, [r for r in rows if r not in early])
    shared.gates.evaluate(SEED, once=True, as_of=h(once))
    states = journal.lifecycle_states(shared.con)
    killed = sorted(k for k, st_ in states.items() if st_ == "killed")
    # a strategy first: an agent of a killed strategy cannot be revived
    killed.sort(key=lambda k: k[0] != "strategy")
    if killed and data.draw(st.booleans()):
        shared.revive(killed[0][1], "checked", scope=killed[0][0])
    shared.gates.evaluate(SEED, catch_up=True)
    assert (_recheck(shared, _planned(shared))
            == _recheck(shared, redecide.decide_each(StoreReads(shared.con))))


def test_a_catch_up_after_one_time_evaluations_starts_where_they_left_off(db: Database) -> None:
    # Two --once evaluations (h5.5, then h30) judge A and B; the catch-up after them must not go
    # back and append records stamped before h30 (the log would run backwards in time, and
    # verify would call those records rewritten).
    insert(db.con, series("A", [-30.0] * 8, strategy=None)
           + series("B", [10.0] * 8, strategy=None))
    db.gates.evaluate(SEED, once=True, as_of=h(5.5))
    db.gates.evaluate(SEED, once=True, as_of=h(30))
    head = db.con.execute("SELECT max(seq) FROM decisions").fetchone()[0]
    assert db.gates.evaluate(SEED) == []  # nothing known after h30
    insert(db.con, series("A", [-30.0], strategy=None, start_hour=40, prefix="A-late-"))
    later = db.gates.evaluate(SEED)
    assert [(r["subject"], r["action"], r["as_of"][:13]) for r in later] == [
        ("A", "kill", "2024-01-02T16")]  # h40: the kill rule fires on the new window
    as_of = [r[0] for r in db.con.execute("SELECT as_of FROM decisions ORDER BY seq").fetchall()]
    assert as_of == sorted(as_of) and len(as_of) == head + 1
    assert db.audit_verify()["ok"] is True
