"""The live pipeline (issue #14 targets): its work per round, decision latency, throughput.

(a) round: a store of 1M runs (alpha + telemetry each, pnl for 1 in 10; a year of bars for
    4 symbols, 1m by default (`--interval`: 2.1M bars), and 8-hourly funding with marks),
    reconciled once in full; then a round adds the next hour's bars and 1,000 runs signalled
    in the hour before the last stored one, with a 1h horizon, so that hour's bars price their
    exit and they are known after every subject's mark, as live runs are (see `--open-rounds`
    for legs that wait for their exit bar), through ingest, and the pipeline pass runs
    (incremental reconcile + gates evaluate), printed beside a full rebuild (`reconcile(full=True)`) of the same store in the same run. Target ≤ 100 ms.
    DuckDB runs with the threads `serve` gives it (`--threads`: others).
    Each pass also reports `cpu_ms`, the CPU time of the process (every DuckDB thread) during
    the pass: on a shared machine it varies less than wall time; `gates_cpu_ms`, the same for
    its gates step alone (`Gates.evaluate`). Then `--quiet-rounds` rounds of `--quiet-runs`
    runs of telemetry alone (an OTLP stream: no decision can change; `telemetry_passes`),
    with `--random-ids` run ids spread over the stored ones as trace ids are (the bench's
    own ids are sorted, which lets DuckDB's min/max filters skip the stored row groups);
    `--quiet-held`: each of those rounds after the first also brings more telemetry of the
    last one's runs, which the ledger then holds.
    `--uuid-ids`: every run id (stored and new) a UUID's text from a hash, in no order.
    `--open-rounds N`: each round's runs exit at a bar N rounds later (the live pattern: a
    run's entry is priced in the pass that brings its signal, its leg stays open, and the bar
    of its exit comes later), so from round N on a pass adds 1,000 runs and realizes the
    1,000 of round k - N, which the ledger holds. By default (0) a run's exit is at a bar of
    the hour before the round's (already stored), so each pass realizes the runs it adds.
(b) latency: a real server (uvicorn on loopback, in this process) with the pipeline on,
    8 client processes sending 10,000 events/s in all (telemetry in the SDK's batches of 512,
    `_load_client`; the process tuned as `serve` tunes it). A probe is a losing agent under
    the seed's gates (policies/seed.yaml: its 5th losing run is the evidence of a kill). Its
    first four runs are realized and judged first; then the request that completes the 5th
    run's evidence is timed, as the issue defines it, to the commit of the kill record (the
    end of the pass that appended it). `--evidence pnl` (default): that request is the 5th
    run's pnl event; `bar`: it is the bar that prices the 5th run's exit (the probe trades a
    symbol of its own); `signal` (the bench before 2026-12-05): the five losing signals, one
    a request, priced by stored bars, so the 5th came while the pass of the 4th ran.
    p50/p99 over repeats. Targets p50 ≤ 250 ms, p99 ≤ 1 s.
(c) throughput: bench_collector.py's load generator against `serve` with the pipeline on.
    Target ≥ 20,000 events/s, p99 ≤ 250 ms.

    python bench/bench_pipeline.py round [--runs N] [--interval S] [--keep] [--trace [--phases]]
                                         [--quiet-rounds N] [--quiet-runs N] [--random-ids]
                                         [--uuid-ids] [--open-rounds N] [--quiet-held]
                                         [--threads N]
    python bench/bench_pipeline.py latency [--seconds S] [--probes N] [--evidence pnl|bar|signal]
    python bench/bench_pipeline.py throughput [--seconds S] [--no-pipeline]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
START = dt.datetime(2024, 1, 1)
HOURS = 24 * 365
BATCH = 512  # the SDK's default batch (sdk/emitter.py Config.batch_size)
SYMBOLS = 4


def run_id_sql(prefix: str, i: str, uuid_ids: bool) -> str:
    """The run id of run `i` (a SQL expression): `prefix` and 8 digits, sorted as the runs
    were made, or with `uuid_ids` a UUID's text from a hash (as SDKs and trace ids make them:
    36 characters, in no order, so DuckDB's min/max filters skip no row group). The same
    as `run_id`."""
    if not uuid_ids:
        return f"'{prefix}' || lpad({i}::VARCHAR, 8, '0')"
    return (f"regexp_replace(md5('{prefix}' || {i}), "
            "'^(.{8})(.{4})(.{4})(.{4})(.{12})$', '\\1-\\2-\\3-\\4-\\5')")


def run_id(prefix: str, k: int, uuid_ids: bool) -> str:
    """`run_id_sql` in Python."""
    if not uuid_ids:
        return f"{prefix}{k:08d}"
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"{prefix}{k}".encode()).hexdigest()))


def build_store(db: Path, runs: int, interval: int = 60, uuid_ids: bool = False) -> None:
    """A year of `interval`-second bars and of 8-hourly funding for SYMBOLS symbols, and
    `runs` runs written straight into the event tables as ingest would store them (one file
    id, recorded in ingested_files); run ids as `run_id_sql`."""
    from alphatrace.store import Store

    for p in (db, db.with_name(db.name + ".wal")):
        if p.exists():
            p.unlink()
    with Store(db) as store:
        con = store.con
        con.execute("SELECT setseed(0.17)")
        con.execute(f"""
