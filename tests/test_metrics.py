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
    # 4 realized runs over 3 days: first to last *realized* run, day 1 .. day 4 (r5, day 5,
    # has no PnL and does not stretch the span)
    assert a["sharpe_annualised"] == pytest.approx(mean / sd * math.sqrt(365 * 4 / 3))
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
    # the newest realized runs: r4 = 40, r3 = -5, r2 = -30 (r5, the newest run, has no pnl)
    assert a["last_2_runs_pnl"] == 35.0 and a["last_3_runs_pnl"] == 5.0
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
    pnl = [r[2] for r in rows if r[2] is not None]
    last3 = math.fsum(pnl[-3:])                 # the newest 3 realized runs
    sd = statistics.stdev(pnl) if len(pnl) > 1 else 0.0  # exact arithmetic on the floats
    sharpe = statistics.fmean(pnl) / sd if sd else None
    hours = [r[0] for r in rows if r[2] is not None]   # ts in hours, realized runs only
    days = max((hours[-1] - hours[0]) / 24, 1.0) if hours else 1.0
    annual = None if sharpe is None else sharpe * math.sqrt(365 * len(pnl) / days)
    return {"max_drawdown_bps": dd_b, "max_drawdown_usd": dd_u, "max_losing_streak": longest,
            "last_3_runs_pnl": last3, "sharpe": sharpe, "sharpe_annualised": annual}


PATH_METRICS = ["max_drawdown_bps", "max_drawdown_usd", "max_losing_streak", "last_3_runs_pnl",
                "sharpe", "sharpe_annualised"]


@pytest.mark.slow
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


def test_annualised_sharpe_spans_the_realized_runs_only() -> None:
    """Runs without PnL (open, unpriced, no signal) carry no return: a stray old one must not
    stretch the days spanned. Realized: +10, -10, +30 at days 10, 11, 12 (2 days); an unpriced
    run 100 days earlier and an open one 50 days later change nothing."""
    con = duckdb.connect()
    con.execute("CREATE TABLE l (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, "
                "realized_pnl_bps DOUBLE, net_usd DOUBLE)")
    con.executemany("INSERT INTO l VALUES ('a', ?, TIMESTAMP '2024-01-01' + INTERVAL (?) DAY, ?, ?)",
                    [["u", -90, None, None], ["r1", 10, 10.0, 1.0], ["r2", 11, -10.0, -1.0],
                     ["r3", 12, 30.0, 3.0], ["o", 62, None, None]])
    mean, sd = 10.0, 20.0             # mean of 10, -10, 30; sample sd √((0 + 400 + 400) / 2)
    want = mean / sd * math.sqrt(365 * 3 / 2)
    (got,) = metrics.compute(con, "SELECT * FROM l", ["agent"], ["sharpe_annualised"]).to_pylist()
    assert got["sharpe_annualised"] == pytest.approx(want, rel=1e-12)
    rows = con.sql("SELECT * FROM l ORDER BY ts, run_id").to_arrow_table()
    assert metrics.compute_one(con, rows, ["sharpe_annualised"])["sharpe_annualised"] == (
        pytest.approx(want, rel=1e-12))


@pytest.mark.slow
@given(st.lists(st.tuples(st.integers(0, 40), st.one_of(st.none(), st.integers(-99, 99))),
                min_size=0, max_size=40),
       st.integers(1, 12))
@settings(max_examples=80)
def test_last_n_sums_the_newest_n_realized_runs(raw: list[tuple[int, int | None]],
                                                n: int) -> None:
    """`last_N_runs_pnl` over random mixes of realized and unrealized runs (ties in time broken
    by run_id) equals a plain loop: the N newest runs that have PnL, however many runs without
    PnL sit between them. SQL (grouped and single-group) and `compute_one` alike."""
    rows = [(d, f"r{k:03d}", None if p is None else float(p)) for k, (d, p) in enumerate(raw)]
    newest_first = sorted(rows, key=lambda r: (r[0], r[1]), reverse=True)
    want = math.fsum([p for _, _, p in newest_first if p is not None][:n])
    c = duckdb.connect()
    c.execute("CREATE TABLE l (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, "
              "realized_pnl_bps DOUBLE, net_usd DOUBLE)")
    c.execute("INSERT INTO l VALUES ('pad', 'p', TIMESTAMP '2030-01-01', 1000.0, 0.0)")
    if rows:
        c.executemany("INSERT INTO l VALUES ('a', ?, TIMESTAMP '2024-01-01' + INTERVAL (?) HOUR, "
                      "?, 0.0)", [[r, d, p] for d, r, p in rows])
    name = f"last_{n}_runs_pnl"
    grouped = {r["agent"]: r[name] for r in metrics.compute(c, "SELECT * FROM l", ["agent"],
                                                            [name]).to_pylist()}
    single = metrics.compute(c, "SELECT * FROM l WHERE agent = 'a'", [], [name]).to_pylist()[0]
    ordered = c.sql("SELECT * FROM l WHERE agent = 'a' ORDER BY ts, run_id").to_arrow_table()
    assert grouped.get("a", 0.0) == want
    assert single[name] == want
    assert metrics.compute_one(c, ordered, [name])[name] == want


def test_net_usd_counts_the_cost_of_every_run() -> None:
    """Inference money is spent whether or not the trade is realized. Realized runs: pnl 10 and
    -4 USD, cost 1 and 0.5; an open run (cost 2) and an unpriced one (cost 4) with no PnL yet
    (net_usd NULL on their ledger rows); a no-signal run (pnl 0, cost 0.25, net -0.25)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE l (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, "
                "realized_pnl_bps DOUBLE, pnl_usd DOUBLE, cost_usd DOUBLE, net_usd DOUBLE)")
    con.executemany("INSERT INTO l VALUES ('a', ?, TIMESTAMP '2024-01-01' + INTERVAL (?) HOUR, "
                    "?, ?, ?, ?)",
                    [["r1", 1, 10.0, 10.0, 1.0, 9.0], ["r2", 2, -4.0, -4.0, 0.5, -4.5],
                     ["open", 3, None, None, 2.0, None], ["unpriced", 4, None, None, 4.0, None],
                     ["nosignal", 5, None, 0.0, 0.25, -0.25]])
    names = ["total_pnl_usd", "total_cost_usd", "unrealized_cost_usd", "net_usd"]
    want = {"total_pnl_usd": 6.0, "total_cost_usd": 7.75, "unrealized_cost_usd": 6.0,
            "net_usd": 6.0 - 7.75}
    (got,) = metrics.compute(con, "SELECT * FROM l", ["agent"], names).to_pylist()
    assert {k: got[k] for k in names} == want
    rows = con.sql("SELECT * FROM l ORDER BY ts, run_id").to_arrow_table()
    assert metrics.compute_one(con, rows, names) == want


def test_compute_one_gives_every_metric_of_compute(con: duckdb.DuckDBPyConnection) -> None:
    names = [*metrics.METRICS, "last_2_runs_pnl"]
    want = next(r for r in metrics.compute(con, "SELECT * FROM l", ["agent"], names).to_pylist()
                if r["agent"] == "a")
    rows = con.sql("SELECT * FROM l WHERE agent = 'a' ORDER BY ts, run_id").to_arrow_table()
    got = metrics.compute_one(con, rows, names)
    assert got["last_2_runs_pnl"] == 35.0 and got["max_losing_streak"] == 2
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


@pytest.mark.slow
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
