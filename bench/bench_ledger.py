"""Ledger build end to end: 1M runs (3M events) from an ingested store, never reconciled before.

The store holds, per run, one alpha event, one telemetry record and one pnl event (two thirds
run-level, one third per symbol, a tenth of them with a second revision on top, so ≈3.1M
events), written straight into the event tables (the rows `ingest` stores), plus a year of
1-minute bars for 10 symbols and 8-hourly funding (bench_reconcile's market). Measured in a
fresh process, as the CLI runs it: `reconcile(full=True)` (pricing + the 1M-row ledger), then
reading the ledger back as Arrow (`Database.ledger()`), then the per-agent summary.

Baseline in the same run: pandas building the same per-run table from the same rows already
in memory (groupby/merge; the pricing of legs is taken from alphatrace's legs table, so the
baseline only does the ledger step, and loading is not timed).

    python bench/bench_ledger.py            # 1,000,000 runs, recorded in bench/RESULTS.md
    python bench/bench_ledger.py --quick    # 50,000 runs, not recorded
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_reconcile  # noqa: E402
from common import machine, record  # noqa: E402

OUT = HERE / "out"
TARGET_S = 5.0


def build_store(db: Path, runs: int, symbols: int, minutes: int) -> None:
    from alphatrace.store import Store

    bench_reconcile.build_store(db, runs, symbols, minutes)
    with Store(db) as store:
        con = store.con
        con.execute("SELECT setseed(0.17)")
        con.execute("""
INSERT INTO telemetry (event_id, run_id, agent, ts, latency_ms, tokens_in, tokens_out, cost_usd,
                       errors, model, strategy, file_id, line)
SELECT 't' || substr(a.event_id, 2), a.run_id, a.agent, a.ts - INTERVAL 2 SECOND,
       round(300 + random() * 600, 1), 1500 + (a.line % 700), 300 + (a.line % 200),
       round(0.002 + random() * 0.01, 6), CASE WHEN random() < 0.02 THEN 1 ELSE 0 END,
       ['gpt-4o', 'claude-3-5-sonnet', 'gpt-4o-mini'][1 + a.line % 3], a.strategy, 2, a.line
FROM alpha a""")
        con.execute("""
INSERT INTO pnl (event_id, run_id, realized_pnl_bps, ts, agent, symbol, revision, file_id, line)
SELECT 'p' || substr(a.event_id, 2), a.run_id, round(random() * 120 - 60, 2),
       a.ts + INTERVAL 8 HOUR, a.agent, CASE WHEN a.line % 3 = 0 THEN a.symbol END, 0, 3, a.line
FROM alpha a""")
        con.execute("""
INSERT INTO pnl (event_id, run_id, realized_pnl_bps, ts, agent, symbol, revision, file_id, line)
SELECT 'q' || substr(a.event_id, 2), a.run_id, round(random() * 120 - 60, 2),
       a.ts + INTERVAL 9 HOUR, a.agent, CASE WHEN a.line % 3 = 0 THEN a.symbol END, 1, 4, a.line
