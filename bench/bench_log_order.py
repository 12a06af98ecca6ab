"""What keeping each subject's records in as_of order (`journal.out_of_order`) costs an
evaluation on a store with a long decision log: the catch-up of a live pass with nothing new
(it reads each subject's newest record to resume it, `api.resume_marks`) and a `--once` at the
newest knowledge time with and without news (the news are checked before they are appended).
Run it under PYTHONPATH=<checkout>/src for the old and the new code in the same minutes.

    .venv/bin/python bench/bench_log_order.py [--runs 200000] [--agents 2000] [--repeat 7]

`--log N`: instead, the reads of each subject's newest record alone, on a synthetic log of N
records over `--subjects` subjects (written by SQL, `decision_newest` filled as migration 0027
does when the store has it): `journal.newest_times` over every subject (a catch-up's
`resume_marks`) and over 100 of them (`held_back`, `write`), and `journal.newest_revives`.

    .venv/bin/python bench/bench_log_order.py --log 1000000 [--subjects 10000] [--repeat 7]
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
    ap.add_argument("--log", type=int, default=0)
    ap.add_argument("--subjects", type=int, default=10_000)
    args = ap.parse_args()
    if args.log:
        return newest_reads(args.log, args.subjects, args.repeat)
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


def newest_reads(records: int, subjects: int, repeat: int) -> int:
    from alphatrace.governance import journal
    from alphatrace.store.connection import has_table

    db = at.connect(":memory:")
    con = db.con
    con.execute(f"""
INSERT INTO decisions (seq, eval_id, subject, scope, action, fired, blocked, state, metrics,
                       run_ids, prev_hash, hash, as_of, hash_version)
SELECT i + 1, i // 50 + 1, 'S' || (hash(i) % {subjects}), CASE WHEN i % 7 = 0 THEN 'strategy'
       ELSE 'agent' END, ['hold', 'promote', 'kill', 'revive'][1 + i % 4], '[]', false,
       'candidate', '{{}}', '[]', '', '', TIMESTAMP '2024-01-01' + to_seconds(i), 2
FROM range({records}) r(i)""")
    if has_table(con, "decision_newest"):
        con.execute("INSERT INTO decision_newest SELECT scope, subject, seq, action, as_of "
                    "FROM decisions WHERE seq IN (SELECT max(seq) FROM decisions "
                    "GROUP BY scope, subject)")
    keys = list(journal.newest_times(con))[:100]
    reads = {"newest_times (all)": lambda: journal.newest_times(con),
             "newest_times (100 keys)": lambda: journal.newest_times(con, keys),
             "newest_revives": lambda: journal.newest_revives(con)}
    print(f"records {records:,}; subjects {len(journal.newest_times(con)):,}; "
          f"decision_newest: {has_table(con, 'decision_newest')}")
    for name, fn in reads.items():
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(f"  {name}: median {statistics.median(ts) * 1e3:.1f} ms "
              f"(min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f})")
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
