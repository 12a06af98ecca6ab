"""A catch-up's read of what changed and of the runs it needs (`replay.changes` +
`replay.window_runs`) on a large ledger: the CPU of one live round's read (issue #14).

The store: `--runs` ledger rows written straight into `ledger` (12 agents, 3 strategy classes,
a year of knowledge times, in knowledge-time order as reconciles append them), every subject
marked at the newest knowledge time less one hour, the reconcile bookkeeping a pass reads
(`reconcile_log`, `ledger_subjects`), and one reconcile's changes after the last catch-up:
`--changed` runs, of which `--late` are known before the marks (the rest after them, as a
round's new runs are). It is built once (bench/out/bench_late_runs_N.duckdb) by this
checkout's code and then only read, so the same file serves a checkout of another commit
(PYTHONPATH=<checkout>/src): run both alternately in the same minutes.

    PYTHONPATH=$WT/src python bench/bench_late_runs.py [--runs 1000000] [--changed 1000]
                                                       [--late 10] [--repeat 9]

Prints the median and range of the CPU time (every DuckDB thread) per call of each part (the
read of the changes, `window_runs`) and of both.

`--record` times instead what a full rebuild adds to record its changes
(`ledger.changes.record`: the rebuilt ledger against the old one, whole rows) on a copy of
the same ledger in memory with 0.1% of its rows changed and 0.001% removed, against 5a7224c's
form (a set difference of whole rows, run ids only) in the same process, alternated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import statistics
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
START = dt.datetime(2024, 1, 1)
SPAN_S = 365 * 86400


def build(db: Path, runs: int, changed: int, late: int) -> None:
    from alphatrace.store import Store

    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    with Store(db) as store:
        con = store.con
        con.execute("SELECT setseed(0.29)")
        # runs 0..runs-1 spread over a year by knowledge time; known 0-8 h after their signal
        con.execute(f"""
INSERT INTO ledger (run_id, agent, strategy, ts, known_ts, realized_pnl_bps, size_usd, pnl_usd,
                    net_usd, net_bps, cost_usd, errors, latency_ms, status, policy_hash)
SELECT 'r' || lpad(i::VARCHAR, 8, '0'), 'Agent' || (i % 12), 'S' || (i % 3),
       k - to_seconds(CAST(random() * 28800 AS BIGINT)), k, p, 10000, p, p - 0.002, p - 2,
       0.002, 0, 100 + random() * 400, 'realized', 'h'
FROM (SELECT i, TIMESTAMP '{START}' + to_microseconds(CAST(i / {runs} * {SPAN_S}e6 AS BIGINT))
             AS k, round(random() * 60 - 30, 2) AS p FROM range({runs}) r(i))
ORDER BY k, i""")
        newest = con.execute("SELECT max(known_ts) FROM ledger").fetchall()[0][0]
        mark = newest - dt.timedelta(hours=1)
        # the round's changes: `late` runs known in the day before the marks, the rest after
        con.execute(f"""
INSERT INTO ledger_changes (seq, run_id, old_agent, old_strategy, old_known_ts, new_agent,
                            new_strategy, new_known_ts)
SELECT 2, run_id, NULL, NULL, NULL, agent, strategy, known_ts FROM (
  (SELECT * FROM ledger WHERE known_ts > ? ORDER BY known_ts LIMIT {changed - late})
  UNION ALL
  (SELECT * FROM ledger WHERE known_ts <= ? AND known_ts > ? - INTERVAL 1 DAY
   ORDER BY hash(run_id) LIMIT {late}))
ORDER BY run_id""", [mark, mark, mark])
        con.execute("INSERT INTO gate_seen VALUES (1)")
        con.execute("""
INSERT INTO gate_progress SELECT DISTINCT 'agent', agent, ? FROM ledger
UNION ALL SELECT DISTINCT 'strategy', strategy, ? FROM ledger""", [mark, mark])
        con.execute("""
INSERT INTO ledger_subjects SELECT DISTINCT 'agent', agent FROM ledger
UNION ALL SELECT DISTINCT 'strategy', strategy FROM ledger""")
        con.execute("""
