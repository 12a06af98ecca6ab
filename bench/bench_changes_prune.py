"""The CPU of a catch-up's prune of `ledger_changes` (`ledger.changes.prune`), and the table's
size on disk over rounds with and without it (issue #14).

    PYTHONPATH=$WT/src python bench/bench_changes_prune.py [--rounds 200] [--changed 1000]

(a) one prune of a table of 1,000,000 rows (a store whose history was never pruned, at its
first catch-up), five times on fresh copies; (b) `--rounds` rounds of `--changed` changed runs
each, a catch-up (prune) after each, against the same rounds never pruned: rows left, the
file's size (checkpointed every 50 rounds) and the prune's CPU per round. CPU is process
time (every DuckDB thread).

`--key`: instead, the server's sizing key over the ledger side (`live_state.version`) with
`ledger_changes` max(seq) (server/live_state.py `_LEDGER`) against 016aabb's
`run_exclusions` count(*), alternated in one process, on a store of 1,000,000 ledger rows
and 1,000,000 changes (never pruned: the worst case) and 1,000 exclusions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb


def fill(con: duckdb.DuckDBPyConnection, seq: int, n: int, start: int) -> None:
    con.execute(f"""
INSERT INTO ledger_changes SELECT {seq}, 'r' || lpad((i + {start})::VARCHAR, 8, '0'), NULL, NULL,
       NULL, 'Agent' || (i % 12), 'S' || (i % 3), TIMESTAMP '2024-01-01' + to_seconds(i + {start})
FROM range({n}) r(i)""")


def key(tmp: Path) -> None:
    from alphatrace.server.live_state import _LEDGER, version
    from alphatrace.store import Store

    db = Path(tmp) / "key.duckdb"
    with Store(db) as s:
        s.con.execute("""
INSERT INTO ledger (run_id, agent, strategy, ts, known_ts, realized_pnl_bps, status, policy_hash)
SELECT 'r' || lpad(i::VARCHAR, 8, '0'), 'Agent' || (i % 12), 'S' || (i % 3),
       TIMESTAMP '2024-01-01' + to_seconds(i * 30), TIMESTAMP '2024-01-01' + to_seconds(i * 30 + 60),
       1.0, 'realized', 'h' FROM range(1000000) r(i)""")
        s.con.execute("INSERT INTO ledger_changes SELECT 1, run_id, NULL, NULL, NULL, agent, "
                      "strategy, known_ts FROM ledger ORDER BY run_id")
        s.con.execute("INSERT INTO run_exclusions (run_id, rule, reason, policy_hash) "
                      "SELECT run_id, 'x', 'y', 'h' FROM ledger WHERE hash(run_id) % 1000 = 0")
        s.con.execute("CHECKPOINT")
    con = duckdb.connect(str(db), read_only=True)
    old = (*_LEDGER[:2], ("run_exclusions", "count(*)"))
    got: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(41):
        for name, parts in (("old", old), ("new", _LEDGER))[:: 1 if i % 2 else -1]:
            t = time.process_time()
            for _ in range(10):
                version(con, parts)
            got[name].append((time.process_time() - t) * 100)
    for name, v in got.items():
        print(f"{name} key: {statistics.median(v[1:]):.2f} ms CPU (median of 40 x 10; "
              f"range {min(v[1:]):.2f}-{max(v[1:]):.2f})")


def main() -> None:
    from alphatrace.ledger import changes
    from alphatrace.store import Store

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--changed", type=int, default=1000)
    ap.add_argument("--key", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.key:
            key(Path(tmp))
            return
        base = Path(tmp) / "base.duckdb"
        with Store(base) as s:
            s.con.execute("CHECKPOINT")
        first = []
        for r in range(5):
            db = Path(tmp) / f"first{r}.duckdb"
            db.write_bytes(base.read_bytes())
            with Store(db) as s:
                fill(s.con, 1, 1_000_000, 0)
                s.con.execute("CHECKPOINT")
                t = time.process_time()
                changes.prune(s.con, 1)
                first.append((time.process_time() - t) * 1000)
            db.unlink()
        print(f"first prune of 1,000,000 rows: {statistics.median(first):.1f} ms CPU "
              f"(range {min(first):.1f}-{max(first):.1f})")
        for mode in ("kept", "pruned"):
            db = Path(tmp) / f"{mode}.duckdb"
            db.write_bytes(base.read_bytes())
            cpu = []
            with Store(db) as s:
                for k in range(1, args.rounds + 1):
                    fill(s.con, k, args.changed, k * args.changed)
                    if mode == "pruned":
                        t = time.process_time()
                        changes.prune(s.con, k)
                        cpu.append((time.process_time() - t) * 1000)
                    if k % 50 == 0:
                        s.con.execute("CHECKPOINT")
                rows = s.con.execute("SELECT count(*) FROM ledger_changes").fetchall()[0][0]
            grown = (db.stat().st_size - base.stat().st_size) / 1e6
            extra = (f"; prune {statistics.median(cpu):.2f} ms CPU per round (median, "
                     f"p90 {sorted(cpu)[int(len(cpu) * 0.9)]:.2f})" if cpu else "")
            print(f"{mode}: after {args.rounds} rounds of {args.changed}: {rows:,} rows, "
                  f"file +{grown:.1f} MB{extra}")


if __name__ == "__main__":
    main()
