"""The lifecycle at a knowledge time, and the points of a duration window: `audit verify` must
pass what alphatrace wrote.

Records of a subject are appended in as_of order (`journal.out_of_order`): a catch-up after a
revive resumes the subject at the revive's time, and a `--once --as-of T` in the past records no
subject whose newest record is later than T (it reports it). The lifecycle at T is each
subject's newest record stamped at or before T, newest by (as_of, seq) (docs/governance.md,
"--as-of T ... the lifecycle as it was at T"); `lifecycle.History` also reads logs written
before that rule, out of as_of order. Expected records worked out by hand below, one agent, no
strategy (so no strategy subject and no cascade)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from alphatrace.api import Database
from alphatrace.governance import journal
from alphatrace.governance.lifecycle import History
from alphatrace.policy import Policy, parse_policy_text
from tests.rows import h, insert, run, series

# A run leaves the 3h window at known_ts + 3h (the window at T holds known_ts in (T − 3h, T]).
TIMED = parse_policy_text("""
gates:
  min_runs: 2
  window: {runs: 10, duration: 3h}
  rules:
    - {name: kill_loss, action: kill, when: "last_5_runs_pnl < -50"}
""", "timed.yaml")


def count_policy(runs: int, min_runs: int) -> Policy:
    return parse_policy_text(f"""
gates:
  min_runs: {min_runs}
  window: {{runs: {runs}}}
  rules:
    - {{name: kill_loss, action: kill, when: "last_5_runs_pnl < -50"}}
    - {{name: promote_ok, action: promote, when: "rolling_pnl_bps > 40"}}
