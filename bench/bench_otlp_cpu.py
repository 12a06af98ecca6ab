"""OTLP span path CPU in one process: the mapping (`otlp_routes.map_body`: protobuf decode, spans
to events, trace attribution) and the writer's entry (`otlp_held.store_spans`: typed staging,
identity, insert), per span, on bench_otlp.py's bodies (512 spans: 1 tagged root + 3 GenAI
LLM-call spans per trace). Rounds of 3 requests, as the collector's writer takes them under
bench_otlp.py's load. `--split`: bench_otlp.py's split bodies (each trace's children in one
request, its root in the next), through the trace hold (`TraceHold.admit_submit`, timed apart
as `hold_cpu_us_per_span`) and with each round's hold writes (`otlp_held`) in its transaction.

Process CPU (all threads, DuckDB's too), best of `--repeat` passes: steadier than a load test
on a shared machine, and the server's cost without HTTP, threads or the live pipeline. Compare
two checkouts in the same minutes, alternately:

    PYTHONPATH=src python bench/bench_otlp_cpu.py
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_otlp import bodies


def _keep(requests: list[tuple[list[Any], list[Any]]], ready: list[Any], writes: Any) -> None:
    """A request as the hold hands it to the writer: the events to write, its hold writes."""
    requests.append(([r.event for r in ready], [writes]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=64, help="bodies of 512 spans")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--round", type=int, default=3, help="requests per writer round")
    ap.add_argument("--split", action="store_true",
                    help="children and roots in different requests, through the trace hold")
    a = ap.parse_args()
    from alphatrace.sdk.prices import resolve_table
    from alphatrace.server.otlp_held import store_spans
    from alphatrace.server.otlp_routes import map_body
    from alphatrace.server.trace_hold import TraceHold
    from alphatrace.store import Store

    prices = resolve_table(None)
    clients = 8
    data = [b for c in range(clients) for b in bodies(c, a.requests // clients, 512, a.split)]
    map_us = store_us = hold_us = float("inf")
    for _ in range(a.repeat):
        c0 = time.process_time()
        mapped = [map_body(b, True, prices) for b in data]
        n = sum(len(m.events) for m in mapped)
        map_us = min(map_us, (time.process_time() - c0) / n * 1e6)
    for _ in range(a.repeat):
        # each request as the hold answers it: (events to write, its hold writes)
        requests: list[tuple[list[Any], list[Any]]] = []
        c0 = time.process_time()
        if a.split:
            hold = TraceHold()
            for m in mapped:
                hold.admit_submit(m.for_hold(), m.traces, functools.partial(_keep, requests))
            requests.append(([r.event for r in hold.drain()], [None]))
        else:
            requests = [(m.events, [None]) for m in mapped]
        hold_us = min(hold_us, (time.process_time() - c0) / n * 1e6)
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "cpu.duckdb") as s:
            c0 = time.process_time()
            for i in range(0, len(requests), a.round):
                part = requests[i:i + a.round]
                store_spans(s, [e for evs, _ in part for e in evs], "<otlp>",
                            [w for _, ws in part for w in ws])
            store_us = min(store_us, (time.process_time() - c0) / n * 1e6)
    print(json.dumps({"spans": n, "split": a.split, "map_cpu_us_per_span": round(map_us, 2),
                      "hold_cpu_us_per_span": round(hold_us, 2),
                      "store_cpu_us_per_span": round(store_us, 2)}, indent=2))


if __name__ == "__main__":
    main()
