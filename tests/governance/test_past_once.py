"""A past evaluation never replaces today's lifecycle (issue #14: a kill switch must never fail
open). Records of a subject are appended in knowledge-time order (`journal.out_of_order`): an
evaluation as of T records no subject whose newest record is stamped after T; it reports that
subject's decision with why it was not recorded, and records the others.

The example worked out by hand (policy `PAST`: a 5-run window, conclusive from 2 runs; kill when
the last 5 runs sum below −50 bps, promote when the window sums above 40 bps). Agent A, no
strategy: +30 on 2023-01-01, 2023-02-01 and 2023-03-15, −60 on 2025-01-01, 2025-02-01,
2025-03-01 (each known at its ts).
- `--once --as-of 2023-03-01`: A's window +30, +30: promote (60 > 40), seq 1.
- `--once --as-of 2025-06-01`: window +30 ×3, −60 ×3 (the newest 5: +30 +30 −60 −60 −60 =
  −120 < −50): kill, seq 2.
- Agent B (no strategy) is backfilled: +30 on 2023-04-01 and 2023-05-01.
- `--once --as-of 2023-06-01`: in the lifecycle as it was then, A is promoted (seq 1); its
  window +30 ×3 (90 > 40) promotes, news (other runs than seq 1's). On main it was appended as
  seq 3 and A, killed in 2025, was current-state promoted again. Now it is reported, not
  recorded (A's newest record, the kill at seq 2, is as of 2025-06-01); B (no record) is
  promoted (60 > 40) and recorded as seq 3.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import alphatrace as at
from alphatrace.api import Database
from alphatrace.cli.main import app
from alphatrace.errors import GovernanceError
from alphatrace.governance import journal
from alphatrace.governance.gates import Decision
from alphatrace.governance.lifecycle import SubjectKey
from alphatrace.policy import Policy, parse_policy_text
from tests.rows import h, insert, reset, run, series

PAST_TEXT = """
gates:
  min_runs: 2
  window: {runs: 5}
  rules:
    - {name: kill_loss, action: kill, when: "last_5_runs_pnl < -50"}
    - {name: promote_ok, action: promote, when: "rolling_pnl_bps > 40"}
