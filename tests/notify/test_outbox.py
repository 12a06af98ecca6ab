"""The outbox: deliveries are written by the transaction that appends the decisions, one per
record and matching target, and in-process listeners hear of records only once committed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alphatrace.api import Database
from alphatrace.governance import journal
from alphatrace.governance.gates import Decision
from alphatrace.notify import outbox
from tests.notify.util import hook, losers, policy
from tests.rows import insert, series


def deliveries(db: Database) -> list[dict[str, Any]]:
    cols = ["id", "target", "kind", "record_seq", "record_hash", "payload", "status",
            "attempts", "created_at", "next_attempt_at", "expires_at"]
    rows = db.con.execute(f"SELECT {', '.join(cols)} FROM notify_deliveries ORDER BY id").fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "s.duckdb")


def test_one_delivery_per_record_and_matching_target(db: Database) -> None:
    losers(db.store, ["A", "B"])
    gp = policy([hook("http://127.0.0.1:9/a", "all-kills", actions=["kill"]),
                 hook("http://127.0.0.1:9/b", "only-a", subjects=["A"]),
                 hook("http://127.0.0.1:9/c", "promotions", actions=["promote"]),
                 {"name": "chat", "kind": "slack", "url": "https://hooks.slack.example/x",
                  "subjects": "S*"}], retry={"horizon": "2h"})
    recs = db.gates.evaluate(gp, once=True)
    kills = {(r["scope"], r["subject"]): r for r in recs}
    assert set(kills) == {("agent", "A"), ("agent", "B"), ("strategy", "S")}
    got = deliveries(db)
    # all-kills: 3 records; only-a: agent A; promotions: none; chat: strategy S (glob S*)
    assert sorted((d["target"], d["record_seq"]) for d in got) == sorted(
        [("all-kills", r["seq"]) for r in recs]
        + [("only-a", kills["agent", "A"]["seq"]), ("chat", kills["strategy", "S"]["seq"])])
    for d in got:
        rec = next(r for r in recs if r["seq"] == d["record_seq"])
        assert d["record_hash"] == rec["hash"] and d["status"] == "pending"
        assert d["attempts"] == 0 and d["next_attempt_at"] == d["created_at"]
        assert (d["expires_at"] - d["created_at"]).total_seconds() == 7200
        body = json.loads(d["payload"])
        if d["kind"] == "webhook":
            assert body["type"] == "decision" and body["record"]["hash"] == rec["hash"]
            assert body["record"]["metrics"] == rec["metrics"]
            assert body["link"] == ("/agent?name=" + rec["subject"] if rec["scope"] == "agent"
                                    else "/decisions")
        else:
            assert set(body) == {"text"} and "kill strategy S" in body["text"]


def test_unchanged_data_enqueues_nothing_more(db: Database) -> None:
    losers(db.store, ["A"])
    gp = policy([hook("http://127.0.0.1:9/a")])
    assert db.gates.evaluate(gp, once=True)
    n = len(deliveries(db))
    assert db.gates.evaluate(gp, once=True) == [] and len(deliveries(db)) == n


def test_a_rule_firing_again_is_logged_but_not_announced_again(db: Database) -> None:
    # A's first five losing runs kill it; each later losing run makes its kill rule fire on a
    # new window: a new record each (news for the log), but A is still killed, so no new
    # delivery. A revive, and the kill after it, change A's state: each is announced once.
    def a_records(recs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["action"], r["state"]) for r in recs if r["subject"] == "A"]

    losers(db.store, ["A"])
    gp = policy([hook("http://127.0.0.1:9/a", actions=["kill", "revive"], subjects=["A"])])
    first = db.gates.evaluate(gp)  # catch-up: inconclusive before run 5, then runs 5 and 6 fire
    assert a_records(first) == [("inconclusive", "candidate")] + [("kill", "killed")] * 2
    kill = next(r["seq"] for r in first if r["subject"] == "A" and r["action"] == "kill")
    assert [d["record_seq"] for d in deliveries(db)] == [kill]
    insert(db.con, series("A", [-60.0] * 3, start_hour=6, prefix="A2-"))
    assert a_records(db.gates.evaluate(gp)) == [("kill", "killed")] * 3
    assert [d["record_seq"] for d in deliveries(db)] == [kill]
    db.revive("S", "ops says so", scope="strategy", actor="ops")
    revived = db.revive("A", "ops says so", actor="ops")
    insert(db.con, series("A", [-60.0] * 2, start_hour=9, prefix="A3-"))
    again = [r for r in db.gates.evaluate(gp) if r["subject"] == "A"]
    # judged again at the revive's time (its window still loses), then at runs 9 and 10
    assert [r["action"] for r in again] == ["kill"] * 3
    assert [d["record_seq"] for d in deliveries(db)] == [kill, revived["seq"], again[0]["seq"]]


@pytest.mark.parametrize(("prev", "action", "state", "sent"), [
    (None, "kill", "killed", True),                    # first record: became killed
    (None, "inconclusive", "candidate", True),         # first verdict
    (("kill", "killed"), "kill", "killed", False),     # the kill rule fires again
    (("hold", "killed"), "kill", "killed", False),     # ... after a window where it did not
    (("kill", "killed"), "promote", "killed", False),  # a promotion blocked by the kill
    (("kill", "killed"), "hold", "killed", True),      # a killed subject's verdict changed
    (("hold", "candidate"), "inconclusive", "candidate", True),
    (("inconclusive", "candidate"), "inconclusive", "candidate", False),
    (("hold", "candidate"), "promote", "promoted", True),
    (("promote", "promoted"), "promote", "promoted", False),
    (("kill", "killed"), "revive", "candidate", True),
    (("error", "candidate"), "error", "candidate", True),  # a new failure (is_news: new reason)
])
def test_what_a_receiver_hears(prev: tuple[str, str] | None, action: str, state: str,
                               sent: bool) -> None:
    assert outbox.announces(prev, action, state) is sent


def test_a_rolled_back_append_leaves_no_delivery_and_tells_no_listener(db: Database) -> None:
    losers(db.store, ["A"])
    heard: list[list[dict[str, Any]]] = []
    db.on_decision(heard.append)
    gp = policy([hook("http://127.0.0.1:9/a")])
    d = Decision(subject="A", scope="agent", action="kill", rule="r", fired=("r",),
                 blocked=False, state="killed", cascade_from=None, metrics={}, run_ids=[],
                 as_of=None, policy_hash=gp.hash)
    with pytest.raises(RuntimeError), db.store.transaction():
        journal.append(db.store, [d], gp.decision_body(), notify=gp.notify)
        assert len(deliveries(db)) == 1  # inside: written with the record
        assert heard == []  # not before the commit
        raise RuntimeError("the evaluation failed after the append")
    assert deliveries(db) == [] and journal.read_records(db.con) == [] and heard == []
    with db.store.transaction():
        recs = journal.append(db.store, [d], gp.decision_body(), notify=gp.notify)
        assert heard == []
    assert heard == [recs] and len(deliveries(db)) == 1


def test_on_decision_hears_evaluations_and_revives_after_commit(db: Database) -> None:
    losers(db.store, ["A"])
    heard: list[tuple[str, str]] = []
    db.on_decision(lambda recs: heard.extend((r["action"], r["subject"]) for r in recs))
    db.on_decision(lambda recs: 1 / 0)  # a failing listener is logged, the others still run
    db.gates.evaluate(policy([]), once=True)
    db.revive("S", "reviewed", scope="strategy", actor="ops")
    assert heard == [("kill", "A"), ("kill", "S"), ("revive", "S")]


def test_a_revive_notifies_the_targets_of_the_last_policy(db: Database) -> None:
    losers(db.store, ["A"])
    db.gates.evaluate(policy([hook("http://127.0.0.1:9/a", actions=["kill", "revive"])]), once=True)
    rec = db.revive("S", "false alarm", scope="strategy", actor="ops")
    last = deliveries(db)[-1]
    assert last["record_seq"] == rec["seq"] and last["target"] == "ops"
    assert json.loads(last["payload"])["record"]["reason"] == "false alarm"
    # a later policy without targets: nothing more for the next revive
    db.gates.evaluate(policy([]), once=True)
    assert outbox.saved_section(db.con).targets == []


def test_log_and_counts(db: Database) -> None:
    losers(db.store, ["A"])
    db.gates.evaluate(policy([hook("http://127.0.0.1:9/a")]), once=True)
    rows = outbox.log(db.con)
    assert [r["subject"] for r in rows] == ["S", "A"]  # newest first
    assert all(r["action"] == "kill" and r["status_codes"] == [] for r in rows)
    assert outbox.counts(db.con) == {"pending": 2, "delivered": 0, "expired": 0}
    assert outbox.log(db.con, status="delivered") == []
