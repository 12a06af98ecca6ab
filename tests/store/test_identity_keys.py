"""The stored identity keys held in memory (store/identity_keys.py): dedupe decides there.

A key the set lacks would let a duplicate in; a key it holds wrongly would drop a new event. So
the property test checks `contains` against a plain set of whole keys (with many keys sharing a
high half, which md5 keys almost never do), and the store tests write identities where a given
set cannot see them (another Store on the same file, a rolled-back transaction) and check that
dedupe is still exact.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.store import Store
from alphatrace.store.identity_keys import StoredKeys, repeats, sorting_order, stored_keys
from alphatrace.store.ingest import ingest_events
from alphatrace.store.typed_ingest import ingest_typed

# Halves from the whole range, its edges (the sign bit of the int64 view) and a few small
# values, so that keys often share a high half and a probe often shares only one half.
HALF = st.one_of(st.integers(min_value=0, max_value=2**64 - 1),
                 st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]),
                 st.integers(min_value=0, max_value=3))
KEYS = st.lists(st.tuples(HALF, HALF), max_size=40)


def _halves(keys: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([h for h, _ in keys], dtype=np.uint64),
            np.array([lo for _, lo in keys], dtype=np.uint64))


@given(batches=st.lists(KEYS, max_size=25), pending=KEYS, probes=KEYS)
def test_contains_is_exact_membership_of_committed_and_pending(
        batches: list[list[tuple[int, int]]], pending: list[tuple[int, int]],
        probes: list[tuple[int, int]]) -> None:
    s = StoredKeys()
    seen: set[tuple[int, int]] = set()
    for b in batches:  # one transaction each; runs merge as they grow
        s.add(*_halves(b))
        s.commit()
        seen.update(b)
    s.add(*_halves(pending))  # the current transaction's, not committed
    seen.update(pending)
    queries = sorted(seen) + probes + [(lo, h) for h, lo in probes]
    got = s.contains(*_halves(queries)).tolist()
    assert got == [q in seen for q in queries]
    assert s.rows == -1 + sum(len(b) for b in batches)  # never built: rows counts from -1


def _events(prefix: str, n: int) -> list[dict[str, object]]:
    return [{"run_id": f"{prefix}{i}", "realized_pnl_bps": float(i)} for i in range(n)]


def test_a_second_store_on_the_same_file_is_seen(tmp_path: Path) -> None:
    """Events written through another Store object (its own key set) are duplicates for the
    first one afterwards: its set sees the table grew and rebuilds."""
    db = tmp_path / "s.duckdb"
    with Store(db) as a, Store(db) as b:
        assert ingest_events(a, _events("a", 5))[0].accepted == 5
        assert ingest_events(b, _events("b", 7))[0].accepted == 7
        again = ingest_events(a, _events("b", 7) + _events("a", 5) + _events("c", 2))[0]
        assert (again.accepted, again.duplicates) == (2, 12)
        assert stored_keys(a).rows == 14
        assert a.con.execute("SELECT count(*) FROM pnl").fetchall()[0][0] == 14


def test_a_rolled_back_round_leaves_no_key_behind(store: Store) -> None:
    """A round whose transaction fails stores nothing, and its keys do not make the same
    events duplicates afterwards."""
    events = [{"run_id": f"r{i}", "agent": "A", "latency_ms": 10.0, "event_id": f"e{i}"}
              for i in range(4)]

    def fail(_con: object) -> None:
        raise RuntimeError("simulated failure after the events were written")

    with pytest.raises(RuntimeError):
        ingest_typed(store, events, within=fail)
    assert store.con.execute("SELECT count(*) FROM telemetry").fetchall()[0][0] == 0
    report, res = ingest_typed(store, events)
    assert (report.accepted, report.duplicates) == (4, 0)
    assert [r.status for r in res] == ["accepted"] * 4
    assert ingest_typed(store, events)[0].duplicates == 4
    assert stored_keys(store).rows == 4


def test_duplicates_of_stored_events_are_found_among_new_ones(store: Store) -> None:
    """A batch mixing stored events and new ones."""
    ingest_events(store, _events("x", 50))
    report, res = ingest_events(store, _events("y", 3) + _events("x", 50)[::7] + _events("z", 1))
    assert (report.accepted, report.duplicates) == (4, 8)
    assert [r.status for r in res] == ["accepted"] * 3 + ["duplicate"] * 8 + ["accepted"]


def test_a_duplicate_is_decided_in_memory(store: Store) -> None:
    """Once the set is built, dedupe reads no identity from the table: with the table's keys
    changed behind its back (same row count, so the set is not rebuilt), stored events are
    still duplicates."""
    ingest_events(store, _events("x", 20))
    store.con.execute("UPDATE event_identity SET key_lo = xor(key_lo, 1::UBIGINT)")  # every key changed
    report = ingest_events(store, _events("x", 20) + _events("y", 2))[0]
    assert (report.accepted, report.duplicates) == (2, 20)


def test_a_stale_set_lets_no_duplicate_in(tmp_path: Path) -> None:
    """Another writer adds events after this Store's set was built and while it is up to
    date; those events, sent again through this Store, are duplicates, in the same round as
    events this Store wrote itself, and every event is stored once."""
    db = tmp_path / "s.duckdb"
    with Store(db) as a, Store(db) as b:
        ingest_events(a, _events("a", 30))
        assert stored_keys(a).rows == 30
        for i in range(3):  # the other writer, several rounds between two of ours
            ingest_events(b, _events(f"b{i}-", 10))
        again = ingest_events(a, _events("b1-", 10) + _events("a", 30)[::3] + _events("b2-", 10))[0]
        assert (again.accepted, again.duplicates) == (0, 30)
        assert ingest_events(b, _events("a", 30))[0].duplicates == 30
        assert a.con.execute("SELECT count(*), count(DISTINCT (key_hi, key_lo)) "
                             "FROM event_identity").fetchall() == [(60, 60)]
        assert a.con.execute("SELECT count(*) FROM pnl").fetchall() == [(60,)]


@given(keys=st.lists(HALF, max_size=300), shift=st.integers(min_value=0, max_value=63))
def test_sorting_order_is_numpys_stable_argsort(keys: list[int], shift: int) -> None:
    """Keys sharing high bits (small values, and values shifted to differ in low bits only)
    are the case the fast order handles apart."""
    hi = np.array(keys + [k >> shift for k in keys], dtype=np.uint64).view(np.int64)
    order, got = sorting_order(hi)
    assert order.tolist() == np.argsort(hi, kind="stable").tolist()
    assert got.tolist() == sorted(hi.tolist())


def test_overlapping_ingests_through_two_stores_store_an_event_once(tmp_path: Path) -> None:
    """Two Store objects on one file in one process (the server runs a CLI `ingest` on its own
    Store beside the writer's HTTP rounds) ingest the same new events in transactions that
    would overlap: neither transaction sees the other's uncommitted keys, so each would store
    them. One ingest transaction at a time per file (`store.ingest.ingest_transaction`) makes
    the second wait for the first and find its events stored."""
    db = tmp_path / "s.duckdb"
    events = [{"run_id": f"r{i}", "agent": "A", "latency_ms": 10.0, "event_id": f"e{i}"}
              for i in range(5)]
    inside, second_done = threading.Event(), threading.Event()
    results: dict[str, tuple[int, int]] = {}

    def hold(_con: object) -> None:  # the first transaction, its events written, not committed
        inside.set()
        second_done.wait(timeout=3)  # bounded: with the fix the second waits for this one

    with Store(db) as a, Store(db) as b:
        def first() -> None:
            r = ingest_typed(a, events, within=hold)[0]
            results["first"] = (r.accepted, r.duplicates)

        def second() -> None:
            inside.wait(timeout=30)
            r = ingest_typed(b, events)[0]
            results["second"] = (r.accepted, r.duplicates)
            second_done.set()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert results == {"first": (5, 0), "second": (0, 5)}
        assert a.con.execute("SELECT count(*) FROM telemetry").fetchall() == [(5,)]
        assert a.con.execute("SELECT count(*) FROM event_identity").fetchall() == [(5,)]


@given(keys=KEYS, dup=st.booleans(), data=st.data())
def test_repeats_is_whether_a_key_occurs_twice(keys: list[tuple[int, int]], dup: bool,
                                               data: st.DataObject) -> None:
    """Against a set of whole keys; keys sharing a high half (HALF's small values) are the
    case the low halves decide."""
    if dup and keys:
        keys = [*keys, data.draw(st.sampled_from(keys))]
        keys = data.draw(st.permutations(keys))
    assert repeats(*_halves(keys)) == (len(set(keys)) < len(keys))