"""
PAST: Policy = parse_policy_text(PAST_TEXT, "past.yaml")
FAR = dt.datetime(9999, 1, 1)
KILL_AT = "2025-06-01T00:00:00.000000Z"


def _a(con: Any) -> None:
    insert(con, [run(f"A{i}", "A", pnl, ts=t, strategy=None) for i, (pnl, t) in enumerate([
        (30.0, dt.datetime(2023, 1, 1)), (30.0, dt.datetime(2023, 2, 1)),
        (30.0, dt.datetime(2023, 3, 15)), (-60.0, dt.datetime(2025, 1, 1)),
        (-60.0, dt.datetime(2025, 2, 1)), (-60.0, dt.datetime(2025, 3, 1))])])


def _b(con: Any) -> None:
    insert(con, [run("B0", "B", 30.0, ts=dt.datetime(2023, 4, 1), strategy=None),
                 run("B1", "B", 30.0, ts=dt.datetime(2023, 5, 1), strategy=None)])


def killed_in_2025(db: Database) -> None:
    """A promoted as of 2023-03-01 and killed as of 2025-06-01; then B backfilled."""
    _a(db.con)
    assert [(r["subject"], r["action"], r["seq"]) for r in db.gates.evaluate(
        PAST, as_of="2023-03-01", once=True)] == [("A", "promote", 1)]
    assert [(r["subject"], r["action"], r["seq"]) for r in db.gates.evaluate(
        PAST, as_of="2025-06-01", once=True)] == [("A", "kill", 2)]
    _b(db.con)


def states(db: Database) -> tuple[dict[SubjectKey, str], dict[SubjectKey, str]]:
    """(the current lifecycle, the lifecycle as of a far future time)."""
    return journal.lifecycle_states(db.con), journal.lifecycle_states(db.con, FAR)


def test_a_past_once_does_not_revive_a_killed_agent(db: Database) -> None:
    killed_in_2025(db)
    doc = db.gates.evaluation(PAST, as_of="2023-06-01", catch_up=False, record=True)
    got = {d["subject"]: d for d in doc["decisions"]}
    assert (got["A"]["action"], got["A"]["state"], got["A"]["changed"], got["A"]["seq"]) \
        == ("promote", "promoted", True, None)
    assert got["A"]["not_recorded"] == (
        "agent A has a newer record (kill at seq 2, as of 2025-06-01T00:00:00.000000Z): a "
        "record as of 2023-06-01T00:00:00.000000Z would replace its current state with an "
        "older one")
    assert (got["B"]["action"], got["B"]["seq"], got["B"]["not_recorded"]) == ("promote", 3, None)
    assert db.con.execute("SELECT subject, action, as_of FROM decisions WHERE seq > 2"
                          ).fetchall() == [("B", "promote", dt.datetime(2023, 6, 1))]
    now, later = states(db)
    assert now == later == {("agent", "A"): "killed", ("agent", "B"): "promoted"}
    # the lifecycle as of 2023-06-01 is still what it was: A promoted (seq 1)
    assert journal.lifecycle_states(db.con, dt.datetime(2023, 6, 1))[("agent", "A")] == "promoted"
    # the audit names the backfill (B's runs came after the 2025 evaluation), not A's absence
    assert [(p["seq"], p["kind"], p["detail"]) for p in db.audit_verify()["problems"]] == [
        (2, "inputs_changed", "evaluation 2 would now also decide agent 'B' (promote)")]


def test_the_same_past_once_with_evaluate_returns_only_what_it_recorded(db: Database) -> None:
    killed_in_2025(db)
    recs = db.gates.evaluate(PAST, as_of="2023-06-01", once=True)
    assert [(r["subject"], r["action"], r["seq"]) for r in recs] == [("B", "promote", 3)]
    # a dry run says the same, writing nothing
    dry = db.gates.evaluation(PAST, as_of="2023-06-01", once=True, record=False)
    assert [(d["subject"], d["changed"], d["not_recorded"] is not None)
            for d in dry["decisions"]] == [("A", True, True), ("B", False, False)]


def test_a_past_catch_up_does_not_revive_a_killed_agent(db: Database) -> None:
    """A catch-up to an as-of before A's kill (its marks are later: a single evaluation)
    holds A back the same way."""
    killed_in_2025(db)
    doc = db.gates.evaluation(PAST, as_of="2023-06-01")
    assert [(d["subject"], d["seq"], d["not_recorded"] is not None)
            for d in doc["decisions"]] == [("A", None, True), ("B", 3, False)]
    assert states(db)[0][("agent", "A")] == "killed"


runner = CliRunner()


def test_cli_past_once_reports_the_subject_it_did_not_record(tmp_path: Path) -> None:
    path = tmp_path / "g.duckdb"
    policy = tmp_path / "past.yaml"
    policy.write_text(PAST_TEXT)
    with at.connect(path) as db:
        killed_in_2025(db)
    args = ["gates", "evaluate", "--policy", str(policy), "--once", "--as-of", "2023-06-01",
            "--db", str(path)]
    r = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert [(d["subject"], d["changed"], d["seq"], (d["not_recorded"] or "")[:32])
            for d in doc["decisions"]] == [("A", True, None, "agent A has a newer record (kill"),
                                           ("B", True, None, "")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0
    out = " ".join(r.stdout.split())
    assert [line.split("│")[1:8:6] for line in r.stdout.splitlines() if "│ agent" in line] \
        == [["   — ", " not recorded "], ["   3 ", " —            "]]
    assert "promote: 2; 1 not recorded (newer record)" in out
    err = " ".join(r.stderr.split())
    assert f"not recorded: agent A has a newer record (kill at seq 2, as of {KILL_AT})" in err
    with at.connect(path, read_only=True) as db:
        assert journal.lifecycle_states(db.con) == {("agent", "A"): "killed",
                                                    ("agent", "B"): "promoted"}
        assert [(s, q) for s, q in db.con.execute(
            "SELECT subject, seq FROM decisions ORDER BY seq").fetchall()] == [
            ("A", 1), ("A", 2), ("B", 3)]


def test_no_writer_can_append_an_older_record(db: Database) -> None:
    """The rule lives in `journal.write`: a record stamped before its subject's newest one is
    refused whoever writes it, and nothing of the batch is written."""
    killed_in_2025(db)
    old = Decision(subject="A", scope="agent", action="promote", rule="promote_ok", fired=(),
                   blocked=False, state="promoted", cascade_from=None, metrics={},
                   run_ids=[], as_of=dt.datetime(2024, 1, 1), policy_hash=None)
    fine = Decision(subject="B", scope="agent", action="hold", rule=None, fired=(),
                    blocked=False, state="candidate", cascade_from=None, metrics={},
                    run_ids=[], as_of=dt.datetime(2024, 1, 1), policy_hash=None)
    with db.store.transaction(), pytest.raises(GovernanceError, match="agent A has a newer"):
        journal.append(db.store, [fine, old], None)
    assert db.con.execute("SELECT max(seq) FROM decisions").fetchall() == [(2,)]
    # within one batch too: B at 2024 then B at 2023
    earlier = Decision(**{**fine.__dict__, "as_of": dt.datetime(2023, 1, 1)})
    with db.store.transaction(), pytest.raises(GovernanceError, match="this evaluation"):
        journal.append(db.store, [fine, earlier], None)
    assert db.con.execute("SELECT max(seq) FROM decisions").fetchall() == [(2,)]


def test_a_catch_up_after_a_revive_resumes_at_the_revive(db: Database) -> None:
    """A revive stamped at a knowledge time the subject was not evaluated to: the next
    catch-up judges A from the revive's time on, never at a point before it. A: −40 at h0,
    −30 at h1 (catch-up to h1: h0 inconclusive, h1 kill); +5 at h2, B +1 at h3 arrive; A is
    revived at h3 (the newest knowledge time). The catch-up resumes A at h3 (not at h2, a
    point before the revive): window −40 −30 +5 = −65 < −50, kill again at h3; B at h3: one
    run, inconclusive."""
    insert(db.con, series("A", [-40.0, -30.0], strategy=None))
    db.gates.evaluate(PAST)
    insert(db.con, [run("A0002", "A", 5.0, hour=2, strategy=None),
                    run("B0000", "B", 1.0, hour=3, strategy=None)])
    rec = db.revive("A", "reviewed", actor="t")
    assert rec["as_of"] == "2024-01-01T03:00:00.000000Z"
    recs = db.gates.evaluate(PAST)
    assert [(r["subject"], r["action"], r["state"], r["as_of"]) for r in recs] == [
        ("A", "kill", "killed", "2024-01-01T03:00:00.000000Z"),
        ("B", "inconclusive", "candidate", "2024-01-01T03:00:00.000000Z")]
    now, later = states(db)
    assert now == later
    assert db.audit_verify()["problems"] == []


# The property: whatever order catch-ups, single evaluations and revives come in, at any
# as-of, with data arriving in between, the current lifecycle (newest by seq) is the lifecycle
# as of any later time, and each subject's records are in as_of order.

STRAT = """
gates:
  min_runs: 2
  window: {runs: 3}
  rules:
    - {name: kill_loss, action: kill, when: "last_5_runs_pnl < -30"}
    - {name: promote_ok, action: promote, when: "rolling_pnl_bps > 20"}
