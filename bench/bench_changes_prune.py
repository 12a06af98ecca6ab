"""The CPU of a catch-up's prune of `ledger_changes` (`ledger.changes.prune`), and the table's
size on disk over rounds with and without it (issue #14).

    PYTHONPATH=$WT/src python bench/bench_changes_prune.py [--rounds 200] [--changed 1000]

(a) one prune of a table of 1,000,000 rows (a store whose history was never pruned, at its
first catch-up), five times on fresh copies; (b) `--rounds` rounds of `--changed` changed runs
each, a catch-up (prune) after each, against the same rounds never pruned: rows left, the
file's size (checkpointed every 50 rounds) and the prune's CPU per round. CPU is process
time (every DuckDB thread).
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


def main() -> None:
    from alphatrace.ledger import changes
    from alphatrace.store import Store

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--changed", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
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
