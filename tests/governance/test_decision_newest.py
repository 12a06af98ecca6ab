"""`decision_newest` (migration 0027): which record is each subject's newest, kept by
`journal.write` so the live pass does not group the whole decision log to find it.

Expected values are computed here from the writes themselves (the k-th record written has seq
k; a subject's newest is the last one written about it), not by reading the log back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.errors import GovernanceError
from alphatrace.governance import audit, journal, replay
from alphatrace.governance.canon import ts_text
from alphatrace.governance.journal import Newest
from alphatrace.governance.lifecycle import CHAIN_SCOPE, SubjectKey
from alphatrace.store import Store

T0 = dt.datetime(2024, 1, 1)
AT = dt.datetime(2024, 6, 1)
KEYS: list[SubjectKey] = [("agent", "A"), ("agent", "B"), ("strategy", "A"),
                          ("strategy", "S"), (CHAIN_SCOPE, "decisions")]
ACTIONS = ["promote", "kill", "hold", "inconclusive", "revive", "error"]


def content(key: SubjectKey, action: str) -> dict[str, Any]:
    return {"subject": key[1], "scope": key[0], "action": action, "rule": None, "fired": [],
            "blocked": False, "state": "killed" if action == "kill" else "candidate",
            "cascade_from": None, "reason": None, "policy_hash": None, "as_of": None,
            "metrics": {}, "run_ids": []}


# one write: a batch of (subject, action, as_of in hours from T0 or None); hours only grow per
# subject across the whole sequence (`write` refuses the rest, tested in test_past_once)
Batch = list[tuple[int, str, int | None]]
batches = st.lists(st.lists(st.tuples(st.integers(0, len(KEYS) - 1), st.sampled_from(ACTIONS),
                                      st.one_of(st.none(), st.integers(0, 5))),
                            min_size=0, max_size=6), min_size=1, max_size=6)


def write_all(store: Store, writes: list[Batch]) -> list[tuple[SubjectKey, str, dt.datetime | None]]:
    """Write the batches through `journal.write` (each as_of raised to keep the subject's
    order); the records as written, in seq order."""
    done: list[tuple[SubjectKey, str, dt.datetime | None]] = []
    floor: dict[SubjectKey, int] = {}
    hour = 0
    for batch in writes:
        items = []
        for k, action, step in batch:
            key = KEYS[k]
            action = "rechain" if key[0] == CHAIN_SCOPE else action  # the chain's one action
            as_of = None
            if step is not None:
                hour += step
                as_of = T0 + dt.timedelta(hours=max(hour, floor.get(key, 0)))
                floor[key] = max(hour, floor.get(key, 0))
            items.append(({**content(key, action), "as_of": ts_text(as_of)}, as_of))
            done.append((key, action, as_of))
        with store.transaction():
            journal.write(store, items, actor=None, at=AT)
    return done


def expected(done: list[tuple[SubjectKey, str, dt.datetime | None]]
             ) -> tuple[dict[SubjectKey, int], dict[SubjectKey, Newest]]:
    """(each subject's newest seq, `newest_times` of the subjects whose newest has an as_of)."""
    seqs: dict[SubjectKey, int] = {}
    newest: dict[SubjectKey, tuple[int, str, dt.datetime | None]] = {}
    for seq, (key, action, as_of) in enumerate(done, start=1):
        seqs[key] = seq
        newest[key] = (seq, action, as_of)
    times = {k: Newest(q, a, t) for k, (q, a, t) in newest.items()
             if t is not None and k[0] != CHAIN_SCOPE}
    return seqs, times


def table(store: Store) -> dict[SubjectKey, int]:
    return {(sc, s): q for sc, s, q in
            store.con.execute("SELECT scope, subject, seq FROM decision_newest").fetchall()}


@settings(max_examples=60, deadline=None)
@given(writes=batches)
def test_the_table_names_each_subjects_newest_record_after_any_writes(writes: list[Batch]
                                                                       ) -> None:
    with Store(":memory:") as store:
        done = write_all(store, writes)
        seqs, times = expected(done)
        assert table(store) == seqs
        assert journal.newest_times(store.con) == times
        assert journal.newest_times(store.con, [("agent", "A")]) == {
            k: v for k, v in times.items() if k == ("agent", "A")}
        target = T0 + dt.timedelta(hours=3)  # some revives are later: they count at it
        want: dict[dt.datetime, set[SubjectKey]] = {}
        for k, n in times.items():
            if n.action == "revive":
                want.setdefault(min(n.as_of, target), set()).add(k)
        assert replay.revived(journal.newest_times(store.con), target) == want


def test_a_record_written_by_other_means_is_still_seen(store: Store) -> None:
    """The table is trusted only while its newest seq is the log's: a record inserted by
    plain SQL (or the newest one deleted) makes the reads go to the log itself."""
    done = write_all(store, [[(0, "promote", 1), (1, "hold", 1)]])
    assert expected(done)[1] == journal.newest_times(store.con)
    store.con.execute("INSERT INTO decisions (seq, eval_id, subject, scope, action, fired, "
                      "blocked, state, metrics, run_ids, prev_hash, hash, as_of) VALUES "
                      "(3, 9, 'A', 'agent', 'kill', '[]', false, 'killed', '{}', '[]', '', '', "
                      "TIMESTAMP '2024-01-02')")
    assert journal.newest_times(store.con)[("agent", "A")] == Newest(
        3, "kill", dt.datetime(2024, 1, 2))
    store.con.execute("DELETE FROM decisions WHERE seq >= 2")
    assert journal.newest_times(store.con) == {
        ("agent", "A"): Newest(1, "promote", T0 + dt.timedelta(hours=1))}


def test_a_write_after_a_record_written_by_other_means_keeps_seeing_it(store: Store) -> None:
    """After a record inserted by plain SQL, the next `write` (about another subject) makes the
    table's newest seq the log's again: the table must then hold the other record too, or the
    as_of-order rule would let a record about that subject in before it."""
    write_all(store, [[(0, "promote", 1)]])
    store.con.execute("INSERT INTO decisions (seq, eval_id, subject, scope, action, fired, "
                      "blocked, state, metrics, run_ids, prev_hash, hash, as_of) VALUES "
                      "(2, 9, 'A', 'agent', 'kill', '[]', false, 'killed', '{}', '[]', '', '', "
                      "TIMESTAMP '2024-01-02')")
    write_all(store, [[(1, "hold", 1)]])  # agent B, seq 3
    kill = Newest(2, "kill", dt.datetime(2024, 1, 2))
    assert journal.newest_times(store.con)[("agent", "A")] == kill
    assert table(store)[("agent", "A")] == 2
    with pytest.raises(GovernanceError, match="not appended"):  # A at 05:00, before the kill
        write_all(store, [[(0, "promote", 5)]])


def test_inside_one_check_a_write_makes_the_table_the_logs(store: Store) -> None:
    """`newest_checked` reads `newest_kept` once: false after a record written by plain SQL;
    a `write` in the block rebuilds the table from the log, and the block's reads after it
    go to the table, which holds the other record and the new one."""
    write_all(store, [[(0, "promote", 1)]])
    store.con.execute("INSERT INTO decisions (seq, eval_id, subject, scope, action, fired, "
                      "blocked, state, metrics, run_ids, prev_hash, hash, as_of) VALUES "
                      "(2, 9, 'A', 'agent', 'kill', '[]', false, 'killed', '{}', '[]', '', '', "
                      "TIMESTAMP '2024-01-02')")
    with journal.newest_checked(store.con):
        assert not journal.newest_kept(store.con)
        write_all(store, [[(1, "hold", 1)]])  # agent B, seq 3
        assert journal.newest_kept(store.con)
        assert journal.newest_times(store.con) == {
            ("agent", "A"): Newest(2, "kill", dt.datetime(2024, 1, 2)),
            ("agent", "B"): Newest(3, "hold", T0 + dt.timedelta(hours=1))}
    assert journal.newest_kept(store.con)  # read again outside: the same


def test_a_store_from_before_0027_fills_it_from_the_log(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with Store(path) as store:
        done = write_all(store, [[(0, "promote", 1), (2, "hold", 2)],
                                 [(4, "rechain", None), (0, "kill", 0), (3, "revive", None)]])
        store.con.execute("DROP TABLE decision_newest")
        store.con.execute("DELETE FROM schema_migrations WHERE version = 27")
    with Store(path) as store:
        seqs, times = expected(done)
        assert table(store) == seqs == {("agent", "A"): 4, ("strategy", "A"): 2,
                                        (CHAIN_SCOPE, "decisions"): 3, ("strategy", "S"): 5}
        assert journal.newest_times(store.con) == times



@pytest.mark.parametrize(("edit", "seq", "said"), [
    ("UPDATE decision_newest SET seq = 1, action = 'promote' WHERE subject = 'A' "
     "AND scope = 'agent'", 2, "names seq 1 (promote, "),
    ("UPDATE decision_newest SET as_of = TIMESTAMP '2030-01-01' WHERE subject = 'A' "
     "AND scope = 'agent'", 2, "as_of 2030-01-01 00:00:00)"),
    ("DELETE FROM decision_newest WHERE subject = 'A' AND scope = 'agent'", 2, "names nothing"),
    ("INSERT INTO decision_newest VALUES ('agent', 'Z', 1, 'kill', NULL)", 1,
     "newest is nothing"),
])
def test_audit_names_the_subject_whose_row_is_wrong(store: Store, edit: str, seq: int,
                                                    said: str) -> None:
    """`audit verify` checks the table against the log while the reads use it (its newest seq
    is the log's): a row edited, removed or added by hand is `edited`, naming the subject."""
    write_all(store, [[(0, "promote", 1)], [(0, "kill", 2)], [(1, "hold", 3)]])  # A 1, 2; B 3
    assert audit.check_newest(store.con) == []
    store.con.execute(edit)
    got = audit.check_newest(store.con)
    assert [(p["seq"], p["kind"]) for p in got] == [(seq, "edited")]
    assert said in got[0]["detail"]
    assert ("agent 'Z'" if "'Z'" in edit else "agent 'A'") in got[0]["detail"]
    assert [p for p in audit.verify(store.con, recompute=False)["problems"]
            if p["detail"].startswith("decision_newest")] == got


def test_audit_leaves_a_table_the_reads_do_not_use(store: Store) -> None:
    """The log's newest record deleted (a truncation, invisible without an anchor): the table
    is no longer read (the reads fall back to the log) and is not reported."""
    write_all(store, [[(0, "promote", 1)], [(1, "hold", 3)]])
    store.con.execute("DELETE FROM decisions WHERE seq = 2")
    assert audit.check_newest(store.con) == []


@settings(max_examples=80, deadline=None)
@given(writes=batches, at_h=st.integers(0, 40))
def test_each_subjects_newest_record_at_an_as_of(writes: list[Batch], at_h: int) -> None:
    """`newest_records(con, T)`: per subject, of its records with an as_of at or before T, the
    latest by (as_of, seq). Read from `decision_newest` when no record it holds is after T or
    without an as_of, else from the log: both give what is computed here from the writes."""
    at = T0 + dt.timedelta(hours=at_h)
    with Store(":memory:") as store:
        done = write_all(store, writes)
        want: dict[SubjectKey, tuple[dt.datetime, int]] = {}
        for seq, (key, _, as_of) in enumerate(done, start=1):
            if as_of is not None and as_of <= at and (key not in want
                                                      or (as_of, seq) >= want[key]):
                want[key] = (as_of, seq)
        got = journal.newest_records(store.con, at)
        assert {k: r["seq"] for k, r in got.items()} == {k: q for k, (_, q) in want.items()}
