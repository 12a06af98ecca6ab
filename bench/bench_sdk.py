"""SDK overhead per run on the agent's hot path, against a do-nothing baseline in the same run.

The run measured is the README's: `with alphatrace.run(...) as run: run.usage(...);
run.alpha(...)` (3 events: usage, alpha, closing telemetry). Each case runs `--runs` runs,
`--repeats` times; the median is reported.

1. baseline: the same loop shape with a null context manager and two calls that build a small
   dict each (what any instrumentation would cost at the very least);
2. hot path: the SDK with its background thread asleep (poll interval longer than the loop),
   i.e. only what the agent's thread pays: ids, clock reads, cost lookup, dicts, queue appends;
3. with drain: the default spool sink draining concurrently (the background thread encodes and
   writes while the loop runs, competing for the GIL), plus the final flush, divided per run —
   the whole cost of the SDK to a CPU-bound process.

    python bench/bench_sdk.py            # recorded in bench/RESULTS.md
    python bench/bench_sdk.py --quick    # not recorded
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, machine, record

HERE = Path(__file__).resolve().parent
TARGET_US = 50.0


def baseline(n: int) -> float:
    sink: list[dict[str, Any]] = []

    def usage(**kw: Any) -> None:
        sink.append(dict(kw))

    def alpha(**kw: Any) -> None:
        sink.append(dict(kw))

    t0 = time.perf_counter()
    for _ in range(n):
        with contextlib.nullcontext():
            usage(model="gpt-4o", tokens_in=1830, tokens_out=421)
            alpha(symbol="BTC", direction="SHORT", score=-1.42, regime="MEAN_REVERT")
    return (time.perf_counter() - t0) / n * 1e6


def sdk_loop(n: int) -> float:
    import alphatrace

    t0 = time.perf_counter()
    for _ in range(n):
        with alphatrace.run(agent="CryptoFundingRateAgent", strategy="FUNDING") as run:
            run.usage(model="gpt-4o", tokens_in=1830, tokens_out=421)
            run.alpha(symbol="BTC", direction="SHORT", score=-1.42, regime="MEAN_REVERT")
    return (time.perf_counter() - t0) / n * 1e6


def hot_path(n: int, spool: Path) -> float:
    from alphatrace.sdk import configure, emitter

    configure(spool_dir=spool, poll_s=3600.0, max_queue=10 * n)
    em = emitter.get_emitter()
    em.put({"warm": True})  # starts the (sleeping) thread before timing
    us = sdk_loop(n)
    em._q.clear()  # not delivered: this case measures the agent's thread only
    emitter.reset()
    return us


def with_drain(n: int, spool: Path) -> float:
    from alphatrace.sdk import configure, emitter, flush

    configure(spool_dir=spool, max_queue=10 * n)
    t0 = time.perf_counter()
    sdk_loop(n)
    assert flush(timeout=300)
    us = (time.perf_counter() - t0) / n * 1e6
    emitter.shutdown()
    emitter.reset()
    return us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.repeats = 5_000, 3
    info = machine()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sdk-"))
    try:
        base = statistics.median(baseline(a.runs) for _ in range(a.repeats))
        hot = statistics.median(hot_path(a.runs, tmp / f"h{i}") for i in range(a.repeats))
        drain = statistics.median(with_drain(a.runs, tmp / f"d{i}") for i in range(a.repeats))
        lines = sum(1 for f in (tmp / "d0").glob("*.jsonl") for _ in f.open())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert lines == 3 * a.runs, lines
    print(f"baseline {base:.2f} us/run, hot path {hot:.2f} us/run ({hot / base:.1f}x), "
          f"with drain {drain:.2f} us/run ({drain / base:.1f}x); {lines} events spooled per repeat")
    if a.quick:
        return
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ok = "**yes**" if hot <= TARGET_US else "**no**"
    section = f"""
## SDK overhead per run (bench/bench_sdk.py) — {now}

Machine: {info}.
Run: the README's (`alphatrace.run` + `usage` + `alpha` → 3 events), {a.runs:,} runs per
repeat, median of {a.repeats} repeats. Baseline (same run): the same loop with a null context
manager and two calls that each build a dict.

| case | µs per run | × baseline |
|---|---:|---:|
| baseline (null context + 2 dict-building calls) | {base:.2f} | 1.0 |
| SDK hot path (agent thread only; background thread asleep) | {hot:.2f} | {hot / base:.1f} |
| SDK with spool draining concurrently, flush included | {drain:.2f} | {drain / base:.1f} |

Target: ≤ {TARGET_US:.0f} µs per run on the hot path: {ok}. Every event reached the spool
({lines:,} lines for {a.runs:,} runs).
"""
    record(section)
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
