"""A long-running live pipeline's set of the ledger's runs (ledger/known_runs.py).

A server's pipeline keeps `KnownRuns` for as long as it runs, and every pass looks its
changed runs up in it and adds the new ones. `bench_pipeline.py round` starts a fresh
pipeline and runs a dozen passes, so it never sees the set after hundreds of passes. This
replays that in memory: a set read from a ledger of `--runs` runs, then `--passes` passes of
`--per-pass` changed runs each, half of them new (random 64-bit hashes, as DuckDB's `hash`)
and half added by the pass before (an open leg priced by the next bar).

Printed per pass: the lookup (`KnownRuns.find`) and the commit that adds the new runs, with
their median, p99 and max; beside them, in the same run, the lookup in one sorted array of
every hash the set holds (what a set merged at every pass would cost to search, without the
merge).

    python bench/bench_known_runs.py --runs 1000000 --passes 1000 --per-pass 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from alphatrace.ledger.known_runs import KnownRuns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--passes", type=int, default=1000)
    ap.add_argument("--per-pass", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    base = rng.integers(0, 2**63, a.runs, dtype=np.uint64)
    known = KnownRuns(seq=0, segments=[(np.sort(base), np.zeros(base.size, np.int64),
                                        np.zeros(base.size, np.int64))])
    every = np.sort(base)
    half = a.per_pass // 2
    last = base[:half]
    look, commit, flat, segments = [], [], [], []
    for p in range(a.passes):
        fresh = rng.integers(0, 2**63, a.per_pass - half, dtype=np.uint64)
        h = np.concatenate([fresh, last[:half]])
        rng.shuffle(h)
        t0 = time.perf_counter()
        held, _ = known.find(h)
        t1 = time.perf_counter()
        known.stage(p + 1, h[~held], p)
        known.commit()
        t2 = time.perf_counter()
        t3 = time.perf_counter()
        i = np.minimum(np.searchsorted(every, h), every.size - 1)
        flat_held = every[i] == h
        t4 = time.perf_counter()
        assert not (flat_held & ~held).any()  # it may hold more, never fewer
        every = np.sort(np.concatenate([every, h[~held]]))  # the baseline's set (not timed)
        look.append((t1 - t0) * 1e3)
        commit.append((t2 - t1) * 1e3)
        flat.append((t4 - t3) * 1e3)
        segments.append(len(known.segments))
        last = fresh

    def summary(xs: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(xs), 4),
                "p99_ms": round(float(np.percentile(xs, 99)), 4),
                "max_ms": round(max(xs), 3), "total_ms": round(sum(xs), 1)}

    print(json.dumps({"runs": a.runs, "passes": a.passes, "per_pass": a.per_pass,
                      "lookup": summary(look), "commit": summary(commit),
                      "baseline_one_sorted_array_lookup": summary(flat),
                      "segments_max": max(segments),
                      "segments_last": segments[-1]}, indent=2))


if __name__ == "__main__":
    main()