"""
PROP: Policy = parse_policy_text(STRAT, "prop.yaml")

runs_st = st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 11),
                             st.sampled_from([-40.0, -20.0, 5.0, 25.0]),
                             st.integers(0, 3)), min_size=3, max_size=14)
ops_st = st.lists(st.tuples(st.sampled_from(["data", "catchup", "once", "revive"]),
                            st.integers(0, 14)), min_size=1, max_size=10)


def _apply(db: Database, op: str, hour: int, pending: list[dict[str, Any]]) -> None:
    if op == "data":  # the runs known by `hour` arrive
        now = [r for r in pending if r["known_ts"] <= h(hour)]
        for r in now:
            pending.remove(r)
        if now:
            insert(db.con, now)
    elif op == "catchup":
        db.gates.evaluate(PROP, as_of=h(hour))
    elif op == "once":
        db.gates.evaluate(PROP, as_of=h(hour), once=True)
    else:  # revive what can be: strategies first
        for (scope, subject), state in sorted(journal.lifecycle_states(db.con).items(),
                                              key=lambda kv: kv[0][0] != "strategy"):
            if state == "killed":
                # an agent of a strategy still killed is refused
                with contextlib.suppress(GovernanceError):
                    db.revive(subject, "test", scope=scope, actor="t")


@settings(max_examples=60, deadline=None)
@given(runs=runs_st, ops=ops_st)
def test_current_lifecycle_is_the_lifecycle_as_of_later(shared: Database,
                                                        runs: list[tuple[str, int, float, int]],
                                                        ops: list[tuple[str, int]]) -> None:
    reset(shared.con)
    pending = [run(f"{a}{i:02d}", a, pnl, hour=hr, strategy="S" if a != "C" else "T",
                   lag_h=lag) for i, (a, hr, pnl, lag) in enumerate(runs)]
    for op, hour in ops:
        _apply(shared, op, hour, pending)
        now, later = states(shared)
        assert now == later, (op, hour)
        rows = shared.con.execute(
            "SELECT scope, subject, as_of FROM decisions WHERE scope IN ('agent', 'strategy') "
            "ORDER BY seq").fetchall()
        newest: dict[tuple[str, str], dt.datetime] = {}
        for sc, s, t in rows:
            assert t >= newest.get((sc, s), t), (sc, s, t)
            newest[(sc, s)] = t