FROM alpha a WHERE a.line % 10 = 0""")
        con.execute("CHECKPOINT")


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(db: Path) -> None:
    import alphatrace
    import alphatrace.api  # imports every area (~2 s): not the ledger's work

    t0, c0 = time.perf_counter(), _cpu()
    with alphatrace.connect(db) as d:
        marks: list[tuple[str, float]] = []
        rep = d.reconcile(full=True, step=lambda m: marks.append((m, time.perf_counter())))
        t1, c1 = time.perf_counter(), _cpu()
        res = d.ledger()
        t2 = time.perf_counter()
        agents = d.agents()
        t3 = time.perf_counter()
    ledger_at = next(t for m, t in marks if m.startswith("building"))
    out = {"reconcile_s": t1 - t0, "reconcile_cpu": c1 - c0, "pricing_s": ledger_at - t0,
           "ledger_build_s": t1 - ledger_at,
           "read_s": t2 - t1, "agents_s": t3 - t2, "rows": len(res), "agents": len(agents),
           "report": rep.to_dict()}
    print(json.dumps(out))


def pandas_baseline(db: Path) -> float:
    """The per-run table from legs, telemetry and pnl with pandas (single-leg shortcut off)."""
    import duckdb
    import numpy as np

    con = duckdb.connect(str(db), read_only=True)
    legs = con.sql("SELECT run_id, agent, strategy, ts, coalesce(market_symbol, symbol) AS sym, "
                   "direction, size_usd, gross_bps, fee_bps, funding_bps, paper_pnl_bps, "
                   "pnl_usd, status FROM legs").df()
    tel = con.sql("SELECT run_id, agent, ts, latency_ms, tokens_in, tokens_out, cost_usd, "
                  "errors, model FROM telemetry").df()
    pnl = con.sql("SELECT run_id, symbol, realized_pnl_bps, revision, ts, file_id, line "
                  "FROM pnl").df()
    con.close()
    t0 = time.perf_counter()
    w = legs["size_usd"].where(legs["direction"] != "FLAT")
    legs = legs.assign(w=w, wp=w * legs["paper_pnl_bps"], unpriced=legs["status"] == "unpriced")
    lr = legs.groupby("run_id").agg(agent=("agent", "first"), ts=("ts", "min"),
                                    symbols=("sym", "first"), w=("w", "sum"),
                                    wp=("wp", "sum"), usd=("pnl_usd", "sum"),
                                    unpriced=("unpriced", "max"))
    tr = tel.groupby("run_id").agg(latency_ms=("latency_ms", "sum"), cost_usd=("cost_usd", "sum"),
                                   tokens_in=("tokens_in", "sum"), errors=("errors", "sum"))
    latest = pnl.sort_values(["run_id", "revision", "ts", "file_id", "line"]).drop_duplicates(
        ["run_id", "symbol"], keep="last")
    pr = latest.groupby("run_id")["realized_pnl_bps"].mean().rename("external")
    out = lr.join(tr, how="outer").join(pr, how="outer")
    out["paper"] = np.where(out["w"] > 0, out["wp"] / out["w"], 0.0)
    out["realized"] = out["external"].fillna(out["paper"])
    out["net_usd"] = out["usd"] - out["cost_usd"].fillna(0)
    out = out.reset_index().sort_values(["ts", "run_id"])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", type=Path)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="keep an existing store file")
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return
    runs, symbols, minutes = (50_000, 2, 60 * 24 * 60) if a.quick else (
        1_000_000, 10, bench_reconcile.MINUTES)
    OUT.mkdir(exist_ok=True)
    db = OUT / f"bench_ledger_{runs}.duckdb"
    if not (a.reuse and db.exists()):
        t = time.perf_counter()
        build_store(db, runs, symbols, minutes)
        print(f"store built in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    info = machine("duckdb", "pandas")
    results = []
    for _ in range(3):
        proc = subprocess.run([sys.executable, __file__, "--child", str(db)], check=True,
                              capture_output=True, text=True)
        results.append(json.loads(proc.stdout))
    best = min(results, key=lambda r: r["reconcile_s"])
    base = min(pandas_baseline(db) for _ in range(2))
    rep = best["report"]
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    events = sum(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                 for t in ("alpha", "telemetry", "pnl"))
    con.close()
    all_runs = ", ".join(f"{r['reconcile_s']:.2f}" for r in results)
    lines = [
        f"## Ledger build (bench/bench_ledger.py) — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {info}.",
        f"Input: {rep['runs']:,} runs from {events:,} events (alpha, telemetry, pnl with "
        f"revisions) in the store, {symbols * minutes:,} one-minute bars, never reconciled. "
        "Fresh process per run, best of 3.",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| reconcile end to end (pricing {rep['legs']:,} legs + ledger of {rep['runs']:,} runs)"
        f" | {best['reconcile_s']:.2f} (CPU {best['reconcile_cpu']:.2f}) |",
        f"| … of which pricing | {best['pricing_s']:.2f} |",
        f"| … of which ledger build | {best['ledger_build_s']:.2f} |",
        f"| read the ledger as Arrow (`db.ledger()`, {best['rows']:,} rows) | {best['read_s']:.2f} |",
        f"| per-agent summary (`db.agents()`) | {best['agents_s']:.2f} |",
        f"| pandas groupby/merge ledger step (rows in memory, not timed to load) | {base:.2f} |",
        "",
        f"All runs (reconcile s): {all_runs}. pandas / alphatrace ledger build: "
        f"**{base / best['ledger_build_s']:.1f}×**. Target end to end ≤ {TARGET_S} s: "
        f"**{'yes' if best['reconcile_s'] <= TARGET_S else 'no'}**.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not (a.quick or a.no_record):
        record(text)


if __name__ == "__main__":
    main()
