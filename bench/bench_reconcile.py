"""Reconcile speed: 1M signals against a year of 1-minute bars for 10 symbols (≈5.3M bars).

Builds a store in bench/out/ (bars, 8-hourly funding, 1M alpha events written straight into
the event tables: the same rows `ingest` would store), then measures, on the same data:

1. alphatrace: `reconcile(full=True)` in a fresh process (cold, as the CLI runs it). The
   pricing time is everything before the ledger build (market profile, symbol resolution,
   entry/exit, funding, writing 1M legs); the ledger build for the 1M runs is reported apart.
2. baseline: a pandas pipeline doing the same work with `merge_asof` (entry, exit, funding
   running sums at entry and exit) on DataFrames already in memory (loading not timed).

Both results are compared leg by leg (max |Δ paper bps|) so the ratio compares equal work.
A dated section is appended to bench/RESULTS.md in one write.

    python bench/bench_reconcile.py            # 1,000,000 signals, recorded
    python bench/bench_reconcile.py --quick    # 50,000 signals, 2 symbols, not recorded
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine, record

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
START = "2024-01-01"
MINUTES = 525_600
TARGET_S = 1.5
PANDAS_CPU = float("inf")


def build_store(db: Path, signals: int, symbols: int, minutes: int) -> None:
    """Bars, funding and alpha events, deterministic (seeded SQL random)."""
    from alphatrace.store import Store

    for p in (db, db.with_name(db.name + ".wal")):
        if p.exists():
            p.unlink()
    with Store(db) as store:
        con = store.con
        con.execute("SELECT setseed(0.42)")
        con.execute(f"""
INSERT INTO bars
SELECT 'SYM' || s || 'USDT', 60, TIMESTAMP '{START}' + to_minutes(i),
       (100 + 37 * s) * exp(0.05 * sin(i / 2000.0 + s) + 0.01 * sin(i / 37.0 + 3 * s)
                            + 0.002 * sin(i * 1.7 + s)),
       NULL, NULL, NULL, NULL
FROM range({symbols}) a(s), range({minutes}) b(i)""")
        con.execute(f"""
INSERT INTO funding
SELECT 'SYM' || s || 'USDT', TIMESTAMP '{START}' + to_hours(8 * k),
       0.0001 * sin(k / 5.0 + s) + 0.00005, (100 + 37 * s) * (1 + 0.01 * cos(k / 7.0))
