"""How long a thread beside the collector's writer waits for the GIL (issue #20's sizing p99).

The event loop that answers sizing requests shares the GIL with the writer thread. A C call
that does not release the GIL holds it for its whole length, so a request that arrives then
waits that long. The longest such call found in a collector round was the encoding of the
round's events to JSON lines (store/encode_events.py); it now encodes `SLICE` events per call.

This script runs that encoding of one round (`--events`, default 2,048: four SDK batches of
512, as rounds under 10,000 events/s hold) in a loop on a thread, and on the main thread
sleeps 0.5 ms `--wakes` times, timing how late each wake-up gets the GIL back (the switch
interval set to `serve`'s, cli/server.py). Two arms in the same run: the whole round in one
encoder call (as before 2026-12-05) and in slices of `SLICE`; then the same wakes with no
encoding beside them (the floor). A dated section is appended to bench/RESULTS.md unless
--no-record.

    python bench/bench_gil.py [--events N] [--wakes N] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from typing import Any

from common import machine, percentile, record


def wake_lags(work: Any, wakes: int) -> list[float]:
    """ms by which each 0.5 ms sleep overran while `work` (None: nothing) ran on a thread."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            work()

    t = threading.Thread(target=loop, daemon=True) if work is not None else None
    if t is not None:
        t.start()
        time.sleep(0.05)
    lags = []
    try:
        for _ in range(wakes):
            t0 = time.perf_counter()
            time.sleep(0.0005)
            lags.append((time.perf_counter() - t0 - 0.0005) * 1000.0)
    finally:
        stop.set()
        if t is not None:
            t.join()
    return lags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2048)
    ap.add_argument("--wakes", type=int, default=3000)
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    from alphatrace.cli.server import SWITCH_INTERVAL_S
    from alphatrace.store import encode_events

    line = machine()  # before the run: its load average and reference loop are the machine's
    print(line, file=sys.stderr)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    events = [{"type": "telemetry", "run_id": f"L0-{i}", "agent": "Load0", "latency_ms": 50.0,
               "tokens_in": 10} for i in range(a.events)]
    sliced = encode_events.SLICE
    out: dict[str, Any] = {"events": a.events, "slice": sliced}
    for name, size in (("one call", a.events), (f"slices of {sliced}", sliced)):
        encode_events.SLICE = size
        c = time.process_time()
        for _ in range(20):
            encode_events.encode_lines(events)
        encode_ms = (time.process_time() - c) / 20 * 1000.0
        lags = wake_lags(lambda: encode_events.encode_lines(events), a.wakes)
        out[name] = {"encode_ms": encode_ms, "p50": percentile(lags, 0.5),
                     "p99": percentile(lags, 0.99), "max": max(lags)}
    encode_events.SLICE = sliced
    floor = wake_lags(None, a.wakes)
    out["nothing beside"] = {"p50": percentile(floor, 0.5), "p99": percentile(floor, 0.99),
                             "max": max(floor)}
    print(json.dumps(out, indent=2))
    if a.no_record:
        return
    rows = "\n".join(
        f"| {k} | {v.get('encode_ms', float('nan')):.2f} | {v['p50']:.2f} | {v['p99']:.2f} "
        f"| {v['max']:.2f} |" for k, v in out.items() if isinstance(v, dict))
    record(f"""## GIL wait beside the writer's encoding (bench/bench_gil.py) — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC

{line}

A round of {a.events:,} events encoded to JSON lines in a loop on a thread; the main thread's
0.5 ms sleeps, {a.wakes:,} of them, and how late each got the GIL back (ms):

| encoding | encode ms (CPU) | wake lag p50 | p99 | max |
|---|---:|---:|---:|---:|
{rows}

    python bench/bench_gil.py --events {a.events} --wakes {a.wakes}
""")


if __name__ == "__main__":
    main()
