"""Statements parsed once per process: a collector round plans its SQL without parsing it."""

from __future__ import annotations

import warnings

import duckdb
import pytest

from alphatrace.store import Store, statements
from alphatrace.store.ingest import ingest_events


def _batch(n: int, first: int) -> list[dict[str, object]]:
    return [{"type": "pnl", "run_id": f"r{first + i}", "agent": "A", "ts": 1_740_000_000 + i,
             "symbol": "BTC", "realized_pnl_bps": 1.5} for i in range(n)]


def test_a_text_is_parsed_once_and_runs_on_any_connection() -> None:
    a, b = duckdb.connect(), duckdb.connect()
    sql = "SELECT 40 + ? AS x -- test_statements"
    st = statements.parsed(a, sql)
    assert statements.parsed(b, sql) is st
    assert a.execute(st, [2]).fetchall() == [(42,)]
    assert b.execute(st, [1]).fetchall() == [(41,)]


def test_a_text_with_two_statements_is_refused() -> None:
    with pytest.raises(ValueError, match="one SQL statement, got 2"):
        statements.parsed(duckdb.connect(), "SELECT 1; SELECT 2")


def test_a_second_round_of_the_same_shape_parses_nothing(store: Store) -> None:
    ingest_events(store, _batch(5, 0))
    before = dict(statements._PARSED)
    report, _ = ingest_events(store, _batch(7, 100))
    assert report.accepted == 7
    assert statements._PARSED.keys() == before.keys()
    assert all(statements._PARSED[k] is v for k, v in before.items())


def test_a_round_gives_no_warning(store: Store) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report, _ = ingest_events(store, [*_batch(3, 0), {"type": "pnl", "run_id": "x"}])
    assert (report.accepted, report.quarantined) == (3, 1)
