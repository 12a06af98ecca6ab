"""Sizing endpoint and SDK benchmark (issue #20 "Targets").

What it measures, in one run on this machine:
1. GET /v1/agents/{agent}/sizing at `--rps` requests/s (default 1,000) from `--clients` client
   processes (default 8) on 127.0.0.1, open loop: each request has a scheduled send time and its
   latency counts from that time, so a stall is not hidden by the clients slowing down with it
   (no coordinated omission); meanwhile `--ingest-clients` processes post SDK-shaped events at
   `--eps` events/s in total (default 10,000) to the same `alphatrace serve`. Target: p99 ≤ 5 ms.
   The clients (bench/load.py) prepare everything before the clock starts and send
   pre-encoded requests, since they share the server's cores.
2. The SDK's cached `alphatrace.size()` against that server, in this process: per call, after
   the first call filled the cache. Target: ≤ 20 µs.

Load goes to 127.0.0.1 only and stops after `--seconds`. A dated section is appended to
bench/RESULTS.md in one write (skipped with --quick or --no-record).

    python bench/bench_sizing.py                 # 20 s, recorded
    python bench/bench_sizing.py --quick         # 5 s, not recorded
    python bench/bench_sizing.py --floor         # then the same load against a canned answer
    python bench/bench_sizing.py --split         # half the clients on a canned answer, at once
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, collector, cpu_seconds, machine, percentile, record, server_pid
from load import BATCH, Job, Load, canned_server, ingest_client, sizing_client

TARGET_P99_MS = 5.0
TARGET_CACHED_US = 20.0
AGENTS = [f"Agent{i}" for i in range(8)]


def cached_size_us(url: str, key: str, calls: int) -> float:
    """Per-call time of `alphatrace.size()` as an agent calls it (the server's cache time,
    1 s: the few calls that ask the server again are included), after a first call."""
    os.environ["ALPHATRACE_URL"] = url
    os.environ["ALPHATRACE_READ_KEY"] = key
    import alphatrace

    size = alphatrace.size
    size("Agent0", 10_000, 1.0)
    t0 = time.perf_counter()
    for _ in range(calls):
        size("Agent0", 10_000, 1.0)
    return (time.perf_counter() - t0) / calls * 1e6


def run(tmp: Path, a: argparse.Namespace, floor: bool = False) -> dict[str, Any]:
    """One measurement. `floor`: the sizing clients ask a canned-answer server in a process
    of its own (`load.canned_server`, the real endpoint's answer bytes) while the same ingest
    load goes to `alphatrace serve`: the latency no server could beat on this machine with
    these clients beside this ingest. `a.split`: half the clients ask the real endpoint and
    half a canned-answer server, at the same time (both under the same moment's load)."""
    import multiprocessing as mp

    import httpx

    from alphatrace.server.keys import create_key

    keys: dict[str, str] = {}

    def read_key(store: Any) -> None:
        keys["read"] = create_key(store, "bench-read", "read")["key"]

    with collector(tmp, "--otlp-grpc-port", "0", *a.serve_arg, prepare=read_key
                   ) as (url, ingest_key, db):
        port = int(url.rsplit(":", 1)[1])
        cached = cached_size_us(url, keys["read"], a.calls)
        canned = None
        targets = [port] * a.clients
        if floor or a.split:
            real = httpx.get(f"{url}/v1/agents/{AGENTS[0]}/sizing?base_size=10000&score=1.0",
                             headers={"Authorization": f"Bearer {keys['read']}"}, timeout=10)
            answer = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                      f"content-length: {len(real.content)}\r\n\r\n").encode() + real.content
            ports = mp.get_context("spawn").Queue()
            canned = mp.get_context("spawn").Process(target=canned_server, args=(ports, answer),
                                                     daemon=True)
            canned.start()
            canned_port = ports.get(timeout=60)
            targets = [canned_port if floor or c % 2 else port for c in range(a.clients)]
        jobs: list[Job] = [(sizing_client, (c, targets[c], keys["read"], AGENTS,
                                            a.rps / a.clients, a.seconds))
                           for c in range(a.clients)]
        jobs += [(ingest_client, (c, port, ingest_key, a.eps / a.ingest_clients, a.seconds))
                 for c in range(a.ingest_clients)]
        server = server_pid(db)
        with Load(jobs) as load:
            start_at = load.start()
            time.sleep(max(0.0, start_at - time.time()))
            cpu0, busy0 = cpu_seconds(server), machine_busy_seconds()
            time.sleep(a.seconds)
            server_cpu, busy = cpu_seconds(server) - cpu0, machine_busy_seconds() - busy0
        metrics = httpx.get(url + "/metrics", timeout=10).text
        if canned is not None:
            canned.kill()
    outs = load.results
    sz, ing = outs[:a.clients], outs[a.clients:] or [{"sent": 0, "bad": 0, "lat": [], "cpu": 0.0,
                                                       "elapsed": 1.0}]
    lat = [x for o in sz for x in o["lat"]]
    rtt = [x for o in sz for x in o["rtt"]]
    ilat = [x for o in ing for x in o["lat"]]
    route = [ln for ln in metrics.splitlines() if ln.startswith("alphatrace_sizing_seconds_")]
    split = {}
    if a.split and not floor:  # the real endpoint's half, then the canned half
        for name, half in (("real", sz[0::2]), ("canned", sz[1::2])):
            xs = [x for o in half for x in o["lat"]]
            split[name] = {"p50": percentile(xs, 0.5), "p99": percentile(xs, 0.99),
                           "max": max(xs) if xs else float("nan")}
    return {
        "split": split,
        "requests": len(lat), "failed": sum(o["bad"] for o in sz),
        "rps": len(lat) / a.seconds, "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
        "max": max(lat) if lat else float("nan"),
        "rtt_p50": percentile(rtt, 0.5), "rtt_p99": percentile(rtt, 0.99),
        "events_sent": sum(o["sent"] for o in ing), "ingest_failed": sum(o["bad"] for o in ing),
        "eps": sum(o["sent"] for o in ing) / max(o["elapsed"] for o in ing),
        "ingest_p99": percentile(ilat, 0.99), "cached_us": cached, "route_metrics": route[-2:],
        # CPU-seconds per second of load: what each side used of the machine's cores
        "cpu_server": server_cpu / a.seconds,
        "cpu_sizing_clients": sum(o["cpu"] for o in sz) / a.seconds,
        "cpu_ingest_clients": sum(o["cpu"] for o in ing) / a.seconds,
        "cpu_machine": busy / a.seconds,
    }


def floor_row(f: dict[str, Any] | None) -> str:
    """The table row of the floor run (`--floor`), or nothing."""
    if f is None:
        return ""
    return ("| floor: the same clients asking a canned-answer process beside the same ingest, "
            f"p50 / p99 / max (ms) | {f['p50']:.2f} / {f['p99']:.2f} / {f['max']:.1f} |\n")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle so far, all cores (Linux /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rps", type=float, default=1000.0)
    ap.add_argument("--ingest-clients", type=int, default=2)
    ap.add_argument("--eps", type=float, default=10_000.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--calls", type=int, default=200_000, help="cached size() calls timed")
    ap.add_argument("--quick", action="store_true", help="5 s, not recorded")
    ap.add_argument("--no-record", action="store_true", help="print only")
    ap.add_argument("--floor", action="store_true",
                    help="then the same load with the sizing clients asking a canned-answer "
                         "server (load.canned_server): this machine's floor, in the same run")
    ap.add_argument("--split", action="store_true",
                    help="half the sizing clients ask the real endpoint, half a canned-answer "
                         "server, at the same time (the floor under the same moment's load)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="an extra argument of `alphatrace serve` (repeatable), e.g. "
                         "--serve-arg=--no-pipeline")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.calls = 5.0, 50_000
    info = machine("duckdb", "fastapi", "uvicorn")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sizing-"))
    try:
        r = run(tmp, a)
        f = None
        if a.floor:
            (tmp / "floor").mkdir()
            f = run(tmp / "floor", a, floor=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(r, indent=2))
    if f is not None:
        print("floor (canned-answer server, same load):", json.dumps(
            {k: f[k] for k in ("requests", "failed", "p50", "p99", "max", "eps", "cpu_machine")}))
    if a.quick or a.no_record:
        return
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    yn = {True: "**yes**", False: "**no**"}
    section = f"""
## Sizing endpoint and SDK (bench/bench_sizing.py) — {now}

Machine: {info}.
Load: {a.clients} client processes asking GET /v1/agents/{{agent}}/sizing at {a.rps:,.0f}
requests/s in total (open loop: latency counted from each request's scheduled time), while
{a.ingest_clients} processes post {BATCH}-event batches at {a.eps:,.0f} events/s to the same
`alphatrace serve` (fresh store), for {a.seconds:.0f} s.

| measure | value |
|---|---:|
| sizing requests (failed) | {r['requests']:,} ({r['failed']}) |
| sizing latency p50 / p99 / max (ms) | {r['p50']:.2f} / {r['p99']:.2f} / {r['max']:.1f} |
| events/s posted beside it (failed batches) | {r['eps']:,.0f} ({r['ingest_failed']}) |
| ingest request p99 from schedule (ms) | {r['ingest_p99']:.0f} |
| SDK cached `alphatrace.size()` per call (µs) | {r['cached_us']:.2f} |
{floor_row(f)}
Targets: sizing p99 ≤ {TARGET_P99_MS:.0f} ms: {yn[r['p99'] <= TARGET_P99_MS]}; cached size()
≤ {TARGET_CACHED_US:.0f} µs: {yn[r['cached_us'] <= TARGET_CACHED_US]}.
"""
    record(section)
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
