"""A pass whose changed runs have one row at most in a source builds their ledger rows with a
statement that leaves out the aggregation over several rows (`build.single_sources`,
`ledger_sql(single=...)`): the rows must be those the whole statement builds."""

from __future__ import annotations

from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger.build import SOURCES, runs_rows_sql, single_sources
from alphatrace.store import Store
from alphatrace.store.connection import one
from tests.ledger.helpers import add_bars, run_reconcile
from tests.ledger.test_incremental_ledger import alpha, ingest, pnl, snapshot, telemetry

RUNS = [f"r{i}" for i in range(5)]


@settings(max_examples=40)
@given(counts=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
                       min_size=5, max_size=5),
       changed=st.sets(st.sampled_from(RUNS)))
def test_single_sources_names_the_tables_where_no_changed_run_has_several_rows(
        counts: list[tuple[int, int, int]], changed: set[str]) -> None:
    con = duckdb.connect()  # the three tables, run ids only: all the query reads
    for table, k in (("legs", 0), ("telemetry", 1), ("pnl", 2)):
        con.execute(f"CREATE TABLE {table} (run_id VARCHAR)")
        for run, n in zip(RUNS, counts, strict=True):
            for _ in range(n[k]):
                con.execute(f"INSERT INTO {table} VALUES (?)", [run])
    con.execute("CREATE TABLE runs (run_id VARCHAR)")
    for r in sorted(changed):
        con.execute("INSERT INTO runs VALUES (?)", [r])
    rows = {}
    for name, table in SOURCES.items():
        con.execute(f"CREATE VIEW {name}_rows AS {runs_rows_sql(table, 'runs')}")
        rows[name] = f"{name}_rows"
    found = dict(zip(SOURCES, one(con, single_sources(rows)), strict=True))
    by_run = dict(zip(RUNS, counts, strict=True))
    assert found == {name: all(by_run[r][k] <= 1 for r in changed)
                     for k, name in enumerate(SOURCES)}


def _events(run: str, n: int, kinds: tuple[int, int, int]) -> list[dict[str, Any]]:
    n_alpha, n_tel, n_pnl = kinds
    out: list[dict[str, Any]] = []
    for i, symbol in enumerate(["BTC", "ETH", "BTC"][:n_alpha]):
        out.append(alpha(f"{run}-a{n}-{i}", run, 30 + i * 7, symbol=symbol,
                         direction="SHORT" if i % 2 else "LONG"))
    out += [telemetry(f"{run}-t{n}-{i}", run, 100.0 + 10 * i) for i in range(n_tel)]
    out += [pnl(f"{run}-p{n}-{i}", run, 5.0 - 3 * i, symbol=[None, "BTC", "ETH"][i])
            for i in range(n_pnl)]
    return out


kinds = st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2))


@settings(max_examples=30)
@given(before=st.lists(kinds, min_size=4, max_size=4),
       after=st.lists(st.tuples(st.integers(0, 5), st.tuples(st.integers(0, 1),
                                                             st.integers(0, 1),
                                                             st.integers(0, 1))),
                      min_size=1, max_size=4))
def test_a_pass_over_runs_with_single_rows_builds_what_a_full_rebuild_builds(
        before: list[tuple[int, int, int]], after: list[tuple[int, tuple[int, int, int]]]
) -> None:
    """Runs r0..r3 with up to two rows of each kind, reconciled; then events for runs r0..r5,
    one of each kind at most, and a reconcile of the runs they change (single rows in some or
    all sources, several in others when an old run gets a second row) against a full rebuild
    of the same data."""
    with Store(":memory:") as inc, Store(":memory:") as full:
        for s in (inc, full):
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(24)])
            add_bars(s, "ETHUSDT", [50.0 + i / 4 for i in range(24)])
            ingest(s, [e for i, k in enumerate(before) for e in _events(f"r{i}", 0, k)])
            run_reconcile(s)
        batch = [e for n, (i, k) in enumerate(after) for e in _events(f"r{i}", n + 1, k)]
        if batch:
            for s in (inc, full):
                ingest(s, batch)
        run_reconcile(inc)
        run_reconcile(full, full=True)
        assert snapshot(inc) == snapshot(full)