INSERT INTO bars (symbol, interval_s, ts, open)
SELECT 'SYM' || s || 'USDT', {interval}, TIMESTAMP '{START}' + to_seconds(k * {interval}),
       (100 + 37 * s) * exp(0.05 * sin(h / 300.0 + s) + 0.01 * sin(h / 7.0 + 3 * s))
FROM range({SYMBOLS}) a(s), range({HOURS * 3600 // interval}) b(k),
     LATERAL (SELECT k * {interval} / 3600.0 AS h)
ORDER BY 1, 3""")
        con.execute(f"""
INSERT INTO funding (symbol, ts, funding_rate, mark_price)
SELECT 'SYM' || s || 'USDT', TIMESTAMP '{START}' + to_hours(h), 0.0001 * sin(h / 50.0 + s),
       100 + 37 * s
FROM range({SYMBOLS}) a(s), range(0, {HOURS}, 8) b(h)""")
        fid = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
        con.execute("INSERT INTO ingested_files VALUES (?, 'bench', NULL, 0, ?, ?, 0, 0, "
                    "current_timestamp::TIMESTAMP)", [fid, runs, runs])
        ts = (f"TIMESTAMP '{START}' + to_microseconds(CAST(i / {runs} * {HOURS - 10} * 3600e6 "
              "AS BIGINT))")
        rid = run_id_sql("r", "i", uuid_ids)
        con.execute(f"""
INSERT INTO alpha (event_id, run_id, agent, ts, symbol, direction, score_final, size_usd,
                   horizon_s, strategy, file_id, line)
SELECT 'a' || i, {rid}, 'Agent' || (i % 12), {ts},
       'SYM' || (i % {SYMBOLS}) || 'USDT',
       CASE WHEN random() < 0.5 THEN 'LONG' ELSE 'SHORT' END, round(random() * 4 - 2, 2),
       NULL, [3600, 14400, 28800][1 + i % 3], 'S' || (i % 3), {fid}, 3 * i + 1
FROM range({runs}) r(i)""")
        con.execute(f"""
INSERT INTO telemetry (event_id, run_id, agent, ts, latency_ms, tokens_in, tokens_out,
                       cost_usd, errors, strategy, file_id, line)
SELECT 't' || i, {rid}, 'Agent' || (i % 12), {ts},
       100 + random() * 400, 1000, 200, 0.002, 0, 'S' || (i % 3), {fid}, 3 * i + 2
FROM range({runs}) r(i)""")
        con.execute(f"""
INSERT INTO pnl (event_id, run_id, realized_pnl_bps, ts, agent, revision, file_id, line)
SELECT 'p' || i, {rid}, round(random() * 60 - 30, 2), {ts},
       'Agent' || (i % 12), 0, {fid}, 3 * i + 3
FROM range(0, {runs}, 10) r(i)""")
        con.execute("CHECKPOINT")


def new_runs(first: int, n: int, hour: int = HOURS - 10, uuid_ids: bool = False
             ) -> list[dict[str, Any]]:
    """`n` runs after the stored ones, signalled in the hour before `hour` with a 1h horizon:
    entry at the bar after the signal, exit an hour later, in hour `hour` (hours count from
    START); run ids as `run_id`."""
    out: list[dict[str, Any]] = []
    for k in range(first, first + n):
        ts = (START + dt.timedelta(hours=hour - 1, seconds=1 + k % 3599)).isoformat() + "Z"
        rid = run_id("n", k, uuid_ids)
        out.append({"type": "alpha", "event_id": f"{rid}:a", "run_id": rid,
                    "agent": f"Agent{k % 12}", "ts": ts, "symbol": f"SYM{k % SYMBOLS}USDT",
                    "direction": "LONG", "horizon": 3600, "strategy": f"S{k % 3}"})
        out.append({"type": "telemetry", "event_id": f"{rid}:t", "run_id": rid,
                    "agent": f"Agent{k % 12}", "ts": ts, "latency_ms": 120.0,
                    "strategy": f"S{k % 3}"})
    return out


def telemetry_runs(first: int, n: int, hour: int, random_ids: bool = False, part: int = 0,
                   uuid_ids: bool = False) -> list[dict[str, Any]]:
    """`n` runs of telemetry alone (as an OTLP exporter sends them), in the hour before
    `hour`: ledger rows without a signal, which no gate counts. `random_ids`: ids spread
    over the stored runs' (`r` + a hash), as trace ids are, instead of sorted ones. `part`:
    more telemetry of the same runs (other event ids), as a trace whose spans came in
    several rounds. `uuid_ids`: ids as `run_id` makes them (UUIDs, among the stored ones
    when those are UUIDs too; `r` + a hash would sort after every one of them)."""
    import hashlib

    def rid(k: int) -> str:
        if uuid_ids:
            return run_id("q", k, True)
        return ("r" + hashlib.sha1(str(k).encode()).hexdigest()[:12] if random_ids
                else f"q{k:08d}")

    return [{"type": "telemetry", "event_id": f"{rid(k)}:t{part or ''}", "run_id": rid(k),
             "agent": f"Agent{k % 12}",
             "ts": (START + dt.timedelta(hours=hour - 1, seconds=1 + k % 3599)).isoformat()
             + "Z", "latency_ms": 80.0, "tokens_in": 500, "strategy": f"S{k % 3}"}
            for k in range(first, first + n)]


def add_bar(store: Any, hour: int, interval: int = 60) -> None:
    """The bars of the hour starting at `hour` for every symbol, as a live price feed would
    add them (those already there are left), and the funding settlement when `hour` has one."""
    store.con.execute(f"""
INSERT INTO bars (symbol, interval_s, ts, open)
SELECT 'SYM' || s || 'USDT', {interval}, TIMESTAMP '{START}' + to_seconds(k * {interval}),
       100 + 37 * s
FROM range({SYMBOLS}) a(s),
     range({hour * 3600 // interval}, {(hour + 1) * 3600 // interval}) r(k)
ANTI JOIN bars b ON b.symbol = 'SYM' || s || 'USDT' AND b.interval_s = {interval}
  AND b.ts = TIMESTAMP '{START}' + to_seconds(k * {interval})""")
    if hour % 8 == 0:
        store.con.execute(f"""
INSERT OR IGNORE INTO funding (symbol, ts, funding_rate, mark_price)
SELECT 'SYM' || s || 'USDT', TIMESTAMP '{START}' + to_hours({hour}), 0.0001, 100 + 37 * s
FROM range({SYMBOLS}) a(s)""")


class _Traced:
    """A connection that times each statement run through it (`--trace`): SQL text (its first
    line of substance) -> [calls, total ms]. The relations `sql` returns are timed when read.
    `phases` (`--phases`): DuckDB's detailed profile of each statement too, for its bind,
    optimise and plan times; rendering that profile runs inside the timed call and inflates
    each statement's CPU (at 1M runs a busy pass's statements 363 ms against ~230 untraced,
    most for plans with long IN-lists: bench/RESULTS.md, 2026-12-04), so rank by CPU without it."""

    PROFILE = OUT / "trace_profile.json"

    def __init__(self, con: Any, times: dict[str, list[float]], phases: bool = False) -> None:
        self._con, self._times, self.phases = con, times, phases
        self.statements = 0  # statements run (a relation counts once, when made)
        if not phases:
            return
        con.execute("SET enable_profiling = 'json'")
        con.execute(f"SET profiling_output = '{self.PROFILE}'")
        con.execute("SET profiling_mode = 'detailed'")

    def close_trace(self) -> None:
        if not self.phases:
            return
        self._con.execute("SET enable_profiling = 'no_output'")
        self._con.execute("SET profiling_mode = 'standard'")

    def _add(self, sql: object, t0: float, c0: float) -> None:
        """[calls, wall ms, bind ms, optimize ms, physical plan ms, CPU ms] (bind, optimize
        and plan from DuckDB's profile; CPU: the process's, every DuckDB thread)."""
        wall = (time.perf_counter() - t0) * 1000.0
        cpu = (time.process_time() - c0) * 1000.0
        text = " ".join(str(getattr(sql, "query", sql)).split())[:80]
        slot = self._times.setdefault(text, [0, 0.0, 0.0, 0.0, 0.0, 0.0])
        slot[0] += 1
        slot[1] += wall
        slot[5] += cpu
        if not self.phases:
            return
        try:
            prof = json.loads(self.PROFILE.read_text())
            self.PROFILE.unlink()
        except (OSError, ValueError):
            return
        slot[2] += prof.get("planner", {}).get("total_time", 0.0) * 1000.0
        slot[3] += prof.get("optimizer", {}).get("total_time", 0.0) * 1000.0
        slot[4] += prof.get("physical_planner", {}).get("total_time", 0.0) * 1000.0

    def execute(self, sql: object, *a: Any, **k: Any) -> Any:
        self.statements += 1
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return self._con.execute(sql, *a, **k)
        finally:
            self._add(sql, t0, c0)

    def sql(self, sql: str, *a: Any, **k: Any) -> Any:
        self.statements += 1
        t0, c0 = time.perf_counter(), time.process_time()
        rel = self._con.sql(sql, *a, **k)
        self._add(sql, t0, c0)
        traced = self

        class Rel:
            def __getattr__(self, name: str) -> Any:
                f = getattr(rel, name)
                if not callable(f):
                    return f

                def timed(*a: Any, **k: Any) -> Any:
                    t1, c1 = time.perf_counter(), time.process_time()
                    try:
                        return f(*a, **k)
                    finally:
                        traced._add(sql, t1, c1)
                return timed
        return Rel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def bench_round(runs: int, rounds: int, keep: bool = False, trace: bool = False,
                threads: int | None = None, interval: int = 60,
                quiet_rounds: int = 3, quiet_runs: int = 1000,
                random_ids: bool = False, phases: bool = False,
                uuid_ids: bool = False, open_rounds: int = 0,
                quiet_held: bool = False) -> dict[str, Any]:
    """`keep`: build the store once (bench/out/bench_pipeline_N.base.duckdb) and start each run
    from a copy of it. `threads`: DuckDB's threads (default: what `serve` sets,
    `cli.server.serving_threads`, one core fewer than the machine has). `quiet_rounds`:
    then rounds of `quiet_runs` telemetry-only runs (`telemetry_pass_cpu_ms_median`).
    `uuid_ids`: every run id a UUID's text (`run_id_sql`), stored and new ones.
    `open_rounds`: the rounds a run's leg stays open (`--open-rounds`). `quiet_held`: each
    telemetry-only round after the first also brings more telemetry of the last one's runs
    (`--quiet-held`)."""
    import shutil

    from alphatrace.cli.server import serving_threads
    from alphatrace.governance.api import Gates
    from alphatrace.ledger.reconcile import reconcile
    from alphatrace.server.pipeline import Pipeline, PipelineConfig
    from alphatrace.store import Store
    from alphatrace.store.ingest import ingest_events

    OUT.mkdir(exist_ok=True)
    name = f"bench_pipeline_{runs}_{interval}{'_uuid' if uuid_ids else ''}"
    db = OUT / f"{name}.duckdb"
    base = OUT / f"{name}.base.duckdb"
    t = time.perf_counter()
    if keep and base.exists():
        for p in (db, db.with_name(db.name + ".wal")):
            p.unlink(missing_ok=True)
        shutil.copyfile(base, db)
    else:
        build_store(db, runs, interval, uuid_ids)
        if keep:
            shutil.copyfile(db, base)
    print(f"store ready in {time.perf_counter() - t:.1f}s: {runs:,} runs", file=sys.stderr)
    cfg = PipelineConfig.load(None)
    times: dict[str, list[float]] = {}
    statements: list[int] = []
    qtimes: dict[str, list[float]] = {}  # the same for the telemetry-only passes
    qstatements: list[int] = []
    gates_cpu: list[float] = []  # CPU of each pass's gates step (`Gates.evaluate`), ms
    evaluate = Gates.evaluate

    def timed(self: Gates, *a: Any, **k: Any) -> Any:
        c = time.process_time()
        try:
            return evaluate(self, *a, **k)
        finally:
            gates_cpu.append((time.process_time() - c) * 1000.0)

    Gates.evaluate = timed
    with Store(db) as store:
        if threads is None:  # the pass as `serve` runs it (on 2 cores: 1 thread, ~15% less)
            threads = serving_threads(os.cpu_count())
        store.con.execute(f"SET threads = {int(threads)}")
        t = time.perf_counter()
        reconcile(store, cfg.reconcile, full=True)
        first_full = time.perf_counter() - t
        live = Pipeline(cfg)
        live.run(store)  # the first pass: gates over the whole history, as at server start
        passes = []
        for k in range(rounds):
            add_bar(store, HOURS - 1 + k, interval)  # the round's exit bar: its runs are known
            # the exit is the signal's hour + 1: a bar of round k - 1 (stored), or of round
            # k + open_rounds
            hour = HOURS - 2 + k + (open_rounds + 1 if open_rounds else 0)
            ingest_events(store, new_runs(k * 1000, 1000, hour, uuid_ids))
            cpu = (_pass(live, store, times, statements, phases) if trace
                   else _pass(live, store))
            rec = live.last
            assert rec is not None and rec.error is None, rec
            assert rec.reconcile is not None
            passes.append({"total_ms": rec.total_ms, "cpu_ms": cpu * 1000.0,
                           "reconcile_ms": rec.reconcile_ms,
                           "gates_ms": rec.gates_ms, "gates_cpu_ms": gates_cpu[-1],
                           "rebuilt": rec.reconcile["rebuilt"],
                           "priced": rec.reconcile["priced"]})
        quiet = []  # rounds of telemetry alone (as OTLP sends): no decision can change
        for k in range(quiet_rounds):
            events = telemetry_runs(k * quiet_runs, quiet_runs, HOURS - 2 + rounds, random_ids,
                                    uuid_ids=uuid_ids)
            if quiet_held and k:  # more of the last round's runs, which the ledger holds
                events += telemetry_runs((k - 1) * quiet_runs, quiet_runs, HOURS - 2 + rounds,
                                         random_ids, part=1, uuid_ids=uuid_ids)
            ingest_events(store, events)
            called = len(gates_cpu)
            cpu = (_pass(live, store, qtimes, qstatements, phases) if trace
                   else _pass(live, store))
            rec = live.last
            assert rec is not None and rec.error is None, rec
            quiet.append({"total_ms": rec.total_ms, "cpu_ms": cpu * 1000.0,
                          "gates_skipped": getattr(rec, "gates_skipped", None),
                          "gates_cpu_ms": gates_cpu[-1] if len(gates_cpu) > called else 0.0})
        t = time.perf_counter()
        rep = reconcile(store, cfg.reconcile, full=True)
        full_s = time.perf_counter() - t
    Gates.evaluate = evaluate
    print("market reads:", list(getattr(getattr(live, "market", None), "kinds", [])),
          file=sys.stderr)
    totals = sorted(p["total_ms"] for p in passes)
    if trace:
        _print_trace("busy rounds", times, statements, rounds)
        _print_trace(f"telemetry-only rounds ({quiet_runs:,} runs each)", qtimes, qstatements,
                     quiet_rounds)
    return {"runs": rep.runs, "threads": threads, "open_rounds": open_rounds, "first_full_s": first_full,
            "full_rebuild_s": full_s,
            "pass_ms_median": statistics.median(totals), "pass_ms_max": totals[-1],
            "pass_cpu_ms_median": statistics.median(p["cpu_ms"] for p in passes),
            "gates_cpu_ms_median": statistics.median(p["gates_cpu_ms"] for p in passes),
            "telemetry_pass_cpu_ms_median": (statistics.median(p["cpu_ms"] for p in quiet)
                                             if quiet else None),
            "passes": passes, "telemetry_passes": quiet}


def _pass(live: Any, store: Any, times: dict[str, list[float]] | None = None,
          statements: list[int] | None = None, phases: bool = False) -> float:
    """One pipeline call; its process CPU in seconds. With `times`, each statement traced
    (`_Traced`) into `times`, and the pass's statement count appended to `statements`."""
    from alphatrace.store.connection import forget_kept_views

    if times is None:
        cpu = time.process_time()
        live(store)
        return time.process_time() - cpu
    raw, store.con = store.con, _Traced(store.con, times, phases)
    cpu = time.process_time()
    try:
        live(store)
        return time.process_time() - cpu
    finally:
        store.con.close_trace()
        if statements is not None:
            statements.append(store.con.statements)
        store.con = raw
        # the views `registered` kept for the wrapper replaced those kept for `raw` (the same
        # DuckDB connection), so `raw` registers its own again on their next use
        forget_kept_views(raw)


def _print_trace(title: str, times: dict[str, list[float]], statements: list[int],
                 passes: int) -> None:
    """The traced statements, ms a pass (wall, and DuckDB's bind/optimise/plan), top first."""
    if not passes or not times:
        return
    print(f"-- {title}: CPU ms/pass, wall (bind optim physplan: --phases)  calls  statement",
          file=sys.stderr)
    for text, (n, ms, b, o, pp, c) in sorted(times.items(), key=lambda kv: -kv[1][5])[:45]:
        print(f"{c / passes:7.2f} {ms / passes:7.2f} ({b / passes:5.1f} {o / passes:5.1f} "
              f"{pp / passes:4.1f}) {n / passes:4.1f}x  {text}", file=sys.stderr)
    tot = [sum(v[i] for v in times.values()) / passes for i in (5, 1, 2, 3, 4)]
    print(f"{tot[0]:7.2f} {tot[1]:7.2f} ({tot[2]:5.1f} {tot[3]:5.1f} {tot[4]:4.1f}) all "
          f"statements; statements per pass: {statements}", file=sys.stderr)


# -- (b) decision latency --------------------------------------------------------------------

def _load_client(args: tuple[str, str, float, float, int]) -> int:
    """One load client, shaped as the SDK's HTTP sink under a steady stream: `rate` events/s
    are due on a schedule, and a batch of BATCH goes out as soon as that many are due, one
    request at a time (a slow answer makes the next batch leave at once, not a smaller rate)."""
    import httpx

    url, key, rate, until, seed = args
    sent, seq = 0, 0
    start = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as c:
        while time.monotonic() < until:
            due_at = start + (sent + BATCH) / rate
            time.sleep(max(0.0, due_at - time.monotonic()))
            evs = [{"type": "telemetry", "run_id": f"L{seed}-{seq}-{i}", "agent": f"Load{seed}",
                    "latency_ms": 50.0, "tokens_in": 10} for i in range(BATCH)]
            c.post("/v1/events", json=evs)
            sent += BATCH
            seq += 1
    return sent


def _probe_hour(p: int, i: int) -> dt.datetime:
    return START + dt.timedelta(hours=10 * p + i, minutes=1)


def _probe_bars(p: int, hours: range) -> list[dict[str, Any]]:
    """1h bars of the probe's own symbol, rising 1% an hour (its SHORT signals lose)."""
    return [{"symbol": f"P{p}USDT", "ts": (START + dt.timedelta(hours=10 * p + h)).isoformat()
             + "Z", **dict.fromkeys(("open", "high", "low", "close"), 100.0 * 1.01 ** h)}
            for h in hours]


def _probe_signal(p: int, agent: str, i: int, symbol: str) -> dict[str, Any]:
    return {"type": "alpha", "run_id": f"{agent}-{i}", "agent": agent,
            "ts": _probe_hour(p, i).isoformat() + "Z", "symbol": symbol, "direction": "SHORT",
            "horizon": 3600}


def _probe_prepare(c: Any, p: int, agent: str, evidence: str) -> None:
    """The probe's first four losing runs, realized, and its fifth run short of its evidence:
    `pnl`, its telemetry (the pnl event completes it); `bar`, its signal, whose exit bar
    (the probe's own symbol's bar 10p+6) is not there yet."""
    if evidence == "pnl":
        ev = [_probe_signal(p, agent, i, "BTC") for i in range(4)]
        ev.append({"type": "telemetry", "run_id": f"{agent}-4", "agent": agent,
                   "ts": _probe_hour(p, 4).isoformat() + "Z", "latency_ms": 100.0})
    else:
        c.post("/v1/market/bars", params={"interval": "1h"},
               json=_probe_bars(p, range(0, 6))).raise_for_status()
        ev = [_probe_signal(p, agent, i, f"P{p}USDT") for i in range(5)]
    c.post("/v1/events", json=ev).raise_for_status()


def _probe_evidence(p: int, agent: str, evidence: str
                    ) -> list[tuple[str, dict[str, Any] | None, Any]]:
    """The request(s) that complete the probe's evidence; the last one is timed. `signal`
    (this bench before 2026-12-05): the five losing signals, one a request, all priced by
    stored bars, so the fifth arrives while the pass of the fourth runs."""
    if evidence == "pnl":
        known = (_probe_hour(p, 5)).isoformat() + "Z"
        return [("/v1/events", None, [{"type": "pnl", "run_id": f"{agent}-4", "agent": agent,
                                       "ts": known, "realized_pnl_bps": -80.0}])]
    if evidence == "bar":
        return [("/v1/market/bars", {"interval": "1h"}, _probe_bars(p, range(6, 7)))]
    return [("/v1/events", None, [_probe_signal(p, agent, i, "BTC")]) for i in range(5)]


def bench_latency(seconds: float, probes: int, clients: int, rate: float,
                  evidence: str = "pnl") -> dict[str, Any]:
    import multiprocessing as mp

    import httpx
    import uvicorn

    from alphatrace.policy import SEED_POLICY, shipped_policy
    from alphatrace.server.app import create_app
    from alphatrace.server.keys import create_key
    from alphatrace.server.pipeline import PipelineConfig
    from alphatrace.store import Store

    OUT.mkdir(exist_ok=True)
    db = OUT / "bench_pipeline_latency.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        if p.exists():
            p.unlink()
    with Store(db) as store:
        key = create_key(store, "bench", "ingest")["key"]
        store.con.execute(
            "INSERT INTO bars (symbol, interval_s, ts, open) SELECT 'BTCUSDT', 3600, "
            f"TIMESTAMP '{START}' + to_hours(h), 100 * pow(1.01, h) FROM range(2000) b(h)")
    # The seed's gates: the probe's 5th losing run is the evidence of a kill (the default
    # gates need 40 runs and would make each probe 8× longer).
    app = create_app(db, pipeline=PipelineConfig.load(shipped_policy(SEED_POLICY)),
                     warn_without_keys=False)
    from alphatrace.cli.server import tune_for_serving

    tune_for_serving(app)  # what `serve` sets: DuckDB threads, GIL switch interval, GC
    kills: dict[str, float] = {}
    passes: dict[str, tuple[float, Any]] = {}  # probe -> its pass's start (perf_counter), record
    epoch = time.time() - time.perf_counter()  # PassRecord times are time.time()

    # The probe waits on this, woken by `watch` after each pass: a thread polling with short
    # sleeps would take the GIL from the server's threads at every wake-up (each asks the
    # holder to drop it within the switch interval), slowing what it measures.
    seen = threading.Condition()

    def watch(store: Any) -> None:  # after the pipeline: its kill records are committed
        rec = app.state.pipeline.last
        if rec is not None:
            for d in rec.decisions:
                if d["action"] == "kill" and d["subject"] not in kills:
                    kills[d["subject"]] = time.perf_counter()
                    passes[d["subject"]] = (rec.started_at - epoch, rec)
        with seen:
            seen.notify_all()

    def wait_for(done: Callable[[], bool]) -> None:
        with seen:
            seen.wait_for(done, timeout=10)

    app.state.writer.after_round(watch)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    until = time.monotonic() + seconds
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(clients)
    load = pool.map_async(_load_client, [(url, key, rate / clients, until, i)
                                         for i in range(clients)])
    time.sleep(min(3.0, seconds / 5))  # the load is running
    latencies: list[float] = []
    parts: list[tuple[float, ...]] = []  # request, wait, pass, its reconcile, its gates (ms)
    hdr = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=hdr, timeout=30) as c:
        for p in range(probes):
            if time.monotonic() > until - 2:
                break
            agent = f"Probe{p}"
            if evidence != "signal":  # the runs before the evidence, judged before it comes
                before = app.state.pipeline.passes
                _probe_prepare(c, p, agent, evidence)
                wait_for(lambda b=before, a=agent: app.state.pipeline.passes >= b + 2 or a in kills)
                time.sleep(0.05)
                if agent in kills:
                    raise SystemExit(f"{agent} was killed before its evidence came")
            t0 = 0.0
            for req in _probe_evidence(p, agent, evidence):  # the last request is timed
                t0 = time.perf_counter()
                c.post(req[0], params=req[1], json=req[2]).raise_for_status()
            t1 = time.perf_counter()
            wait_for(lambda a=agent: a in kills)
            if agent in kills:
                began, rec = passes[agent]
                # to the kill record's commit: the end of the pass that appended it (the
                # hooks after the pipeline, this watch among them, run later)
                latencies.append((rec.caught_up_at - epoch - t0) * 1000.0)
                parts.append(((t1 - t0) * 1000.0, (began - t1) * 1000.0, rec.total_ms,
                              rec.reconcile_ms, rec.gates_ms))
            time.sleep(0.2)
    sent = sum(load.get())
    pool.close()
    health = httpx.get(url + "/healthz").json()
    server.should_exit = True
    thread.join(30)
    latencies.sort()

    def q(x: float) -> float:
        return latencies[min(len(latencies) - 1, int(x * len(latencies)))] if latencies else float("nan")

    def median(i: int) -> float | None:
        return statistics.median(p[i] for p in parts) if parts else None

    return {"probes": len(latencies), "missed": probes - len(latencies),
            "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": latencies[-1] if latencies else None,
            # where a probe's time went, medians: its request (round and commit), from the
            # commit to the start of the pass that killed (the pass in progress, the rest),
            # that pass (the watch hook runs right after it)
            "median_request_ms": median(0), "median_wait_ms": median(1),
            "median_pass_ms": median(2), "median_pass_reconcile_ms": median(3),
            "median_pass_gates_ms": median(4),
            "evidence": evidence,
            "load_events_per_s": sent / seconds, "pipeline": health["pipeline"]}


def bench_throughput(seconds: float, pipeline: bool, rate: float | None = None) -> dict[str, Any]:
    """bench_collector.py's run with `serve` started with the pipeline on (its default), or
    with `--no-pipeline` (the same load without it, for comparison in the same conditions).
    `rate`: events/s offered, paced (`bench_collector.client_proc`); None: a closed loop."""
    import tempfile

    import bench_collector
    from common import collector

    def serve(tmp: Path, *extra: str, **kw: Any) -> Any:
        return collector(tmp, *extra, *([] if pipeline else ["--no-pipeline"]), **kw)

    bench_collector.collector = serve  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return {"pipeline": pipeline,
                    **bench_collector.run_collector(Path(tmp), 8, 500, seconds, rate)}
    finally:
        bench_collector.collector = collector


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["round", "latency", "throughput"])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--probes", type=int, default=40)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--keep", action="store_true",
                    help="round: build the store once, start each run from a copy")
    ap.add_argument("--interval", type=int, default=60,
                    help="round: the bars' interval in seconds (a year of them per symbol)")
    ap.add_argument("--threads", type=int, default=None,
                    help="round: DuckDB threads for the run (default: what `serve` sets)")
    ap.add_argument("--quiet-rounds", type=int, default=3,
                    help="round: then rounds of telemetry alone (no decision can change)")
    ap.add_argument("--quiet-runs", type=int, default=1000,
                    help="round: telemetry-only runs in each of those rounds")
    ap.add_argument("--random-ids", action="store_true",
                    help="round: the telemetry-only runs' ids spread over the stored ones")
    ap.add_argument("--uuid-ids", action="store_true",
                    help="round: every run id a UUID's text, in no order (as SDKs and trace "
                         "ids make them), instead of sorted short ids")
    ap.add_argument("--open-rounds", type=int, default=0,
                    help="round: each round's runs exit at a bar this many rounds later "
                         "(their legs stay open until then, as live signals' do)")
    ap.add_argument("--quiet-held", action="store_true",
                    help="round: each telemetry-only round after the first also brings more "
                         "telemetry of the last one's runs (spans of one trace in two rounds: "
                         "runs the ledger holds)")
    ap.add_argument("--trace", action="store_true",
                    help="round: time each SQL statement of the passes (to stderr)")
    ap.add_argument("--phases", action="store_true",
                    help="round, with --trace: DuckDB's bind/optimise/plan times too (its "
                         "profiling inflates each statement's CPU)")
    ap.add_argument("--offered", type=float, default=None,
                    help="throughput: events/s the clients offer, paced, with latency counted "
                         "from each batch's due time (default: a closed loop)")
    ap.add_argument("--evidence", choices=["pnl", "bar", "signal"], default="pnl",
                    help="latency: what completes a probe's evidence (the timed request): its "
                         "fifth run's pnl event, the bar that prices its exit, or (before "
                         "2026-12-05) five signals sent one a request, priced by stored bars")
    ap.add_argument("--no-pipeline", action="store_true",
                    help="throughput: the same load against `serve --no-pipeline`")
    a = ap.parse_args()
    print(machine("duckdb"), file=sys.stderr)
    if a.part == "round":
        out = bench_round(a.runs, a.rounds, a.keep, a.trace, a.threads, a.interval,
                          a.quiet_rounds, a.quiet_runs, a.random_ids, a.phases, a.uuid_ids,
                          a.open_rounds, a.quiet_held)
    elif a.part == "latency":
        out = bench_latency(a.seconds, a.probes, a.clients, a.rate, a.evidence)
    else:
        out = bench_throughput(a.seconds, not a.no_pipeline, a.offered)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    # the `round` part runs the pipeline in this process: under the allocator serve runs with
    from alphatrace.server.allocator import run_under_mimalloc

    run_under_mimalloc()
    main()
