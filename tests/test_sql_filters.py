"""`alphatrace.sql.filters`: the one builder of optional query filters (ledger, decision log,
forensics, notification log)."""

from __future__ import annotations

import duckdb

from alphatrace.sql import filters


def test_only_none_leaves_a_filter_out_and_parameters_keep_their_order() -> None:
    conds, params = filters(("a = ?", "x"), ("b = ?", None), ("c >= ?", 0), ("d = ?", ""))
    assert conds == ["a = ?", "c >= ?", "d = ?"] and params == ["x", 0, ""]
    assert filters(("a = ?", None)) == ([], [])


def test_the_conditions_filter_as_written() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('A', 1), ('A', 5), ('B', 5)) v(k, n)")
    conds, params = filters(("k = ?", "A"), ("n >= ?", 2), ("k <> ?", None))
    rows = con.execute(f"SELECT k, n FROM t WHERE {' AND '.join(conds)}", params).fetchall()
    assert rows == [("A", 5)]
