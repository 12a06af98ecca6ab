"""Collector load test: 8 concurrent clients posting batches of 500 events to 127.0.0.1.

What it measures, all in one run on this machine:
1. baseline: the same batches ingested in-process by `ingest_events` (no HTTP, no merging),
   one 500-event batch per call, for the same duration — the cost the collector amortises;
2. the collector (`alphatrace serve` in a subprocess, fresh store) under `--clients` client
   processes in a closed loop (each posts its next batch when the previous one is answered)
   for `--seconds`: sustained events/s, request latency p50/p99/max, and loss: after the
   server stops, the store must hold exactly the events that were sent (all distinct).

Load goes to 127.0.0.1 only and stops after `--seconds`. A dated section is appended to
bench/RESULTS.md in one write (skipped with --quick).

    python bench/bench_collector.py                # 8 clients x 60 s, recorded
    python bench/bench_collector.py --quick        # 8 clients x 10 s, not recorded
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alphatrace.sdk.ids import uuid7
from common import RESULTS, collector, machine, percentile, record

HERE = Path(__file__).resolve().parent
TARGET_EPS = 20_000
TARGET_P99_MS = 250.0


def batch(client: int, seq: int, size: int) -> list[dict[str, Any]]:
    """`size` events shaped like the SDK's: per run a usage, an alpha and a closing event, with
    the SDK's ids (a UUIDv7 run id, so ids are time-ordered, plus a sequence)."""
    out: list[dict[str, Any]] = []
    ts = 1_740_816_000 + seq
    i = 0
    while len(out) < size:
        rid = uuid7()
        out.append({"type": "telemetry", "event_id": f"{rid}:1", "run_id": rid, "agent": f"Agent{client}",
                    "strategy": "FUNDING", "ts": ts, "model": "gpt-4o", "tokens_in": 1830,
                    "tokens_out": 421, "cost_usd": 0.008785})
        if len(out) < size:
            out.append({"type": "alpha", "event_id": f"{rid}:2", "run_id": rid, "agent": f"Agent{client}",
                        "strategy": "FUNDING", "ts": ts, "symbol": "BTC", "direction": "SHORT",
                        "score_final": -1.42, "regime": "MEAN_REVERT"})
        if len(out) < size:
            out.append({"type": "telemetry", "event_id": f"{rid}:end", "run_id": rid,
                        "agent": f"Agent{client}", "strategy": "FUNDING", "ts": ts,
                        "latency_ms": 950.0, "errors": 0})
        i += 1
    return out


def body(client: int, seq: int, size: int) -> bytes:
    return json.dumps(batch(client, seq, size), separators=(",", ":")).encode()


_ACCEPTED = re.compile(rb'^\{"accepted":(\d+),')


