"""What keeping each subject's records in as_of order (`journal.out_of_order`) costs an
evaluation on a store with a long decision log: the catch-up of a live pass with nothing new
(it reads each subject's newest record to resume it, `api.resume_marks`) and a `--once` at the
newest knowledge time with and without news (the news are checked before they are appended).
Run it under PYTHONPATH=<checkout>/src for the old and the new code in the same minutes.

    .venv/bin/python bench/bench_log_order.py [--runs 200000] [--agents 2000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import alphatrace as at
from alphatrace.policy import DEFAULT_POLICY, shipped_policy
from bench_governance import build


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200_000)
    ap.add_argument("--agents", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    policy = shipped_policy(DEFAULT_POLICY)
    db = at.connect(":memory:")
    build(db, args.runs, args.agents, 20, zipf=1.1)
    t0 = time.perf_counter()
    db.gates.evaluate(policy)  # the first catch-up: the long log
    first = time.perf_counter() - t0
    n = db.con.execute("SELECT count(*) FROM decisions").fetchall()[0][0]
    idle, once = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        db.gates.evaluate(policy)
        idle.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        db.gates.evaluate(policy, once=True)
        once.append(time.perf_counter() - t0)
    print(f"records {n:,}; first catch-up {first:.2f} s; idle catch-up median "
          f"{statistics.median(idle) * 1e3:.1f} ms; once (no news) median "
          f"{statistics.median(once) * 1e3:.1f} ms")
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
