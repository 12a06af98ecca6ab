"""Metric registry: each metric checked against a hand computation on a small ledger."""

from __future__ import annotations

import math
import statistics

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace import metrics

ROWS = [  # agent, run_id, ts (day), pnl bps, pnl_usd, cost, latency, errors, net_bps, net_usd
    ("a", "r1", 1, 10.0, 10.0, 0.5, 100.0, 0, 9.5, 9.5),
    ("a", "r2", 2, -30.0, -30.0, 0.5, 200.0, 1, -30.5, -30.5),
    ("a", "r3", 3, -5.0, -5.0, 0.5, 300.0, 0, -5.5, -5.5),
    ("a", "r4", 4, 40.0, 40.0, 0.5, 400.0, 0, 39.5, 39.5),
    ("a", "r5", 5, None, None, 0.5, 900.0, 0, None, -0.5),
    ("b", "q1", 1, None, None, 0.1, 50.0, 0, None, -0.1),
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("""CREATE TABLE l (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, realized_pnl_bps DOUBLE,
                 pnl_usd DOUBLE, cost_usd DOUBLE, latency_ms DOUBLE, errors BIGINT, net_bps DOUBLE,
                 net_usd DOUBLE, tokens_in BIGINT, tokens_out BIGINT)""")
    for a, r, d, p, pu, c_, lat, e, nb, nu in ROWS:
        c.execute("INSERT INTO l VALUES (?, ?, TIMESTAMP '2024-01-01' + INTERVAL (?) DAY, ?, ?, ?, ?, ?, ?, ?, 100, 10)",
                  [a, r, d, p, pu, c_, lat, e, nb, nu])
    return c


def test_metrics_by_hand(con: duckdb.DuckDBPyConnection) -> None:
    rows = metrics.compute(con, "SELECT * FROM l", ["agent"]).to_pylist()
    a = next(r for r in rows if r["agent"] == "a")
    pnl = [10.0, -30.0, -5.0, 40.0]
    assert a["runs"] == 5 and a["realized_runs"] == 4
    assert a["hit_rate"] == 0.5
    assert a["rolling_pnl_bps"] == 15.0
    assert a["mean_pnl_bps"] == 3.75 and a["median_pnl_bps"] == 2.5
    assert a["profit_factor"] == pytest.approx(50 / 35)
    mean = sum(pnl) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in pnl) / 3)
    assert a["sharpe"] == pytest.approx(mean / sd)
    # 4 realized runs over 4 days (first to last ts of the group: day 1 .. day 5)
    assert a["sharpe_annualised"] == pytest.approx(mean / sd * math.sqrt(365 * 4 / 4))
    # cumulative bps: 10, -20, -25, 15, 15 -> peak 10 -> deepest -25: drawdown 35
    assert a["max_drawdown_bps"] == 35.0
    # net usd: 9.5, -21, -26.5, 13, 12.5 -> peak 9.5, trough -26.5: 36
    assert a["max_drawdown_usd"] == pytest.approx(36.0)
    assert a["max_losing_streak"] == 2
    assert a["error_rate"] == pytest.approx(1 / 5)
    assert a["median_latency_ms"] == 300.0
    # sorted 100, 200, 300, 400, 900: position 0.9 * 4 = 3.6 -> 400 + 0.6 * (900 - 400)
    assert a["p90_latency_ms"] == pytest.approx(700.0)
    assert a["cost_per_run"] == 0.5
    assert a["net_usd"] == pytest.approx(9.5 - 30.5 - 5.5 + 39.5 - 0.5)
    assert a["pnl_per_cost"] == pytest.approx(15 / 2.5)
    b = next(r for r in rows if r["agent"] == "b")
    assert b["realized_runs"] == 0 and b["hit_rate"] is None and b["sharpe"] is None
    assert b["max_drawdown_bps"] == 0.0 and b["profit_factor"] is None


def test_last_n_window_metric(con: duckdb.DuckDBPyConnection) -> None:
    (a,) = metrics.compute(con, "SELECT * FROM l WHERE agent = 'a'", ["agent"],
                           ["last_2_runs_pnl", "last_3_runs_pnl"]).to_pylist()
    # newest first: r5 (no pnl), r4 = 40, r3 = -5
    assert a["last_2_runs_pnl"] == 40.0 and a["last_3_runs_pnl"] == 35.0
    assert metrics.is_metric("last_20_runs_pnl") and not metrics.is_metric("last_0_runs_pnl")
    with pytest.raises(KeyError):
        metrics.get("latency")


