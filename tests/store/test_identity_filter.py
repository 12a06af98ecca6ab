"""The in-memory identity filter (store/identity_filter.py): it must never miss a stored key.

A miss would let a duplicate in; a false "maybe" only costs the exact check. So: the property
test checks `maybe` against a plain set, and the store tests write identities where a given
filter cannot see them (another Store on the same file, a rolled-back transaction) and check
that dedupe is still exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.store import Store
from alphatrace.store.identity_filter import KeyFilter, key_filter
from alphatrace.store.ingest import ingest_events
from alphatrace.store.typed_ingest import ingest_typed

U64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(batches=st.lists(st.lists(U64, max_size=40), max_size=25), pending=st.lists(U64, max_size=10),
       probes=st.lists(U64, max_size=40))
def test_maybe_is_exact_membership_of_committed_and_pending(
        batches: list[list[int]], pending: list[int], probes: list[int]) -> None:
    f = KeyFilter()
    seen: set[int] = set()
    for b in batches:  # one transaction each; runs merge as they grow
        f.add(np.array(b, dtype=np.uint64))
        f.commit()
        seen.update(b)
    f.add(np.array(pending, dtype=np.uint64))  # the current transaction's, not committed
    seen.update(pending)
    queries = sorted(seen) + probes
    got = f.maybe(np.array(queries, dtype=np.uint64)).tolist()
    assert got == [q in seen for q in queries]


def _events(prefix: str, n: int) -> list[dict[str, object]]:
    return [{"run_id": f"{prefix}{i}", "realized_pnl_bps": float(i)} for i in range(n)]


def test_a_second_store_on_the_same_file_is_seen(tmp_path: Path) -> None:
    """Events written through another Store object (its own filter) are duplicates for the
    first one afterwards: its filter sees the table grew and rebuilds."""
    db = tmp_path / "s.duckdb"
    with Store(db) as a, Store(db) as b:
        assert ingest_events(a, _events("a", 5))[0].accepted == 5
        assert ingest_events(b, _events("b", 7))[0].accepted == 7
        again = ingest_events(a, _events("b", 7) + _events("a", 5) + _events("c", 2))[0]
        assert (again.accepted, again.duplicates) == (2, 12)
        assert key_filter(a).rows == 14
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
    assert key_filter(store).rows == 4


def test_duplicates_of_stored_events_are_found_among_new_ones(store: Store) -> None:
    """A batch mixing stored events (probable duplicates, checked exactly) and new ones."""
    ingest_events(store, _events("x", 50))
    report, res = ingest_events(store, _events("y", 3) + _events("x", 50)[::7] + _events("z", 1))
    assert (report.accepted, report.duplicates) == (4, 8)
    assert [r.status for r in res] == ["accepted"] * 3 + ["duplicate"] * 8 + ["accepted"]