FROM range({symbols}) a(s), range({minutes // 480}) b(k)""")
        con.execute(f"""
INSERT INTO alpha (event_id, run_id, agent, ts, symbol, direction, score_final, regime,
                   size_usd, horizon_s, strategy, file_id, line)
SELECT 'e' || i, 'r' || lpad(i::VARCHAR, 8, '0'), 'Agent' || (i % 12),
       TIMESTAMP '{START}' + to_microseconds(CAST(random() * {minutes} * 60e6 AS BIGINT)),
       CASE WHEN i % 3 = 0 THEN 'SYM' || (i % {symbols}) ELSE 'SYM' || (i % {symbols}) || 'USDT' END,
       CASE WHEN random() < 0.48 THEN 'LONG' WHEN random() < 0.92 THEN 'SHORT' ELSE 'FLAT' END,
       round(random() * 4 - 2, 2), 'TRENDING',
       CASE WHEN i % 5 = 0 THEN 2500 + 100 * (i % 7) END,
       [3600, 14400, 28800, 5400, 2220][1 + i % 5],
       'MOMENTUM', 1, i + 1
FROM range({signals}) r(i)""")
        con.execute("CHECKPOINT")


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(db: Path) -> None:
    """Cold reconcile in this process; prints phase times as JSON."""
    from alphatrace.ledger import policy
    from alphatrace.ledger.reconcile import reconcile
    from alphatrace.store import Store

    marks: list[tuple[str, float, float]] = []
    t0, c0 = time.perf_counter(), _cpu()
    with Store(db) as store:
        rep = reconcile(store, policy.load(), full=True,
                        step=lambda m: marks.append((m, time.perf_counter(), _cpu())))
        t_end, c_end = time.perf_counter(), _cpu()
    _, ledger_at, ledger_cpu = next(x for x in marks if x[0].startswith("building"))
    print(json.dumps({"pricing_s": ledger_at - t0, "ledger_s": t_end - ledger_at,
                      "total_s": t_end - t0, "pricing_cpu": ledger_cpu - c0,
                      "total_cpu": c_end - c0, "report": rep.to_dict()}))


def child_compute(db: Path) -> None:
    """Pricing only, as reconcile runs it, into an in-memory result (nothing persisted): the
    same work as the pandas pipeline, which also only produces a frame."""
    from alphatrace.ledger import policy
    from alphatrace.ledger.policy import params_sql
    from alphatrace.ledger.pricing import Relations, priced_legs_sql
    from alphatrace.ledger.reconcile import locate_exits, prepare_market, registered
    from alphatrace.market.symbols import resolution_sql
    from alphatrace.store import Store

    with Store(db, read_only=True) as store:
        con = store.con
        cfg = policy.load()
        t0, c0 = time.perf_counter(), _cpu()
        market = prepare_market(con, cfg)
        rel = Relations(todo="alpha")
        con.execute(f"CREATE TEMP TABLE _rc_params AS {params_sql(cfg.policy)}")
        con.execute("CREATE TEMP TABLE _rc_symmap AS "
                    + resolution_sql("(SELECT DISTINCT symbol FROM alpha)", cfg.aliases))
        with registered(con, "_rc_exits", locate_exits(con, rel, market)) as exits:
            con.execute("CREATE TEMP TABLE priced AS SELECT * FROM "
                        f"({priced_legs_sql(rel, cfg.hash, None, exits)})")
        t1, c1 = time.perf_counter(), _cpu()
        n = con.execute("SELECT count(*) FROM priced").fetchall()[0][0]
    print(json.dumps({"compute_s": t1 - t0, "compute_cpu": c1 - c0, "legs": n}))


def pandas_baseline(db: Path) -> tuple[float, Any]:
    """merge_asof pipeline over in-memory frames; returns (seconds, paper bps per event_id)."""
    import duckdb
    import numpy as np
    import pandas as pd

    con = duckdb.connect(str(db), read_only=True)
    bars = con.sql("SELECT symbol, ts, open FROM bars ORDER BY ts").df()
    fund = con.sql("SELECT symbol, ts, funding_rate * mark_price AS rm FROM funding "
                   "ORDER BY ts").df()
    sig = con.sql("SELECT event_id, ts, CASE WHEN symbol LIKE '%USDT' THEN symbol "
                  "ELSE symbol || 'USDT' END AS symbol, direction, "
                  "coalesce(size_usd, 10000) AS size_usd, horizon_s FROM alpha").df()
    con.close()
    t0, c0 = time.perf_counter(), _cpu()
    f = 5 / 1e4
    s = sig[sig["direction"] != "FLAT"].sort_values("ts")
    bars_e = bars.rename(columns={"ts": "entry_ts", "open": "entry_price"})
    e = pd.merge_asof(s, bars_e, left_on="ts", right_on="entry_ts", by="symbol",
                      direction="forward")
    e["target"] = e["entry_ts"] + pd.to_timedelta(e["horizon_s"], unit="s")
    e = e.dropna(subset=["entry_ts"]).sort_values("target")
    bars_x = bars.rename(columns={"ts": "exit_ts", "open": "exit_price"})
    x = pd.merge_asof(e, bars_x, left_on="target", right_on="exit_ts", by="symbol",
                      direction="forward").dropna(subset=["exit_ts"])
    fund = fund.assign(cum=fund.groupby("symbol")["rm"].cumsum())
    fc = fund[["symbol", "ts", "cum"]]
    x = x.sort_values("entry_ts")
    x = pd.merge_asof(x, fc.rename(columns={"ts": "fe_ts", "cum": "c_entry"}), left_on="entry_ts",
                      right_on="fe_ts", by="symbol", direction="backward")
    x = x.sort_values("exit_ts")
    x = pd.merge_asof(x, fc.rename(columns={"ts": "fx_ts", "cum": "c_exit"}), left_on="exit_ts",
                      right_on="fx_ts", by="symbol", direction="backward")
    d = np.where(x["direction"] == "LONG", 1.0, -1.0)
    en, ex = x["entry_price"].to_numpy(), x["exit_price"].to_numpy()
    price = np.where(d > 0, ((ex * (1 - f)) / (en * (1 + f)) - 1) * 1e4,
                     (1 - (ex * (1 + f)) / (en * (1 - f))) * 1e4)
    funding = -d * (x["c_exit"].fillna(0).to_numpy() - x["c_entry"].fillna(0).to_numpy()) / en * 1e4
    out = pd.Series(price + funding, index=x["event_id"].to_numpy())
    global PANDAS_CPU
    PANDAS_CPU = min(PANDAS_CPU, _cpu() - c0)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", type=Path)
    ap.add_argument("--child-compute", type=Path)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="keep an existing store file")
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return
    if a.child_compute:
        child_compute(a.child_compute)
        return
    signals, symbols, minutes = (50_000, 2, 60 * 24 * 60) if a.quick else (1_000_000, 10, MINUTES)
    OUT.mkdir(exist_ok=True)
    db = OUT / f"bench_reconcile_{signals}.duckdb"
    if not (a.reuse and db.exists()):
        t = time.perf_counter()
        build_store(db, signals, symbols, minutes)
        print(f"store built in {time.perf_counter() - t:.1f}s: {signals:,} signals, "
              f"{symbols * minutes:,} bars", file=sys.stderr)
    info = machine("duckdb", "numpy", "pandas")
    runs = []
    for _ in range(3):
        proc = subprocess.run([sys.executable, __file__, "--child", str(db)], check=True,
                              capture_output=True, text=True)
        runs.append(json.loads(proc.stdout))
    best = min(runs, key=lambda r: r["pricing_s"])
    computes = []
    for _ in range(3):
        proc = subprocess.run([sys.executable, __file__, "--child-compute", str(db)], check=True,
                              capture_output=True, text=True)
        computes.append(json.loads(proc.stdout))
    comp = min(computes, key=lambda r: r["compute_s"])
    pd_s, pd_bps = pandas_baseline(db)
    pd_s = min(pd_s, pandas_baseline(db)[0])

    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    ours = con.sql("SELECT event_id, paper_pnl_bps FROM legs WHERE status = 'realized' "
                   "AND direction <> 'FLAT'").df().set_index("event_id")["paper_pnl_bps"]
    con.close()
    common = ours.index.intersection(pd_bps.index)
    max_diff = float((ours.loc[common] - pd_bps.loc[common]).abs().max())
    ratio = pd_s / comp["compute_s"]
    all_runs = ", ".join(f"{r['pricing_s']:.2f}" for r in runs)
    rep = best["report"]
    lines = [
        f"## Reconcile (bench/bench_reconcile.py) — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {info}.",
        f"Input: {signals:,} alpha events (LONG/SHORT/FLAT, horizons 37m–8h, a third with bare "
        f"symbols resolved by prefix), {symbols} symbols × {minutes:,} one-minute bars "
        f"= {symbols * minutes:,} bars, 8-hourly funding. Fresh process per run, best of 3.",
        "",
        "| step | wall s | CPU s |",
        "|---|---:|---:|",
        f"| alphatrace pricing compute (as reconcile runs it, result in memory) "
        f"| {comp['compute_s']:.2f} | {comp['compute_cpu']:.2f} |",
        f"| alphatrace pricing (profile, resolve, entry/exit, funding, write {rep['legs']:,} legs)"
        f" | {best['pricing_s']:.2f} | {best['pricing_cpu']:.2f} |",
        f"| alphatrace ledger build ({rep['runs']:,} runs) | {best['ledger_s']:.2f} | |",
        f"| alphatrace reconcile total | {best['total_s']:.2f} | {best['total_cpu']:.2f} |",
        f"| pandas merge_asof pipeline (same legs, frames preloaded, nothing written) | {pd_s:.2f} "
        f"| {PANDAS_CPU:.2f} |",
        "",
        f"All runs (pricing s): {all_runs}. "
        f"Legs: {rep['realized']:,} realized, {rep['open']:,} open, {rep['unpriced']:,} unpriced."
        f" Agreement with the baseline on {len(common):,} legs: max |Δ| = {max_diff:.2e} bps.",
        f"pandas / alphatrace pricing compute: **{ratio:.2f}×**. Target ≤ {TARGET_S} s "
        f"(compute): **{'yes' if comp['compute_s'] <= TARGET_S else 'no'}**; with the legs "
        f"written: **{'yes' if best['pricing_s'] <= TARGET_S else 'no'}**; faster than pandas: "
        f"**{'yes' if ratio > 1 else 'no'}**.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not (a.quick or a.no_record):
        record(text)


if __name__ == "__main__":
    main()
