"""OTLP span path CPU in one process: the mapping (`otlp_routes.map_body`: protobuf decode, spans
to events, trace attribution) and the writer's entry (`otlp_held.store_spans`: typed staging,
identity, insert), per span, on bench_otlp.py's bodies (512 spans: 1 tagged root + 3 GenAI
LLM-call spans per trace). Rounds of 3 requests, as the collector's writer takes them under
bench_otlp.py's load.

Process CPU (all threads, DuckDB's too), best of `--repeat` passes: steadier than a load test
on a shared machine, and the server's cost without HTTP, threads or the live pipeline. Compare
two checkouts in the same minutes, alternately:

    PYTHONPATH=src python bench/bench_otlp_cpu.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench_otlp import bodies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=64, help="bodies of 512 spans")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--round", type=int, default=3, help="requests per writer round")
    a = ap.parse_args()
    from alphatrace.sdk.prices import resolve_table
    from alphatrace.server.otlp_held import store_spans
    from alphatrace.server.otlp_routes import map_body
    from alphatrace.store import Store

    prices = resolve_table(None)
    clients = 8
    data = [b for c in range(clients) for b in bodies(c, a.requests // clients, 512, False)]
    map_us = store_us = float("inf")
    for _ in range(a.repeat):
        c0 = time.process_time()
        mapped = [map_body(b, True, prices) for b in data]
        n = sum(len(m.events) for m in mapped)
        map_us = min(map_us, (time.process_time() - c0) / n * 1e6)
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "cpu.duckdb") as s:
            c0 = time.process_time()
            for i in range(0, len(mapped), a.round):
                store_spans(s, [e for m in mapped[i:i + a.round] for e in m.events], "<otlp>",
                            [None])
            store_us = min(store_us, (time.process_time() - c0) / n * 1e6)
    print(json.dumps({"spans": n, "map_cpu_us_per_span": round(map_us, 2),
                      "store_cpu_us_per_span": round(store_us, 2)}, indent=2))


if __name__ == "__main__":
    main()
