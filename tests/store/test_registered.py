"""Arrow data lent to SQL for a block (`store.connection.registered`): a small table through a
view kept on the connection, a large one registered as DuckDB takes it; either way SQL sees
exactly the block's data, a nested block of the same name gets the outer data back, and a
rolled-back transaction that created a kept view does not leave a name that no longer
exists."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.store import Store
from alphatrace.store.connection import FED_ROWS, registered


def _views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(r[0]) for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal ORDER BY 1").fetchall()]


def _sum(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, int]:
    n, s = con.execute(f"SELECT count(*), coalesce(sum(v), 0) FROM {name}").fetchall()[0]
    return int(n), int(s)


@settings(deadline=None, max_examples=40)
@given(st.lists(st.lists(st.integers(-1000, 1000), max_size=30), min_size=1, max_size=6))
def test_each_block_sees_its_own_rows(batches: list[list[int]]) -> None:
    con = duckdb.connect()
    for values in batches:
        with registered(con, "t", pa.table({"v": pa.array(values, pa.int64())})) as name:
            assert _sum(con, name) == (len(values), sum(values))
    # one view kept for the name, whatever the number of blocks
    assert _views(con) == ["t"]


def test_a_nested_block_of_the_same_name_gives_the_outer_rows_back() -> None:
    con = duckdb.connect()
    outer = pa.table({"v": [1, 2, 3]})
    with registered(con, "t", outer):
        with registered(con, "t", pa.table({"v": [100]})):
            assert _sum(con, "t") == (1, 100)
        assert _sum(con, "t") == (3, 6)
    with pytest.raises(duckdb.Error, match="outside its `registered` block"):
        con.execute("SELECT * FROM t").fetchall()


def test_a_later_block_may_bring_other_columns_and_types() -> None:
    con = duckdb.connect()
    with registered(con, "t", pa.table({"v": [1, 2]})):
        assert con.execute("SELECT v FROM t ORDER BY v").fetchall() == [(1,), (2,)]
    with registered(con, "t", pa.table({"w": ["a"], "x": [1.5]})):
        assert con.execute("SELECT w, x FROM t").fetchall() == [("a", 1.5)]


def test_a_large_table_is_registered_whole_and_dropped_after() -> None:
    con = duckdb.connect()
    with registered(con, "t", pa.table({"v": [7]})):
        pass
    big = pa.table({"v": pa.array(range(FED_ROWS + 1), pa.int64())})
    with registered(con, "t", big):
        assert _sum(con, "t") == (FED_ROWS + 1, FED_ROWS * (FED_ROWS + 1) // 2)
        # planned with its row count (a kept view is a stream DuckDB plans as one row)
        plan = con.execute("EXPLAIN SELECT * FROM t").fetchall()[0][1]
        assert f"~{FED_ROWS + 1:,} row" in plan
    assert _views(con) == []
    with registered(con, "t", pa.table({"v": [5, 6]})):  # small again: kept anew
        assert _sum(con, "t") == (2, 11)
    assert _views(con) == ["t"]


def test_data_other_than_arrow_is_registered_as_duckdb_takes_it() -> None:
    import numpy as np

    con = duckdb.connect()
    with registered(con, "t", {"v": np.array([4, 5, 6])}):
        assert _sum(con, "t") == (3, 15)
    assert _views(con) == []


def test_a_rolled_back_transaction_does_not_leave_a_kept_name_behind(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        with pytest.raises(RuntimeError), store.transaction() as con:
            with registered(con, "t", pa.table({"v": [1]})):
                assert _sum(con, "t") == (1, 1)
            raise RuntimeError("abort")
        assert "t" not in _views(store.con)  # DuckDB dropped the view with the transaction
        with registered(store.con, "t", pa.table({"v": [2, 3]})):
            assert _sum(store.con, "t") == (2, 5)
