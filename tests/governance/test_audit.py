"""The decision log: every tampering is named (edited / removed / reordered) at its seq, and late
data is told apart from tampering (inputs_changed)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

import alphatrace as at
from alphatrace.api import Database
from alphatrace.governance.canon import GENESIS
from tests.policies import SEED
from tests.rows import insert, series


@pytest.fixture
def db() -> Iterator[Database]:
    """Three evaluations and a revive: 4 + 2 + 1 + 2 = 9 records (only changes are recorded)."""
    d = at.connect(":memory:")
    insert(d.con, series("A", [-30.0] * 5, strategy="S") + series("B", [10.0] * 20, strategy="T"))
    d.gates.evaluate(SEED, catch_up=False)  # seq 1-4: A kill, B promote, S kill, T promote
    insert(d.con, series("C", [1.0] * 3, strategy="T", start_hour=30))
    # seq 5-6: C inconclusive (new), T promote (fires on a window with C's runs); A, B, S as before
    d.gates.evaluate(SEED, catch_up=False)
    d.revive("S", "risk limits tightened")  # seq 7
    insert(d.con, series("A", [-30.0], strategy="S", start_hour=40, prefix="A2-"))
    d.gates.evaluate(SEED, catch_up=False)  # seq 8-9: A kill (fires on a new window), S kill (killed again)
    yield d
    d.close()


def problems(db: Database) -> list[tuple[int | None, str]]:
    return [(p["seq"], p["kind"]) for p in db.audit_verify()["problems"]]


def test_an_untouched_log_verifies(db: Database) -> None:
    out = db.audit_verify()
    assert out == {"ok": True, "records": 9, "head": out["head"], "legacy_records": 0,
                   "anchors": 0, "anchored_to_seq": None, "problems": []}
    assert out["head"] == db.con.execute("SELECT hash FROM decisions WHERE seq = 9").fetchall()[0][0]


def test_hashes_chain_by_hand(db: Database) -> None:
    rows = db.con.execute("SELECT seq, prev_hash, hash, eval_id, subject, scope, action, rule, "
                          "fired, blocked, state, cascade_from, reason, policy_hash, as_of, "
                          "metrics, run_ids, created_at, actor, hash_version FROM decisions "
                          "ORDER BY seq").fetchall()
    prev = GENESIS
    for r in rows:
        assert r[1] == prev
        body = {"eval_id": r[3], "subject": r[4], "scope": r[5], "action": r[6], "rule": r[7],
                "fired": json.loads(r[8]), "blocked": r[9], "state": r[10],
                "cascade_from": r[11], "reason": r[12], "policy_hash": r[13],
                "as_of": r[14].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "metrics": json.loads(r[15]),
                "run_ids": json.loads(r[16]), "prev_hash": r[1], "seq": r[0],
                "created_at": r[17].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": r[18],
                "hash_version": r[19]}
        assert r[19] == 2 and (r[18] is not None) == (r[6] == "revive")
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode()).hexdigest() == r[2]
        prev = r[2]


@pytest.mark.parametrize("change", [
    "action = 'kill'", "metrics = '{\"runs\":5}'", "run_ids = '[]'", "rule = NULL",
    "as_of = as_of + INTERVAL 1 HOUR", "reason = 'because'",
    "created_at = created_at + INTERVAL 1 SECOND", "actor = 'mallory'", "hash_version = 1",
])
def test_an_edited_record_is_named(db: Database, change: str) -> None:
    db.con.execute(f"UPDATE decisions SET {change} WHERE seq = 6")
    assert problems(db) == [(6, "edited")]


def test_an_edited_record_with_a_recomputed_hash_is_named(db: Database) -> None:
    from alphatrace.governance.journal import read_records, record_hash

    rec = next(r for r in read_records(db.con) if r["seq"] == 6)
    rec["action"] = "hold"
    db.con.execute("UPDATE decisions SET action = 'hold', hash = ? WHERE seq = 6", [record_hash(rec)])
    assert problems(db)[0] == (6, "edited")
    assert {s for s, k in problems(db) if k != "inputs_changed"} == {6}


def test_a_removed_record_is_named(db: Database) -> None:
    db.con.execute("DELETE FROM decisions WHERE seq = 7")
    assert problems(db) == [(7, "removed")]


def test_removing_the_last_records_is_named(db: Database) -> None:
    db.con.execute("DELETE FROM decisions WHERE seq >= 8")
    assert problems(db) == [(8, "removed"), (9, "removed")]


def test_removing_the_first_record_is_named(db: Database) -> None:
    db.con.execute("DELETE FROM decisions WHERE seq = 1")
    assert (0, "removed") not in problems(db)
    assert problems(db)[0][1] == "removed"


def test_reordered_records_are_named(db: Database) -> None:
    db.con.execute("UPDATE decisions SET seq = CASE seq WHEN 3 THEN 8 ELSE 3 END "
                   "WHERE seq IN (3, 8)")
    assert problems(db) == [(3, "reordered"), (8, "reordered")]


def test_adjacent_swap_is_named(db: Database) -> None:
    db.con.execute("UPDATE decisions SET seq = CASE seq WHEN 8 THEN 9 ELSE 8 END "
                   "WHERE seq IN (8, 9)")
    assert problems(db) == [(8, "reordered"), (9, "reordered")]


def test_all_three_at_once(db: Database) -> None:
    db.con.execute("UPDATE decisions SET action = 'hold' WHERE seq = 2")
    db.con.execute("DELETE FROM decisions WHERE seq = 5")
    db.con.execute("UPDATE decisions SET seq = CASE seq WHEN 8 THEN 9 ELSE 8 END "
                   "WHERE seq IN (8, 9)")
    assert problems(db) == [(2, "edited"), (5, "removed"), (8, "reordered"), (9, "reordered")]


def test_the_lifecycle_is_read_from_the_chain(db: Database) -> None:
    from alphatrace.governance.journal import lifecycle_states

    # by hand from the fixture: S killed at 3, revived at 7, killed again at 9
    rows = db.con.execute("SELECT scope, subject, state, since_seq FROM lifecycle "
                          "ORDER BY ALL").fetchall()
    assert ("strategy", "S", "killed", 9) in rows and ("agent", "A", "killed", 1) in rows
    assert {(sc, s): st for sc, s, st, _ in rows} == lifecycle_states(db.con)
    with pytest.raises(duckdb.Error):  # a view: there is no separate table to edit
        db.con.execute("UPDATE lifecycle SET state = 'promoted' WHERE subject = 'A'")


def test_a_changed_seq_is_named_reordered(db: Database) -> None:
    db.con.execute("UPDATE decisions SET seq = 99 WHERE seq = 9")
    out = db.audit_verify()
    assert [(p["seq"], p["kind"]) for p in out["problems"]] == [(99, "reordered")]
    assert "written as seq 9" in out["problems"][0]["detail"]


def test_a_tampered_policy_is_named(db: Database) -> None:
    db.con.execute("UPDATE governance_policies SET body = replace(body, '0.2', '0.9')")
    assert set(problems(db)) == {(1, "edited"), (5, "edited"), (8, "edited")}


def test_late_data_is_inputs_changed_not_tampering(db: Database) -> None:
    # a late run of B inside the first evaluation's window (hour 2.5 ≤ as-of)
    insert(db.con, series("B", [-500.0], strategy="T", start_hour=2.5, prefix="late"))
    out = db.audit_verify()
    kinds = {p["kind"] for p in out["problems"]}
    assert kinds == {"inputs_changed"} and out["ok"] is False
    first = [p for p in out["problems"] if p["seq"] == 2]  # B in evaluation 1
    assert len(first) == 1
    # the late run enters B's 20-run window and pushes its oldest run out
    assert "run_ids: +1 (late0000) −1 (B0000)" in first[0]["detail"]
    assert "rolling_pnl_bps 200.0 → -310.0" in first[0]["detail"]
    assert "action: promote → hold" in first[0]["detail"]


def test_data_after_the_as_of_changes_nothing(db: Database) -> None:
    insert(db.con, series("B", [-500.0] * 5, strategy="T", start_hour=1000, prefix="later"))
    assert db.audit_verify()["ok"] is True


def test_a_new_exclusion_is_inputs_changed(db: Database) -> None:
    db.con.execute("INSERT INTO run_exclusions VALUES ('A0001', 'r', 'why', NULL)")
    kinds = {(p["seq"], p["kind"]) for p in db.audit_verify()["problems"]}
    assert (1, "inputs_changed") in kinds and all(k == "inputs_changed" for _, k in kinds)


def test_audit_show(db: Database) -> None:
    recs: list[dict[str, Any]] = db.audit_show("S")
    assert [(r["seq"], r["action"], r["state"]) for r in recs] == [
        (3, "kill", "killed"), (7, "revive", "candidate"), (9, "kill", "killed")]
    assert recs[1]["reason"] == "risk limits tightened"


def test_chain_only_mode_skips_recompute(db: Database) -> None:
    insert(db.con, series("B", [-500.0], strategy="T", start_hour=2.5, prefix="late"))
    assert db.audit_verify(recompute=False)["ok"] is True