def client_proc(args: tuple[int, str, str, int, float, float, float | None]) -> dict[str, Any]:
    """One client: bodies are built before the clock starts (the load generator shares the
    machine's two cores with the server, so it should spend as little CPU as it can).
    `rate` (events/s of this client): batches are due at fixed times (`load.schedule`) and a
    request's latency counts from its due time, so one that waited for a slow answer before it
    could be sent counts that wait too (no coordinated omission); None: a closed loop."""
    import httpx

    client, url, key, size, start_at, seconds, rate = args
    bodies = [body(client, seq, size) for seq in range(int(seconds * 12) + 1)]
    lat: list[float] = []
    sent = accepted = bad = 0
    if rate is None:
        dues: Iterator[float | None] = _closed_loop(start_at, seconds)
    else:
        from load import schedule  # load imports this module

        batches = rate / size
        dues = schedule(batches, int(seconds * batches), start_at)
    with httpx.Client(base_url=url, timeout=60, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as c:
        for seq, due in enumerate(dues):
            data = bodies[seq] if seq < len(bodies) else body(client, seq, size)
            t0 = time.perf_counter() if due is None else due
            res = c.post("/v1/events", content=data)
            lat.append((time.perf_counter() - t0) * 1000)
            sent += size
            m = _ACCEPTED.match(res.content) if res.status_code == 200 else None
            if m:
                accepted += int(m.group(1))
            else:
                bad += 1
    return {"lat": lat, "sent": sent, "accepted": accepted, "bad": bad, "end": time.time()}


def _closed_loop(start_at: float, seconds: float) -> Iterator[None]:
    """Waits for the wall-clock `start_at`, then yields until `seconds` have passed: each
    batch is sent as soon as the last one was answered."""
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    while time.time() < end:
        yield None


def _warm(_: int) -> None:
    import httpx  # noqa: F401

    time.sleep(0.2)  # keeps this worker busy so each warm-up lands on a different one


def baseline(tmp: Path, size: int, seconds: float) -> float:
    from alphatrace.store import Store
    from alphatrace.store.ingest import ingest_events

    n = 0
    with Store(tmp / "baseline.duckdb") as store:
        t0 = time.perf_counter()
        seq = 0
        while time.perf_counter() - t0 < seconds:
            ingest_events(store, batch(0, seq, size))
            seq += 1
            n += size
        return n / (time.perf_counter() - t0)


def run_collector(tmp: Path, clients: int, size: int, seconds: float,
                  rate: float | None = None) -> dict[str, Any]:
    """`rate`: events/s offered by all clients together, paced (`client_proc`); None: each
    client in a closed loop."""
    from alphatrace.store import Store

    with collector(tmp) as (url, key, db):
        with mp.get_context("spawn").Pool(clients) as pool:
            pool.map(_warm, range(clients), chunksize=1)  # every worker up and importing done
            start_at = time.time() + 2.0 + seconds * 0.05  # time to build the bodies
            each = None if rate is None else rate / clients
            outs = pool.map(client_proc, [(c, url, key, size, start_at, seconds, each)
                                          for c in range(clients)], chunksize=1)
        elapsed = max(o["end"] for o in outs) - start_at
    lat = [x for o in outs for x in o["lat"]]
    sent = sum(o["sent"] for o in outs)
    with Store(db, read_only=True) as s:
        stored, distinct = s.con.execute(
            "SELECT sum(n), sum(d) FROM (SELECT count(*) n, count(DISTINCT event_id) d FROM telemetry "
            "UNION ALL SELECT count(*), count(DISTINCT event_id) FROM alpha)").fetchall()[0]
    return {
        "clients": clients, "batch": size, "rate": rate, "seconds": elapsed, "requests": len(lat),
        "sent": sent, "accepted": sum(o["accepted"] for o in outs), "stored": int(stored),
        "distinct": int(distinct), "failed_requests": sum(o["bad"] for o in outs),
        "eps": sent / elapsed, "p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99),
        "max": max(lat) if lat else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--baseline-seconds", type=float, default=15.0)
    ap.add_argument("--quick", action="store_true", help="10 s, not recorded")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.baseline_seconds = 10.0, 5.0
    info = machine("duckdb", "fastapi", "uvicorn")
    tmp = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    try:
        base = baseline(tmp, a.batch, a.baseline_seconds)
        r = run_collector(tmp, a.clients, a.batch, a.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loss = r["sent"] - r["stored"]
    ok_eps, ok_p99 = r["eps"] >= TARGET_EPS, r["p99"] <= TARGET_P99_MS
    ok_loss = loss == 0 and r["stored"] == r["distinct"] == r["accepted"] and not r["failed_requests"]
    print(json.dumps({**r, "baseline_eps": base, "ratio": r["eps"] / base, "loss": loss}, indent=2))
    if a.quick:
        return
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    yn = {True: "**yes**", False: "**no**"}
    section = f"""
## Collector load (bench/bench_collector.py) — {now}

Machine: {info}.
Load: {r['clients']} client processes on 127.0.0.1, closed loop (next batch when the previous one
is answered), batches of {r['batch']} SDK-shaped events (usage, alpha, closing telemetry), for
{r['seconds']:.1f} s against `alphatrace serve` with a fresh store. Baseline (same run): the same
batches through `ingest_events` in-process, one batch per call, no HTTP, for {a.baseline_seconds:.0f} s.

| measure | value |
|---|---:|
| events/s sustained (collector) | {r['eps']:,.0f} |
| events/s baseline (in-process, one call per 500-event batch) | {base:,.0f} |
| collector / baseline | {r['eps'] / base:.2f}× |
| requests | {r['requests']:,} |
| request latency p50 / p99 / max (ms) | {r['p50']:.0f} / {r['p99']:.0f} / {r['max']:.0f} |
| events sent / accepted / stored (distinct) | {r['sent']:,} / {r['accepted']:,} / {r['stored']:,} ({r['distinct']:,}) |
| failed requests | {r['failed_requests']} |

Targets: ≥ {TARGET_EPS:,} events/s: {yn[ok_eps]}; p99 ≤ {TARGET_P99_MS:.0f} ms: {yn[ok_p99]}; zero loss: {yn[ok_loss]}.
"""
    record(section)
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
