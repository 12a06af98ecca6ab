"""`metrics.compute` (SQL over a query) and `metrics.compute_one` (ordered Arrow rows) give the
same bits: the path columns have one sequential definition (`metrics.path_columns`), and the
sums one deterministic form (`engines` `exact_sum`), whichever way the rows arrive."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace import metrics, scan


def _ledger(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, int, float | None, float]]
            ) -> None:
    con.execute("CREATE OR REPLACE TABLE l (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, "
                "realized_pnl_bps DOUBLE, pnl_usd DOUBLE, net_usd DOUBLE, net_bps DOUBLE, "
                "cost_usd DOUBLE, latency_ms DOUBLE, errors BIGINT, tokens_in BIGINT, "
                "tokens_out BIGINT)")
    con.executemany(
        "INSERT INTO l VALUES (?, 'r' || lpad(?::VARCHAR, 6, '0'), "
        "TIMESTAMP '2025-01-01' + to_seconds(?), ?, ?, ?, ?, 0.01, 5.0, 0, 10, 1)",
        [[a, k, k // 2, p, None if p is None else p * 0.1, n, p, ] for a, k, p, n in rows])


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


def _check(con: duckdb.DuckDBPyConnection) -> None:
    names = [*metrics.METRICS, "last_3_runs_pnl"]
    grouped = metrics.compute(con, "SELECT * FROM l", ["agent"], names).to_pylist()
    plain = [n for n in names if not metrics.reads_path(metrics.get(n))]
    assert 0 < len(plain) < len(names)
    no_path = metrics.compute(con, "SELECT * FROM l", ["agent"], plain).to_pylist()
    for row, other in zip(grouped, no_path, strict=True):
        assert all(_same(row[k], other[k]) for k in plain)
    for row in grouped:
        rows = con.sql("SELECT * FROM l WHERE agent = ? ORDER BY ts, run_id",
                       params=[row["agent"]]).to_arrow_table()
        one = metrics.compute_one(con, rows, names)
        single = metrics.compute(con, "SELECT * FROM l WHERE agent = ?", [], names,
                                 [row["agent"]]).to_pylist()[0]
        for k in names:
            assert _same(row[k], one[k]), (row["agent"], k, row[k], one[k])
            assert _same(single[k], one[k]), (row["agent"], k, single[k], one[k])


def test_drawdowns_of_many_runs_are_bit_identical() -> None:
    """300 runs per agent with PnL of mixed magnitudes: DuckDB's partitioned running sum
    (a segment tree) differed from numpy's sequential `cumsum` here."""
    rng = np.random.default_rng(7)
    rows = []
    for a in range(4):
        for k in range(300):
            p = float(rng.normal(0, 30) * 10.0 ** rng.integers(-3, 4))
            rows.append((f"A{a}", a * 1000 + k, None if k % 17 == 0 else p,
                         float(rng.normal(0, 3) * 10.0 ** rng.integers(-3, 3))))
    con = duckdb.connect()
    con.execute("SET threads = 2")
    _ledger(con, rows)
    _check(con)


@pytest.mark.slow
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                          st.one_of(st.none(), st.floats(-1e6, 1e6)),
                          st.floats(-1e4, 1e4)), min_size=1, max_size=400))
@settings(max_examples=25)
def test_compute_and_compute_one_are_bit_identical(
        raw: list[tuple[str, float | None, float]]) -> None:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    _ledger(con, [(a, k, p, n) for k, (a, p, n) in enumerate(raw)])
    _check(con)


@given(st.lists(st.lists(st.floats(-1e12, 1e12), min_size=1, max_size=90), max_size=12))
def test_segmented_scans_equal_one_scan_per_segment(groups: list[list[float]]) -> None:
    """Short and long segments alike: the bits of `accumulate` on each segment alone."""
    x = np.array([v for g in groups for v in g], dtype=np.float64)
    starts = np.cumsum([0, *[len(g) for g in groups[:-1]]]).astype(np.int64)[: len(groups)]
    for op in (np.add, np.maximum):
        want = (np.concatenate([op.accumulate(np.array(g)) for g in groups]) if groups
                else np.zeros(0))
        assert scan.segmented_accumulate(op, x, starts).tobytes() == want.tobytes()


@given(st.lists(st.one_of(st.none(), st.floats(-1e15, 1e15)), max_size=50))
def test_exact_sum_adds_the_sorted_terms_in_order(xs: list[float | None]) -> None:
    """DuckDB's `exact_sum` is the left-to-right sum, from +0.0, of the non-NULL terms sorted
    by value (computed here in Python, one addition at a time)."""
    from alphatrace.engines.duckdb import DUCKDB

    con = duckdb.connect()
    con.execute("CREATE TABLE t (x DOUBLE)")
    if xs:
        con.executemany("INSERT INTO t VALUES (?)", [[x] for x in xs])
    (got,) = con.execute(f"SELECT {DUCKDB.exact_sum('x')} FROM t").fetchone() or (None,)
    terms = sorted(x for x in xs if x is not None)
    want: float | None = None
    for t in terms:  # from +0.0, as DuckDB's list_sum: a sum of -0.0 alone is +0.0
        want = (0.0 if want is None else want) + t
    assert (got is None and want is None) or (got is not None and want is not None
                                              and np.float64(got).tobytes() == np.float64(want).tobytes())
