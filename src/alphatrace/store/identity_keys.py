"""Which identity keys of a chunk are already stored, answered exactly in memory in O(m log n).

Why: dedupe used to be an anti-join of the chunk's keys against all of `event_identity`. That
scan costs the whole table per chunk whenever ids are not time-ordered (UUID4 run ids, content
hashes), so a collector round grew with the store. A filter of the keys' high halves then cleared
new keys in memory, but every key it found (a retried batch, a re-ingested file: all of them
duplicates) was still checked against the table, so such rounds kept growing with the store
(bench/RESULTS.md, sessions of 2026-12-02).

`StoredKeys` holds every stored identity key whole: both 64-bit halves of `event_identity`
(`key_hi`, `key_lo`), as a few runs sorted by `key_hi` with `key_lo` beside (runs are merged as
they grow, so there are O(log n) of them). The key is the event's identity (md5 of kind and
event_id, docs/architecture.md §Invariants), so membership here is the same exact answer the
table gives, and dedupe reads no table for new events or duplicates, whatever the order of the
ids and the size of the store. The table stays the truth; the set must hold exactly its rows,
and `begin` guarantees that:

- it is rebuilt from `event_identity` whenever the table's row count (seen inside the caller's
  transaction) differs from the count the set reflects. Nothing deletes identities, so every row
  the set holds is in every later snapshot, and a row written by anything else (another `Store`
  on the same file in this process, another process since this one last looked, a migration)
  changes the count and forces a rebuild;
- keys written by the current transaction are `add`ed as pending: they are stored at once for
  the rest of the transaction (a later chunk of the same file), and join the committed runs only
  when the transaction commits (`Store.after_commit`); a rollback or a kill -9 leaves nothing
  behind, since the table is the truth and the set is rebuilt from it in a new process.

The halves are kept as int64 with the same bits (numpy's argsort of int64 measured twice as
fast as of uint64; `sorting_order` needs neither): the order only has to be the same for the
runs and the probes.

Memory: 16 bytes per stored event (48 MB at 3M). Measured at 3M keys, a rebuild leaves the
process about 170 MB more resident (the keys, DuckDB's cache of the two columns it read, and
what the allocators keep of its temporary arrays for reuse), the old filter of high halves about
60 MB; its high-water mark is 220 MB above the start, the old one's 85 MB.
"""

from __future__ import annotations

import weakref
from typing import TypeAlias

import duckdb
import numpy as np
import pyarrow as pa

from alphatrace.store.connection import Store
from alphatrace.store.statements import parsed, to_arrow_batches

_MERGE_FACTOR = 4  # a run is merged into the one before it once that is < 4× its size

Run = tuple[np.ndarray, np.ndarray]  # (key_hi sorted, key_lo of the same rows), both int64


Half: TypeAlias = np.ndarray | pa.Array | pa.ChunkedArray  # a UBIGINT column, or uint64 values


def _bits(a: Half) -> np.ndarray:
    """A half of the key as int64 with the same bits. An Arrow column (UBIGINT: uint64, no
    nulls) is read from its buffer: `ChunkedArray.to_numpy` measured 340 ms CPU for 3M keys in
    25 chunks against 9 ms for this, and the first `to_numpy` of a process imports pandas
    (0.3 s CPU) for nothing."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if isinstance(a, pa.Array):
        if a.type != pa.uint64() or a.null_count:
            raise TypeError(f"an identity key half is UBIGINT NOT NULL, got {a.type}")
        a = np.frombuffer(a.buffers()[1], dtype=np.uint64, count=len(a), offset=8 * a.offset)
    return np.ascontiguousarray(a, dtype=np.uint64).view(np.int64)


def sorting_order(hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(`np.argsort(hi, kind="stable")`, `hi` in that order) for int64 keys, several times
    faster than argsort on md5 keys.

    numpy sorts plain int64 with its vectorised sort, but not so argsort (at 3M keys: 21 vs
    250 ms CPU). So each key's row number replaces its low bits and those keys are sorted: the
    row numbers come out ordered by the keys' high bits, then by row. Keys sharing their high
    bits (a few pairs among millions of uniform keys) are then put in the order of their full
    value, one small group at a time."""
    n = len(hi)
    bits = max(1, (n - 1).bit_length())
    low = np.int64((1 << bits) - 1)
    tag = (hi & ~low) | np.arange(n, dtype=np.int64)
    tag.sort()
    order = tag & low
    got = hi[order]
    for i in np.flatnonzero(got[1:] < got[:-1]):  # inside a group of equal high bits only
        top = tag[i] & ~low
        a, b = int(np.searchsorted(tag, top)), int(np.searchsorted(tag, top | low, side="right"))
        order[a:b] = order[a:b][np.argsort(got[a:b], kind="stable")]
        got[a:b] = hi[order[a:b]]
    return order, got


def repeats(key_hi: Half, key_lo: Half) -> bool:
    """Whether a key occurs twice among these (a chunk repeating an event: a retried batch, a
    file concatenated with itself). A sort of the high halves answers "no" for nearly every
    chunk; only equal high halves need the low ones."""
    hi, lo = _bits(key_hi), _bits(key_lo)
    if len(hi) < 2:
        return False
    h = np.sort(hi)
    if not (h[1:] == h[:-1]).any():
        return False
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    return bool(((hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])).any())


