"""`ledger.known_runs`: the in-memory set of the ledger's runs a live caller keeps between
reconciles. Checked against a Python set of the run ids themselves, with DuckDB computing the
hashes as the store does. The set may hold more (runs that left, hash collisions), never fewer;
with 64-bit hashes and a few hundred ids, a run never added must read as not held."""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger.known_runs import NO_TS, KnownRuns, _merge, split


def _con(ledger: set[str], runs: list[str]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE ledger (run_id VARCHAR, ts TIMESTAMP)")
    _add(con, "ledger", sorted(ledger))
    con.execute("CREATE TEMP TABLE _rc_runs (run_id VARCHAR)")
    _add(con, "_rc_runs", runs)
    return con


def _add(con: duckdb.DuckDBPyConnection, table: str, runs: list[str]) -> None:
    for r in runs:
        con.execute(f"INSERT INTO {table} (run_id) VALUES (?)", [r])


def _hashes(con: duckdb.DuckDBPyConnection, ids: list[str]) -> np.ndarray:
    if not ids:
        return np.empty(0, dtype=np.uint64)
    return np.array([con.execute("SELECT hash(?)", [i]).fetchall()[0][0] for i in ids],
                    dtype=np.uint64)


ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)
# runs never added to the ledger: another alphabet, so they cannot equal an added one
strangers = st.lists(st.text(alphabet="XYZ", min_size=1, max_size=8), max_size=10)
ops = st.lists(st.one_of(
    st.tuples(st.just("pass"), st.lists(ids, max_size=30)),    # a pass adds these runs
    st.tuples(st.just("fail"), st.lists(ids, max_size=10)),    # a pass that rolls back
    st.tuples(st.just("other"), st.lists(ids, max_size=10)),   # another caller's reconcile
), min_size=1, max_size=25)


@settings(max_examples=60)
@given(first=st.lists(ids, max_size=40), steps=ops, never=strangers)
def test_the_set_holds_every_run_of_the_ledger_and_none_it_never_saw(
        first: list[str], steps: list[tuple[str, list[str]]], never: list[str]) -> None:
    ledger = set(first)
    con = _con(ledger, [])
    known = KnownRuns()
    seq = 1
    first_seen: dict[str, int] = {}  # the file after `seen` of the pass that added the run
    for op, runs in steps:
        new = [r for r in dict.fromkeys(runs) if r not in ledger]
        con.execute("DELETE FROM _rc_runs")
        _add(con, "_rc_runs", list(dict.fromkeys(runs)))
        if op == "other":  # the ledger moves on without this caller: its seq is not ours
            _add(con, "ledger", new)
            ledger |= set(new)
            seq += 1
            continue
        got = split(con, known, seq, seq + 1, seq * 10)
        # `split` counts the runs the ledger held before this pass, exactly (no collisions)
        assert got.held == len(set(runs) & ledger)
        held = {r for (r,) in con.execute("SELECT run_id FROM _rc_held").fetchall()} \
            if got.held else set()
        assert held == set(runs) & ledger
        fresh = {r for (r,) in con.execute(f"SELECT run_id FROM {got.fresh()}").fetchall()}
        assert fresh == set(runs) - ledger
        if op == "fail":
            known.drop()
            continue
        _add(con, "ledger", new)
        ledger |= set(new)
        for r in new:
            first_seen[r] = seq * 10 + 1
        seq += 1
        known.commit()
        assert known.current(seq)
        assert known.find(_hashes(con, sorted(ledger)))[0].all()
        assert not known.find(_hashes(con, never))[0].any()
        # a bound no newer than the run's first pass: `seen` + 1 of the pass that added it
        for r in ledger:
            assert known.find(_hashes(con, [r]))[1] <= first_seen.get(r, 0)


def test_a_pass_that_staged_nothing_leaves_the_set_to_be_read_again() -> None:
    """A full rebuild stages nothing: the set is not trusted for the next pass."""
    con = _con({"a", "b"}, ["a", "c"])
    known = KnownRuns()
    assert split(con, known, 7, 8, 0).held == 1
    assert known.reads == 1
    known.commit()
    assert known.current(8) and not known.current(7)
    known.commit()  # the next pass staged nothing
    assert not known.current(8)
    split(con, known, 8, 9, 0)
    assert known.reads == 2


