"""The dialect's primitives give the same values in DuckDB and Spark: sums bit for bit
(including -0.0, NaN, NULLs and terms whose order matters), first_by with NULL keys and ties
broken by the last key, sorted distinct text."""

from __future__ import annotations

import math
import struct
from typing import Any

import duckdb
import pytest

from alphatrace.engines.duckdb import DUCKDB
from alphatrace.engines.spark.dialect import SPARK

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

ROWS = [  # g, x, k (an order key, NULL in places), id, s
    ("a", 1e16, 2, "a1", "y"), ("a", 1.0, None, "a2", "x"), ("a", -1e16, 1, "a3", None),
    ("a", 1.0, 1, "a4", "y"), ("b", -0.0, None, "b1", None), ("c", None, None, "c1", "z"),
    ("d", float("nan"), 3, "d1", "q"), ("d", 2.5, 3, "d0", "p"),
    ("e", 0.1, 5, "e1", "b"), ("e", 0.2, 4, "e2", "a"), ("e", 0.3, None, "e3", "a"),
]


def _query(d: Any) -> str:
    return (f"SELECT g, {d.exact_sum('x')} AS s, {d.exact_sum('x', 'k IS NOT NULL')} AS sk, "
            f"{d.first_by('id', 'k NULLS LAST, id')} AS f_last, "
            f"{d.first_by('id', 'k NULLS FIRST, id')} AS f_first, "
            f"{d.sorted_distinct_join('s')} AS j, "
            f"{d.sorted_labels('k', 's', 'k IS NOT NULL AND s IS NOT NULL')} AS lab "
            "FROM t GROUP BY g")


def _bits(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else struct.pack("<d", v)
    return v


def test_primitives_agree(spark: Any) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (g VARCHAR, x DOUBLE, k BIGINT, id VARCHAR, s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [list(r) for r in ROWS])
    cols = ["g", "s", "sk", "f_last", "f_first", "j", "lab"]
    want = {r[0]: [_bits(v) for v in r] for r in con.execute(_query(DUCKDB)).fetchall()}
    spark.createDataFrame(ROWS, "g STRING, x DOUBLE, k BIGINT, id STRING, s STRING"
                          ).createOrReplaceTempView("t")
    got = {r["g"]: [_bits(r[c]) for c in cols] for r in spark.sql(_query(SPARK)).collect()}
    assert got == want
    assert want["a"][1] == struct.pack("<d", 0.0 + -1e16 + 1.0 + 1.0 + 1e16)  # sorted order
    assert want["b"][1] == struct.pack("<d", 0.0) and want["c"][1] is None
    assert want["a"][3:5] == ["a3", "a2"] and want["a"][5] == "x,y" and want["a"][6] == "y,y"
    assert want["b"][6] == ""
