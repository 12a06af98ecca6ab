"""Governance benchmark: gates for 10,000 agents over 1M runs (target ≤ 2 s) and confidence
over 1M runs (target ≤ 1 s), each against a baseline measured in the same run: one grouped
scan of the same ledger (`SELECT agent, sum(pnl) ... GROUP BY agent`), the least any per-agent
computation over it can cost.

    .venv/bin/python bench/bench_governance.py [--runs 1000000] [--agents 10000] [--append]

`--catchup` times instead a first catch-up (`gates evaluate` on a store with history and no
progress mark: every point of every subject) under the shipped default gates, on agents with
Zipf-sized histories, step by step: the read of the runs (`replay.window_runs`), points and
window metrics with the rules (`replay.assess_runs`), the lifecycle walk (`replay.walk`) and
appending the records (`journal.append`), each timed inside one evaluation. Run it from a
checkout of another commit (PYTHONPATH=<checkout>/src) to compare the two in the same minutes.

    .venv/bin/python bench/bench_governance.py --catchup --runs 20000 --agents 200

--append adds the result section to bench/RESULTS.md (one write, after re-reading the file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import alphatrace as at
from alphatrace.governance import backtest, confidence, journal, replay
from alphatrace.governance.gates import decide
from alphatrace.governance.policy import load_governance
from alphatrace.policy import DEFAULT_POLICY, SEED_POLICY, Policy, shipped_policy
from common import machine, record

ROOT = Path(__file__).resolve().parents[1]


def build(db: at.Database, runs: int, agents: int, strategies: int, seed: int = 7,
          zipf: float | None = None) -> None:
    """A synthetic ledger: agents with their own edge and error rate, runs spread over a year;
    with `zipf`, agent k (from 1) has a share of the runs ∝ 1 / k^zipf (else all alike)."""
    rng = np.random.default_rng(seed)
    if zipf is None:
        agent = rng.integers(0, agents, runs)
    else:
        w = 1.0 / np.arange(1, agents + 1) ** zipf
        agent = rng.choice(agents, runs, p=w / w.sum())
    edge = rng.normal(0.5, 3.0, agents)[agent]
    pnl = np.round(rng.normal(edge, 25.0) * 4) / 4
    err_p = rng.uniform(0, 0.15, agents)[agent]
    secs = np.sort(rng.integers(0, 365 * 86400, runs))
    t0 = np.datetime64("2025-01-01T00:00:00", "us")
    tbl = pa.table({
        "run_id": pa.array([f"run{i:08d}" for i in range(runs)]),
        "agent": pa.array([f"agent{a:05d}" for a in agent.tolist()]),
        "strategy": pa.array([f"strat{a % strategies:02d}" for a in agent.tolist()]),
        "ts": pa.array(t0 + secs.astype("timedelta64[s]")),
        "realized_pnl_bps": pa.array(pnl),
        "errors": pa.array((rng.uniform(0, 1, runs) < err_p).astype(np.int64)),
        "latency_ms": pa.array(np.round(rng.lognormal(6.2, 0.4, runs))),
        "cost_usd": pa.array(np.round(rng.uniform(0.001, 0.05, runs), 4)),
        "pnl_usd": pa.array(pnl),
        "net_usd": pa.array(pnl - 0.02),
        "status": pa.array(["realized"] * runs),
    })
    db.con.register("_bench_rows", tbl)
    db.con.execute("INSERT INTO ledger BY NAME SELECT * FROM _bench_rows")
    db.con.unregister("_bench_rows")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def catchup(db: at.Database, repeat: int) -> list[tuple[str, float, float | None]]:
    """A first catch-up under the default gates (median of `repeat`), split by timing the
    steps inside the one evaluation: each step's function is wrapped with a timer."""
    con = db.con
    gp = load_governance(shipped_policy(DEFAULT_POLICY))
    spent: dict[str, float] = {}
    sizes: dict[str, int] = {}

    def clock(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            out = fn(*a, **k)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
            sizes[name] = out.num_rows if isinstance(out, pa.Table) else len(out)
            return out
        return wrapped

    def walk(*a: Any, **k: Any) -> Any:  # a generator: time each step of it
        steps = orig["walk"](*a, **k)
        while True:
            t = time.perf_counter()
            try:
                step = next(steps)
            except StopIteration:
                return
            finally:
                spent["walk"] = spent.get("walk", 0.0) + time.perf_counter() - t
            yield step

    orig = {"window_runs": replay.window_runs, "assess_runs": replay.assess_runs,
            "walk": replay.walk, "append": journal.append}
    replay.window_runs = clock("window_runs", orig["window_runs"])
    replay.assess_runs = clock("assess_runs", orig["assess_runs"])
    replay.walk = walk
    journal.append = clock("append", orig["append"])
    runs: list[dict[str, float]] = []
    try:
        for _ in range(repeat):
            con.execute("DELETE FROM decisions; DELETE FROM decision_head; "
                        "DELETE FROM gate_progress")
            spent.clear()
            t = time.perf_counter()
            db.gates.evaluate(gp)
            runs.append({**spent, "total": time.perf_counter() - t})
    finally:
        replay.window_runs, replay.assess_runs = orig["window_runs"], orig["assess_runs"]
        replay.walk, journal.append = orig["walk"], orig["append"]

    def med(k: str) -> float:
        return statistics.median(r.get(k, 0.0) for r in runs)

    steps = ("window_runs", "assess_runs", "walk", "append")
    return [(f"read the runs ({sizes.get('window_runs', 0):,} subject-runs)", med("window_runs"), None),
            (f"points, window metrics, rules ({sizes.get('assess_runs', 0):,} points)",
             med("assess_runs"), None),
            ("lifecycle walk", med("walk"), None),
            (f"append {sizes.get('append', 0):,} records", med("append"), None),
            ("the rest (progress marks, log reads)",
             statistics.median(r["total"] - sum(r.get(k, 0.0) for k in steps) for r in runs), None),
            ("first `gates evaluate` (catch-up), total", med("total"), None)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--strategies", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backtest", action="store_true", help="also time a full backtest")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--catchup", action="store_true",
                    help="time a first catch-up under the default gates (Zipf-sized histories)")
    ap.add_argument("--zipf", type=float, default=1.1, help="--catchup: the histories' exponent")
    args = ap.parse_args()
    if args.catchup:
        return main_catchup(args)

    info = machine("duckdb", "numpy", "pyarrow")
    db = at.connect(":memory:")
    t = time.perf_counter()
    build(db, args.runs, args.agents, args.strategies)
    print(f"built {args.runs:,} runs / {args.agents:,} agents in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)
    con = db.con
    gp = load_governance(shipped_policy(SEED_POLICY))  # as earlier runs (comparable numbers)
    clamped = load_governance(Policy({"confidence": {"recovery": 1.02, "floor": 0.25}}, "<bench>"))
    as_of = con.execute("SELECT max(ts) FROM ledger").fetchall()[0][0]

    base, _ = timed(lambda: con.sql("SELECT agent, sum(realized_pnl_bps) FROM ledger "
                                    "GROUP BY agent").to_arrow_table(), args.repeat)
    rows: list[tuple[str, float, float | None]] = [("baseline: grouped scan of the ledger", base, None)]

    dec, ds = timed(lambda: decide(con, gp, as_of, {}), args.repeat)
    rows.append((f"gates decide ({len(ds):,} subjects)", dec, 2.0))

    def evaluate_and_record() -> list[dict[str, Any]]:
        con.execute("DELETE FROM decisions; DELETE FROM decision_head")
        return db.gates.evaluate(gp, once=True)

    ev, recs = timed(evaluate_and_record, args.repeat)
    rows.append((f"gates evaluate + append {len(recs):,} chained records", ev, 2.0))

    def conf() -> pa.Table:
        return confidence.compute(con, gp).summary(gp.confidence.warn_below)

    cf, summ = timed(conf, args.repeat)
    rows.append((f"confidence, seed rules ({summ.num_rows:,} agents)", cf, 1.0))
    cc, _ = timed(lambda: confidence.compute(con, clamped).summary(None), args.repeat)
    rows.append(("confidence, recovery + floor (sequential pass)", cc, None))
    vf, res = timed(lambda: db.audit_verify(), 1)
    assert res["ok"], res["problems"][:3]
    rows.append((f"audit verify ({res['records']:,} records, re-computed)", vf, None))
    if args.backtest:
        bt, _ = timed(lambda: backtest.run(con, gp), 1)
        rows.append(("gates backtest (every run of every subject)", bt, None))

    head = (f"## Governance gates and confidence (bench/bench_governance.py) — "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {info}.\n"
            f"Input: synthetic ledger of {args.runs:,} realized runs, {args.agents:,} agents in "
            f"{args.strategies} strategy classes, one year (seed 7); the seed's gates (policies/seed.yaml: "
            f"window 20, min_runs 5). Median of {args.repeat} runs per step (verify and backtest: 1). "
            f"Baseline: one grouped scan of the same ledger "
            f"(`SELECT agent, sum(realized_pnl_bps) ... GROUP BY agent`).")
    lines = [head, "", "| step | median s | × baseline | target |", "|---|---:|---:|---|"]
    for name, secs, target in rows:
        ok = "" if target is None else (f"≤ {target:g} s ✓" if secs <= target else f"≤ {target:g} s ✗")
        lines.append(f"| {name} | {secs:.3f} | {secs / base:.1f} | {ok} |")
    text = "\n".join(lines)
    print(text)
    if args.append:
        record(text)
    db.close()
    return 0


def main_catchup(args: argparse.Namespace) -> int:
    info = machine("duckdb", "numpy", "pyarrow")
    db = at.connect(":memory:")
    build(db, args.runs, args.agents, args.strategies, zipf=args.zipf)
    rows = catchup(db, args.repeat)
    head = (f"## First catch-up, default gates (bench/bench_governance.py --catchup) — "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {info}.\n"
            f"Input: synthetic ledger of {args.runs:,} realized runs, {args.agents:,} agents "
            f"(Zipf {args.zipf:g} history sizes) in {args.strategies} strategy classes, one "
            f"year (seed 7); policies/default.yaml gates. Median of {args.repeat} runs per step.")
    lines = [head, "", "| step | median s |", "|---|---:|"]
    lines += [f"| {name} | {secs:.3f} |" for name, secs, _ in rows]
    text = "\n".join(lines)
    print(text)
    if args.append:
        record(text)
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