def test_passes_merge_in_tiers_each_less_than_half_the_one_before() -> None:
    """Each pass's runs are a segment, merged while it is at least half the one before: the
    segments stay sorted, each less than half its predecessor (so at most log2(runs) + 1 of
    them), and membership and files are the same as one set's."""
    con = _con({f"r{i}" for i in range(64)}, [])
    known = KnownRuns()
    known.read(con, 0)
    added: list[str] = []
    counts = []
    for k in range(40):
        batch = [f"n{k}-{j}" for j in range(3)]
        known.stage(k + 1, _hashes(con, batch), 100 + k)
        known.commit()
        added += batch
        sizes = [h.size for h, _, _ in known.segments]
        counts.append(len(sizes))
        assert sum(sizes) == 64 + len(added)
        assert all(2 * b < a for a, b in itertools.pairwise(sizes))
        assert len(sizes) <= int(np.log2(sum(sizes))) + 1
        assert all((np.diff(h.astype(np.float64)) >= 0).all() for h, _, _ in known.segments)
    assert max(counts) > 1 and 1 in counts[1:]  # kept apart, and merged whole at times
    everything: list[Any] = [f"r{i}" for i in range(64)] + added
    assert known.find(_hashes(con, everything))[0].all()
    assert not known.find(_hashes(con, ["z1", "z2", "n99-0"]))[0].any()
    # each run keeps the file its pass staged it with, merged or not; read runs have 0
    for k in (0, 17, 39):
        assert known.find(_hashes(con, [f"n{k}-1", f"n{min(k + 1, 39)}-2"]))[1] == 100 + k
    assert known.find(_hashes(con, ["n5-0", "r3"]))[1] == 0
    assert known.find(_hashes(con, ["z1"]))[1] == 0


u64 = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=200)
@given(a=st.lists(st.tuples(u64, st.integers(0, 9), st.integers(-3, 3)), max_size=40),
       b=st.lists(st.tuples(u64, st.integers(0, 9), st.integers(-3, 3)), max_size=40))
def test_a_merge_keeps_every_hash_with_its_file_and_time_in_order(
        a: list[tuple[int, int, int]], b: list[tuple[int, int, int]]) -> None:
    """`_merge` against Python's sort of the triples: the same (hash, file, time) triples,
    hashes in order (duplicates included, across and within the segments)."""
    def seg(rows: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = sorted(rows)
        return (np.array([h for h, _, _ in rows], dtype=np.uint64),
                np.array([f for _, f, _ in rows], dtype=np.int64),
                np.array([t for _, _, t in rows], dtype=np.int64))
    h, f, t = _merge(seg(a), seg(b))
    got = list(zip(h.tolist(), f.tolist(), t.tolist(), strict=True))
    assert [x for x, _, _ in got] == sorted(x for x, _, _ in a + b)
    assert sorted(got) == sorted(a + b)


def test_the_span_covers_every_entry_of_the_held_hashes_and_is_unknown_with_a_row_untimed(
        ) -> None:
    """`span` over hand-made segments: min and max over every entry of each held hash
    (duplicates within and across segments), None when one of them has no time or none is
    held."""
    known = KnownRuns()
    known.segments = [
        (np.array([5, 9, 9, 12], dtype=np.uint64), np.zeros(4, np.int64),
         np.array([50, 90, 30, NO_TS], dtype=np.int64)),
        (np.array([9, 20], dtype=np.uint64), np.ones(2, np.int64),
         np.array([95, 7], dtype=np.int64))]
    assert known.span(np.array([9], dtype=np.uint64)) == (30, 95)
    assert known.span(np.array([5, 20, 3], dtype=np.uint64)) == (7, 50)
    assert known.span(np.array([12, 5], dtype=np.uint64)) is None
    assert known.span(np.array([3, 4], dtype=np.uint64)) is None