def _reference_path(rows: list[tuple[int, str, float | None, float]]) -> dict[str, float]:
    """Drawdowns, losing streak and the last-3 sum by a plain loop over (ts, run_id) order."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    cum_b = cum_u = peak_b = peak_u = 0.0
    dd_b = dd_u = 0.0
    streak = longest = 0
    for _, _, pnl, net in rows:
        cum_b += pnl or 0.0
        cum_u += net
        peak_b, peak_u = max(peak_b, cum_b), max(peak_u, cum_u)
        dd_b, dd_u = max(dd_b, peak_b - cum_b), max(dd_u, peak_u - cum_u)
        if pnl is not None:
            streak = streak + 1 if pnl < 0 else 0
            longest = max(longest, streak)
    last3 = sum(r[2] or 0.0 for r in rows[-3:])
    pnl = [r[2] for r in rows if r[2] is not None]
    sd = statistics.stdev(pnl) if len(pnl) > 1 else 0.0  # exact arithmetic on the floats
    sharpe = statistics.fmean(pnl) / sd if sd else None
    return {"max_drawdown_bps": dd_b, "max_drawdown_usd": dd_u, "max_losing_streak": longest,
            "last_3_runs_pnl": last3, "sharpe": sharpe}


PATH_METRICS = ["max_drawdown_bps", "max_drawdown_usd", "max_losing_streak", "last_3_runs_pnl",
                "sharpe"]


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 10**6),
                          st.one_of(st.none(), st.integers(-50, 50).map(float)),
                          st.integers(-50, 50).map(float)),
                min_size=1, max_size=60, unique_by=lambda r: r[1]),
       st.integers(0, 3000))
@settings(max_examples=60)
def test_path_metrics_grouped_and_single_agree_with_a_loop(
        raw: list[tuple[int, int, float | None, float]], pad: int) -> None:
    """The single-group SQL form (one sort, streaming running sums), the partitioned form and
    the numpy form over ordered Arrow rows give the reference loop's path metrics and Sharpe
    (null for a constant series). `pad` rows of another agent, inserted first, make the
    table span several vectors, so order must survive DuckDB's parallel scan."""
    rows = [(d, f"r{k:07d}", p, n) for d, k, p, n in raw]
    c = duckdb.connect()
    c.execute("SET threads = 2")
    c.execute("CREATE TABLE l (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, "
              "realized_pnl_bps DOUBLE, net_usd DOUBLE)")
    c.execute("INSERT INTO l SELECT 'pad', 'p' || i, TIMESTAMP '2024-01-01', -1.0, -1.0 "
              f"FROM range({pad}) t(i)")
    c.executemany("INSERT INTO l VALUES ('a', ?, TIMESTAMP '2024-01-01' + INTERVAL (?) HOUR, ?, ?)",
                  [[r, d, p, n] for d, r, p, n in rows])
    want = _reference_path([(d, r, p, n) for d, r, p, n in rows])
    single = metrics.compute(c, "SELECT * FROM l WHERE agent = ?", [], PATH_METRICS,
                             ["a"]).to_pylist()[0]
    grouped = next(r for r in metrics.compute(c, "SELECT * FROM l", ["agent"],
                                              PATH_METRICS).to_pylist() if r["agent"] == "a")
    ordered = c.sql("SELECT * FROM l WHERE agent = 'a' ORDER BY ts, run_id").to_arrow_table()
    one = metrics.compute_one(c, ordered, PATH_METRICS)
    for got in (single, grouped, one):
        for k, v in want.items():
            if v is None:
                assert got[k] is None, k
            else:
                assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k


def test_compute_one_gives_every_metric_of_compute(con: duckdb.DuckDBPyConnection) -> None:
    names = [*metrics.METRICS, "last_2_runs_pnl"]
    want = next(r for r in metrics.compute(con, "SELECT * FROM l", ["agent"], names).to_pylist()
                if r["agent"] == "a")
    rows = con.sql("SELECT * FROM l WHERE agent = 'a' ORDER BY ts, run_id").to_arrow_table()
    got = metrics.compute_one(con, rows, names)
    assert got["last_2_runs_pnl"] == 40.0 and got["max_losing_streak"] == 2
    for k in names:
        assert got[k] == pytest.approx(want[k], rel=1e-12, nan_ok=True), k


def test_constant_pnl_has_no_sharpe() -> None:
    """A constant series has zero spread, so Sharpe is null, not the ratio to a rounding
    residue (0.1 is not exact in binary: a sum-of-squares formula leaves ~1e-17 there)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE r AS SELECT 'A' AS agent, 'r' || i AS run_id, "
                "TIMESTAMP '2025-01-01' + to_hours(i) AS ts, 0.1 AS realized_pnl_bps, "
                "0.0 AS net_usd "
                "FROM range(7) t(i)")
    (row,) = metrics.compute(con, "SELECT * FROM r", ["agent"], ["sharpe", "mean_pnl_bps"]).to_pylist()
    assert row["sharpe"] is None and row["mean_pnl_bps"] == pytest.approx(0.1)


def test_same_runs_same_numbers_on_many_threads() -> None:
    """1M runs over 200 agents: DuckDB aggregates each agent on several threads (8 here, more
    than the cores, so partial results meet in a different order each time). With plain
    `sum`/`avg`/`stddev_samp` 7 of 8 re-computations differed in the last digits; every
    metric must now come out bit for bit the same each time."""
    con = duckdb.connect()
    con.execute("SET threads = 8")
    con.execute("""CREATE TABLE ledger AS SELECT 'run-' || i AS run_id, 'A' || (i % 200) AS agent,
      TIMESTAMP '2025-01-01' + to_seconds(i) AS ts,
      ((hash(i) % 100000) / 1000.0 - 49.0) * 1.37 AS realized_pnl_bps,
      ((hash(i + 7) % 1000) / 10.0 - 50) * 0.013 AS net_usd,
      ((hash(i + 7) % 1000) / 10.0 - 50) * 0.017 AS pnl_usd,
      (hash(i + 9) % 1000) / 7.0 AS latency_ms, (hash(i + 3) % 100) / 9973.0 AS cost_usd,
      100::BIGINT AS tokens_in, 10::BIGINT AS tokens_out, 0 AS errors,
      (hash(i + 5) % 1000) / 77.0 AS net_bps
      FROM range(1000000) t(i)""")
    first = metrics.compute(con, "SELECT * FROM ledger", ["agent"])
    for _ in range(3):
        assert metrics.compute(con, "SELECT * FROM ledger", ["agent"]).equals(first)