INSERT INTO reconcile_log (seq, policy_hash, legs, priced, realized, open, unpriced, runs,
                           max_file_id, reconciled_at, n_telemetry, n_pnl)
SELECT 2, 'h', 0, 0, count(*), 0, 0, count(*), 0, current_timestamp::TIMESTAMP, 0, 0
FROM ledger""")
        con.execute("CHECKPOINT")


def measure(db: Path, repeat: int) -> list[tuple[float, float]]:
    from alphatrace.governance import replay
    from alphatrace.governance.policy import load_governance
    from alphatrace.governance.runs import data_as_of, ledger_sql, needed_columns

    con = duckdb.connect(str(db), read_only=True)
    gp = load_governance(None)
    cols = needed_columns(con, gp.gate_metrics())
    marks = replay.progress(con)
    target = data_as_of(con)
    assert target is not None
    sided = "ledger" in inspect.signature(replay.changes).parameters

    def read(q: str) -> object:
        return con.sql(q).to_arrow_table()

    out: list[tuple[float, float]] = []
    for _ in range(repeat + 1):  # the first warms the caches, not counted
        cpu = time.process_time()
        extra = [lambda: ledger_sql(con)] if sided else []
        changed, _ = replay.changes(read, "ledger_changes", replay.seen(con), True, *extra)
        mid = time.process_time()
        runs = replay.window_runs(con, gp, cols, marks, target, changed=changed)
        out.append(((mid - cpu) * 1000.0, (time.process_time() - mid) * 1000.0))
    print(f"runs read: {runs.num_rows:,}; late subjects: "
          f"{sum(1 for x in runs.column('_late').to_pylist() if x)} rows flagged",
          file=sys.stderr)
    return out[1:]


def record_cost(db: Path, rounds: int = 3) -> None:
    from alphatrace.ledger import changes

    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{db}' AS s (READ_ONLY)")
    for t in ("ledger", "ledger_changes", "reconcile_log"):
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM s.{t}{' LIMIT 0' if t != 'ledger' else ''}")
    con.execute("CREATE TABLE built AS SELECT * REPLACE (CASE WHEN hash(run_id) % 1000 = 0 "
                "THEN realized_pnl_bps + 1 ELSE realized_pnl_bps END AS realized_pnl_bps) "
                "FROM ledger WHERE hash(run_id) % 100000 <> 7")
    old = "(SELECT * FROM ledger)"

    def before() -> None:  # 5a7224c's reconcile._record_changes
        con.execute("INSERT INTO ledger_changes (seq, run_id) SELECT 1, run_id FROM "
                    f"(SELECT * FROM built EXCEPT SELECT * FROM {old}) ORDER BY run_id")

    for _ in range(rounds):
        for name, f in (("old", before), ("new", lambda: changes.record(con, 1, "built", old))):
            ms = []
            for _ in range(3):
                con.execute("DELETE FROM ledger_changes")
                cpu = time.process_time()
                f()
                ms.append((time.process_time() - cpu) * 1000.0)
            n = con.execute("SELECT count(*) FROM ledger_changes").fetchall()[0][0]
            print(f"{name}: full-rebuild record CPU ms median {statistics.median(ms):.0f} "
                  f"({n} rows recorded)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--changed", type=int, default=1_000)
    ap.add_argument("--late", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    db = OUT / f"bench_late_runs_{args.runs}_{args.changed}_{args.late}.duckdb"
    if not db.exists():
        t = time.perf_counter()
        build(db, args.runs, args.changed, args.late)
        print(f"store built in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    if args.record:
        record_cost(db)
        return
    got = measure(db, args.repeat)
    for name, ms in (("changes", [a for a, _ in got]), ("window_runs", [b for _, b in got]),
                     ("both", [a + b for a, b in got])):
        print(f"{name} CPU ms: median {statistics.median(ms):.1f}, min {min(ms):.1f}, "
              f"max {max(ms):.1f} ({len(ms)} calls)")


if __name__ == "__main__":
    main()