""", f"count{runs}.yaml")


def log(db: Database, since: int = 0) -> list[tuple[Any, ...]]:
    """(subject, action, rule, blocked, state, as_of hour) of the records after seq `since`."""
    rows = db.con.execute("SELECT subject, action, rule, blocked, state, as_of FROM decisions "
                          "WHERE seq > ? ORDER BY seq", [since]).fetchall()
    return [(s, a, r, b, st, (t - h(0)) / dt.timedelta(hours=1)) for s, a, r, b, st, t in rows]


def seq(db: Database) -> int:
    return int(db.con.execute("SELECT coalesce(max(seq), 0) FROM decisions").fetchall()[0][0])


def losing_a(db: Database) -> None:
    """A: −40 at h0, −30 at h1, +5 at h2 (known at their ts). First catch-up (to h2): h0
    inconclusive (1 run < 2), h1 kill (last 5 = −70), h2 kill again (−65, new evidence)."""
    insert(db.con, series("A", [-40.0, -30.0, 5.0], strategy=None))
    db.gates.evaluate(TIMED)
    assert log(db) == [("A", "inconclusive", None, False, "candidate", 0.0),
                       ("A", "kill", "kill_loss", False, "killed", 1.0),
                       ("A", "kill", "kill_loss", False, "killed", 2.0)]


def test_runs_leaving_a_duration_window_are_points_without_new_runs(db: Database) -> None:
    """B's run at h4 moves the newest knowledge time to h4; A has no new run, but A0000 leaves
    its window at h3 (window A0001, A0002: −25, no kill: hold, still killed) and A0001 at h4
    (window A0002 alone: inconclusive). A catch-up over the whole history at once records the
    same for A."""
    losing_a(db)
    before = seq(db)
    insert(db.con, [run("B0000", "B", 1.0, hour=4, strategy=None)])
    db.gates.evaluate(TIMED)
    assert log(db, before) == [("A", "hold", None, False, "killed", 3.0),
                               ("A", "inconclusive", None, False, "killed", 4.0),
                               ("B", "inconclusive", None, False, "candidate", 4.0)]
    assert db.audit_verify()["problems"] == []

    whole = Database(":memory:")
    try:
        insert(whole.con, [*series("A", [-40.0, -30.0, 5.0], strategy=None),
                           run("B0000", "B", 1.0, hour=4, strategy=None)])
        whole.gates.evaluate(TIMED)
        assert log(whole) == log(db)
    finally:
        whole.close()


def test_a_catch_up_after_a_revive_resumes_the_subject_at_the_revive(db: Database) -> None:
    """A is revived when the newest knowledge time is h4 (B's run), before the catch-up reaches
    h3 and h4. The catch-up resumes A at the revive's time: no point of A before h4 (A0000
    leaving the window at h3 was a point before the revive); at h4 A is a candidate again,
    its window (A0002; A0001, known at h1, left it at h4) inconclusive."""
    losing_a(db)
    insert(db.con, [run("B0000", "B", 1.0, hour=4, strategy=None)])
    db.revive("A", "reviewed", actor="tester")
    before = seq(db)
    db.gates.evaluate(TIMED)
    assert log(db, before - 1) == [("A", "revive", None, False, "candidate", 4.0),
                                   ("A", "inconclusive", None, False, "candidate", 4.0),
                                   ("B", "inconclusive", None, False, "candidate", 4.0)]
    assert journal.lifecycle_states(db.con, h(3.5))[("agent", "A")] == "killed"
    assert journal.lifecycle_states(db.con, h(4))[("agent", "A")] == "candidate"
    assert db.audit_verify()["problems"] == []


def promoted_then_killed(db: Database) -> None:
    """A: +50 at h0 and h1, −120 at h2, +100 at h3; a 2-run window, 2 runs to be conclusive.
    Catch-up: h0 inconclusive, h1 promote (Σ 100 > 40), h2 kill (last 5 = −70), h3 hold,
    killed (−20: no rule)."""
    insert(db.con, series("A", [50.0, 50.0, -120.0, 100.0], strategy=None))
    db.gates.evaluate(count_policy(2, 2))
    assert log(db) == [("A", "inconclusive", None, False, "candidate", 0.0),
                       ("A", "promote", "promote_ok", False, "promoted", 1.0),
                       ("A", "kill", "kill_loss", False, "killed", 2.0),
                       ("A", "hold", None, False, "killed", 3.0)]


def test_a_past_once_is_judged_in_the_lifecycle_at_its_as_of(db: Database) -> None:
    """`--once --as-of h1.5` with a 1-run window: A0001 (+50) promotes, and at h1.5 A was
    promoted (its kill is at h2): promote, news (other evidence than the h1 record). A's
    newest record (the h3 hold) is later than h1.5: reported, not recorded, so A stays
    killed."""
    promoted_then_killed(db)
    before = seq(db)
    doc = db.gates.evaluation(count_policy(1, 1), as_of=h(1.5), once=True)
    assert [(d["subject"], d["action"], d["state"], d["changed"], d["seq"])
            for d in doc["decisions"]] == [("A", "promote", "promoted", True, None)]
    assert doc["decisions"][0]["not_recorded"].startswith(
        "agent A has a newer record (hold at seq 4, as of 2024-01-01T03:00:00.000000Z)")
    assert log(db, before) == []
    assert journal.lifecycle_states(db.con)[("agent", "A")] == "killed"
    assert db.audit_verify()["problems"] == []


def test_an_evaluation_after_a_past_once_sees_the_later_kill(db: Database) -> None:
    """After the h1.5 evaluation, `--once --as-of h4`: the window (A0003, +100) promotes, but
    at h4 A is killed (h2 kill, h3 hold). So: hold, blocked, state killed (a kill blocks
    promotions; only a revive lifts it)."""
    promoted_then_killed(db)
    db.gates.evaluate(count_policy(1, 1), as_of=h(1.5), once=True)
    assert journal.lifecycle_states(db.con, h(4))[("agent", "A")] == "killed"
    assert journal.newest_records(db.con, h(4))[("agent", "A")]["action"] == "hold"
    before = seq(db)
    db.gates.evaluate(count_policy(1, 1), as_of=h(4), once=True)
    assert log(db, before) == [("A", "hold", "promote_ok", True, "killed", 4.0)]
    assert db.audit_verify()["problems"] == []


def rec(subject: str, state: str, hour: float) -> dict[str, Any]:
    return {"scope": "agent", "subject": subject, "state": state,
            "as_of": f"{h(hour):%Y-%m-%dT%H:%M:%S.%f}Z"}


def test_history_orders_by_as_of_then_chain_order() -> None:
    """Records added in chain order: A killed at h2, A revived at h4, A held killed at h3 (a
    catch-up point written after the revive), A killed at h4 after the revive; B candidate at
    h1. At h1: B only; at h3: A killed (the revive is later); at h4: the h4 kill, written after
    the revive at the same as-of."""
    history = History()
    history.add([rec("A", "killed", 2), rec("A", "candidate", 4)])
    assert history.at(rec("A", "", 3)["as_of"])[0] == {("agent", "A"): "killed"}
    history.add([rec("A", "killed", 3), rec("A", "killed", 4), rec("B", "candidate", 1)])
    state, last = history.at(rec("A", "", 1)["as_of"])
    assert state == {("agent", "B"): "candidate"}
    state, last = history.at(rec("A", "", 3)["as_of"])
    assert state == {("agent", "A"): "killed", ("agent", "B"): "candidate"}
    assert last[("agent", "A")]["as_of"] == rec("A", "", 3)["as_of"]
    state, last = history.at(rec("A", "", 4)["as_of"])
    assert state[("agent", "A")] == "killed" and last[("agent", "A")]["as_of"] == \
        rec("A", "", 4)["as_of"]
    history.add([rec("A", "candidate", 3.5)])
    assert history.at(rec("A", "", 3.5)["as_of"])[0][("agent", "A")] == "candidate"
