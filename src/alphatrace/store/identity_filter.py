"""Which identity keys of a chunk may already be stored, answered in memory in O(m log n).

Why: the dedupe probe used to be an anti-join of the chunk's keys against all of
`event_identity`. That scan costs the whole table per chunk whenever ids are not time-ordered
(UUID4 run ids, content hashes: the `pre` range then spans every row group), so a 100-event
collector round on a 3M-event store cost about 60 ms of CPU, and a bulk chunk 0.35 µs a line,
growing with the store (bench/RESULTS.md, session of 2026-12-02).

`KeyFilter` holds the high 64 bits (`key_hi`) of every stored identity key as a few sorted
numpy arrays (runs merged as they grow, so there are O(log n) of them). A key whose `key_hi` is
in none of them is new: no table is read. A key whose `key_hi` is found is a *probable*
duplicate, which the caller checks exactly against `event_identity` (both halves). So the
filter decides only "certainly new"; it must never miss a stored key, and that is what
`begin` guarantees:

- it is rebuilt from `event_identity` whenever the table's row count (seen inside the
  caller's transaction) differs from the count it reflects. Nothing deletes identities, so a
  row written by anything else (another `Store` on the same file in this process, another
  process since this one last looked, a migration) changes the count and forces a rebuild;
- keys written by the current transaction are `add`ed as pending: they answer `maybe` at once
  (a later chunk of the same file), and join the committed runs only when the transaction
  commits (`Store.after_commit`); a rollback or a kill -9 leaves nothing behind, since the
  table is the truth and the filter is rebuilt from it in a new process.

Memory: 8 bytes per stored event (24 MB at 3M). False positives (a new key whose high half
equals a stored one's) only cost an exact check: about m·n/2^64 per chunk.
"""

from __future__ import annotations

import weakref

import duckdb
import numpy as np

from alphatrace.store.connection import Store
from alphatrace.store.statements import parsed

_MERGE_FACTOR = 4  # a run is merged into the one before it once that is < 4× its size


class KeyFilter:
    """Sorted runs of stored `key_hi` values, plus the current transaction's pending ones."""

    def __init__(self) -> None:
        self.rows = -1  # committed rows of event_identity reflected; -1: never built
        self._runs: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []

    def begin(self, store: Store, con: duckdb.DuckDBPyConnection) -> None:
        """Start a transaction's use: drop what a rolled-back one left pending, and rebuild
        from the table if it holds rows the filter does not reflect."""
        self._pending = []
        n = int(con.execute(parsed(con, "SELECT count(*) FROM event_identity")).fetchall()[0][0])
        if n != self.rows:
            hi = con.execute(parsed(con, "SELECT key_hi FROM event_identity")).fetchnumpy()["key_hi"]
            self._runs = [np.sort(np.asarray(hi, dtype=np.uint64))] if n else []
            self.rows = n
        store.after_commit(self.commit)

    def maybe(self, hi: np.ndarray) -> np.ndarray:
        """For each key_hi, whether a stored (or pending) key has the same high half."""
        found = np.zeros(len(hi), dtype=bool)
        if not len(hi):
            return found
        order = np.argsort(hi, kind="stable")  # sorted probes walk each run once
        q = hi[order]
        for run in self._runs + self._pending:
            if not len(run):
                continue
            at = np.searchsorted(run, q)
            hit = run[np.minimum(at, len(run) - 1)] == q
            found[order[hit]] = True
        return found

    def add(self, hi: np.ndarray) -> None:
        """Keys the current transaction wrote to event_identity."""
        if len(hi):
            self._pending.append(np.sort(np.asarray(hi, dtype=np.uint64)))

    def commit(self) -> None:
        """The current transaction committed: its pending keys join the runs."""
        for run in self._pending:
            self.rows += len(run)
            self._runs.append(run)
            while (len(self._runs) > 1
                   and len(self._runs[-2]) < _MERGE_FACTOR * len(self._runs[-1])):
                last = self._runs.pop()
                self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")
        self._pending = []


_FILTERS: weakref.WeakKeyDictionary[Store, KeyFilter] = weakref.WeakKeyDictionary()


def key_filter(store: Store) -> KeyFilter:
    """The filter of `store` (one per open Store object), built on first use."""
    f = _FILTERS.get(store)
    if f is None:
        f = _FILTERS[store] = KeyFilter()
    return f
