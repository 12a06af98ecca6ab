"""Decisions are recorded only when something changes (issue #14 item 2): re-evaluating
unchanged data appends nothing; a change of action or state, a rule firing on new runs, or a
new reason is recorded; the audit replay agrees with what was left out."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.api import Database
from alphatrace.governance.novelty import is_news
from tests.policies import SEED
from tests.rows import insert, series


def actions(recs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["scope"], r["subject"], r["action"]) for r in recs]


def test_re_evaluating_unchanged_data_records_nothing(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy="S") + series("B", [10.0] * 20, strategy="T"))
    first = db.gates.evaluate(SEED, catch_up=False)
    assert actions(first) == [("agent", "A", "kill"), ("agent", "B", "promote"),
                              ("strategy", "S", "kill"), ("strategy", "T", "promote")]
    assert db.gates.evaluate(SEED, catch_up=False) == []
    doc = db.gates.evaluation(SEED, catch_up=False)
    assert (doc["recorded"], doc["evaluated"], doc["changed"]) == (True, 4, 0)
    assert [(d["subject"], d["action"], d["changed"], d["seq"]) for d in doc["decisions"]] == [
        ("A", "kill", False, None), ("B", "promote", False, None), ("S", "kill", False, None),
        ("T", "promote", False, None)]
    assert db.con.execute("SELECT count(*) FROM decisions").fetchall() == [(4,)]
    assert db.audit_verify()["ok"]


def test_what_is_recorded_when_runs_arrive(db: Database) -> None:
    # C: 3 runs (inconclusive), D: 5 flat runs (hold), E: 5 losing runs (kill); no strategy
    insert(db.con, series("C", [1.0] * 3, strategy=None) + series("D", [0.0] * 5, strategy=None)
           + series("E", [-30.0] * 5, strategy=None))
    assert [s for _, s, _ in actions(db.gates.evaluate(SEED, catch_up=False))] == ["C", "D", "E"]
    # a new run each: C's 4th (still inconclusive), D's 6th (still hold, no rule fires),
    # E's 6th (kill fires again, on a new window): only E is recorded
    insert(db.con, series("C", [1.0], strategy=None, start_hour=10, prefix="C2-")
           + series("D", [0.0], strategy=None, start_hour=10, prefix="D2-")
           + series("E", [-30.0], strategy=None, start_hour=10, prefix="E2-"))
    recs = db.gates.evaluate(SEED, catch_up=False)
    assert actions(recs) == [("agent", "E", "kill")]
    assert recs[0]["run_ids"] == [f"E{i:04d}" for i in range(5)] + ["E2-0000"]  # 20-run window
    # C's 5th run makes it conclusive: inconclusive → hold is recorded
    insert(db.con, series("C", [1.0], strategy=None, start_hour=11, prefix="C3-"))
    assert actions(db.gates.evaluate(SEED, catch_up=False)) == [("agent", "C", "hold")]
    assert db.audit_verify()["ok"]


def test_a_dry_run_says_what_would_be_recorded(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy=None) + series("D", [0.0] * 5, strategy=None))
    db.gates.evaluate(SEED, catch_up=False)
    insert(db.con, series("A", [-30.0], strategy=None, start_hour=10, prefix="A2-"))
    doc = db.gates.evaluation(SEED, catch_up=False, record=False)
    assert (doc["recorded"], doc["evaluated"], doc["changed"]) == (False, 2, 1)
    assert [(d["subject"], d["changed"], d["seq"]) for d in doc["decisions"]] == [
        ("A", True, None), ("D", False, None)]
    assert db.con.execute("SELECT count(*) FROM decisions").fetchall() == [(2,)]


def test_audit_replays_many_evaluations_with_skipped_subjects(db: Database) -> None:
    insert(db.con, series("A", [5.0] * 3, strategy="S") + series("B", [10.0] * 20, strategy="S"))
    db.gates.evaluate(SEED, catch_up=False)
    for i in range(6):  # A's runs arrive one by one and turn it from inconclusive to a kill
        insert(db.con, series("A", [-40.0], strategy="S", start_hour=30 + i, prefix=f"A{i}-"))
        db.gates.evaluate(SEED, catch_up=False)
        assert db.gates.evaluate(SEED, catch_up=False) == []
    out = db.audit_verify()
    assert out["ok"], out["problems"]
    recs = db.audit_show("A")
    # every record differs from the one before it (action, state or a rule's new window)
    for a, b in pairwise(recs):
        assert is_news(a, b)


# -- the rule itself -----------------------------------------------------------------------------
ACTIONS = st.sampled_from(["promote", "kill", "hold", "inconclusive", "error"])
STATES = st.sampled_from(["candidate", "promoted", "killed"])
RECORDS = st.fixed_dictionaries({
    "action": ACTIONS, "state": STATES,
    "fired": st.lists(st.sampled_from(["k", "p"]), max_size=2, unique=True),
    "run_ids": st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=3, unique=True),
    "reason": st.one_of(st.none(), st.sampled_from(["ArithmeticError: x", "ValueError: y"])),
})


@given(RECORDS)
def test_the_same_decision_again_is_never_news(rec: dict[str, Any]) -> None:
    assert is_news(None, rec) is True
    assert is_news(rec, dict(rec)) is False


@given(RECORDS, RECORDS)
def test_news_is_a_change_of_action_state_reason_or_a_rule_on_new_runs(
        last: dict[str, Any], new: dict[str, Any]) -> None:
    # spelled out by the brief's rule, independently of the implementation's order of tests
    want = (last["action"] != new["action"] or last["state"] != new["state"]
            or last["reason"] != new["reason"]
            or (new["action"] != "error" and len(new["fired"]) > 0
                and last["run_ids"] != new["run_ids"]))
    assert is_news(last, new) is want