def _read_keys(con: duckdb.DuckDBPyConnection, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` rows of event_identity (counted in the same transaction) as two int64 arrays.

    Read as Arrow batches copied into numpy arrays: measured at 3M keys, `fetchnumpy` costs
    about 0.3 s CPU against 0.05 s, and reading a whole Arrow table left about 50 MB more
    resident after the rebuild."""
    hi, lo = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    at = 0
    con.execute(parsed(con, "SELECT key_hi, key_lo FROM event_identity"))
    for batch in to_arrow_batches(con, 1 << 17):
        m = batch.num_rows
        hi[at:at + m], lo[at:at + m] = _bits(batch.column(0)), _bits(batch.column(1))
        at += m
    if at != n:
        raise RuntimeError(f"event_identity: counted {n} rows, read {at}")
    return hi, lo


def _run(hi: np.ndarray, lo: np.ndarray) -> Run:
    order, hi_sorted = sorting_order(hi)
    return hi_sorted, lo[order]


def _merge(a: Run, b: Run) -> Run:
    """The union of two runs as one run: `b`'s rows slotted into `a` in O(len(a) + len(b))."""
    at = np.searchsorted(a[0], b[0]) + np.arange(len(b[0]))
    is_b = np.zeros(len(a[0]) + len(b[0]), dtype=bool)
    is_b[at] = True
    out = []
    for x, y in zip(a, b, strict=True):
        m = np.empty(len(is_b), dtype=np.int64)
        m[is_b] = y
        m[~is_b] = x
        out.append(m)
    return out[0], out[1]


def _found_in(run: Run, hi: np.ndarray, lo: np.ndarray, todo: np.ndarray) -> np.ndarray:
    """Which probes `todo` (indexes into sorted `hi`, `lo`) have their whole key in `run`."""
    run_hi, run_lo = run
    at = np.searchsorted(run_hi, hi[todo])  # the first stored key with that high half, if any
    found: list[np.ndarray] = []
    # Walk the stored keys sharing a probe's high half: nearly always at most one (two of n
    # keys share it with probability about n²/2⁶⁵), so this loop nearly always runs once.
    while len(todo):
        inside = at < len(run_hi)
        todo, at = todo[inside], at[inside]
        same_hi = run_hi[at] == hi[todo]
        todo, at = todo[same_hi], at[same_hi]
        same = run_lo[at] == lo[todo]
        found.append(todo[same])
        todo, at = todo[~same], at[~same] + 1
    return np.concatenate(found) if found else todo


class StoredKeys:
    """The stored identity keys in sorted runs, plus the current transaction's pending ones."""

    def __init__(self) -> None:
        self.rows = -1  # committed rows of event_identity reflected; -1: never built
        self._runs: list[Run] = []
        self._pending: list[Run] = []

    def begin(self, store: Store, con: duckdb.DuckDBPyConnection) -> None:
        """Start a transaction's use: drop what a rolled-back one left pending, and rebuild
        from the table if it holds rows the set does not reflect."""
        self._pending = []
        n = int(con.execute(parsed(con, "SELECT count(*) FROM event_identity")).fetchall()[0][0])
        if n != self.rows:
            self._runs = []
            self.rows = -1  # a failure below leaves the set to be rebuilt next time
            if n:
                self._runs = [_run(*_read_keys(con, n))]
            self.rows = n
        store.after_commit(self.commit)

    def contains(self, key_hi: Half, key_lo: Half) -> np.ndarray:
        """For each key (its two halves, UBIGINT bits), whether it is stored or pending."""
        hi, lo = _bits(key_hi), _bits(key_lo)
        found = np.zeros(len(hi), dtype=bool)
        if not len(hi):
            return found
        order, hi = sorting_order(hi)  # sorted probes walk each run once
        lo = lo[order]
        hit = np.zeros(len(hi), dtype=bool)
        for run in self._runs + self._pending:
            hit[_found_in(run, hi, lo, np.flatnonzero(~hit))] = True
        found[order] = hit
        return found

    def add(self, key_hi: Half, key_lo: Half) -> None:
        """Keys the current transaction wrote to event_identity."""
        if len(key_hi):
            self._pending.append(_run(_bits(key_hi), _bits(key_lo)))

    def commit(self) -> None:
        """The current transaction committed: its pending keys join the runs."""
        for run in self._pending:
            self.rows += len(run[0])
            self._runs.append(run)
            while (len(self._runs) > 1
                   and len(self._runs[-2][0]) < _MERGE_FACTOR * len(self._runs[-1][0])):
                last = self._runs.pop()
                self._runs[-1] = _merge(self._runs[-1], last)
        self._pending = []


_SETS: weakref.WeakKeyDictionary[Store, StoredKeys] = weakref.WeakKeyDictionary()


def stored_keys(store: Store) -> StoredKeys:
    """The key set of `store` (one per open Store object), built on first use."""
    s = _SETS.get(store)
    if s is None:
        s = _SETS[store] = StoredKeys()
    return s
