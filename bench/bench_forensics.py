"""Slice search speed and peak memory of alphatrace forensics against the `sliceline` package.

Data: N synthetic runs × 12 features (7 numeric, 5 categorical) with a planted loss cluster
(alphatrace.forensics.synthetic, seed 0). For the SliceLine comparison numeric features are
binned into deciles, so both engines see the same binned matrix; the error is the per-run
loss max(0, −pnl_bps). The loss-cluster runs use the raw values (thresholds at the policy's 5%
quantile grid), as `alphatrace forensics` does. Each method runs in its own process (peak RSS from os.wait4):

1. sliceline: `Slicefinder(alpha=0.95, k=10, max_l=2, min_sup=S).fit(binned, loss)`;
2. alphatrace error mode, same binned data and parameters (equality predicates, SliceLine's
   score and pruning; `reference=True` so it must return sliceline's exact top-K);
3. alphatrace loss clusters, depth 2: thresholds on the raw numeric values, Welch tests of
   every evaluated slice, BH, redundancy filter (the full `forensics` computation);
4. the same at depth 3.

Seconds exclude interpreter start, imports and loading the prepared arrays; the ratio compares
methods of the same run. A dated section is appended to bench/RESULTS.md in one write.

    python bench/bench_forensics.py              # 200,000 and 1,000,000 runs, recorded
    python bench/bench_forensics.py --quick      # 50,000 runs, not recorded
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import machine, record

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
NUMERIC = ["latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "score_final", "f0"]
CATEGORICAL = ["symbols", "direction", "regime", "model", "hour"]
MIN_SUP = 100
SLICELINE_CAP_GB = 12
SIZES = (200_000, 1_000_000)
METHODS = {
    "sliceline": "sliceline 0.3 Slicefinder, depth 2 (baseline)",
    "error_mode": "alphatrace slice search, error mode, depth 2",
    "clusters2": "alphatrace loss clusters (thresholds + tests + BH + redundancy), depth 2",
    "clusters3": "alphatrace loss clusters, depth 3",
}


def prepare(n: int) -> Path:
    """Synthetic runs → bench/out/forensics_{n}.npz (raw numerics, codes, binned matrix, y)."""
    from alphatrace.forensics import synthetic as syn
    from alphatrace.forensics.slices import Categorical, numeric_feature

    path = OUT / f"forensics_{n}_v2.npz"
    if path.exists():
        return path
    OUT.mkdir(exist_ok=True)
    d = syn.runs(n, 0, extra_numeric=1)
    deciles = [round(0.1 * i, 1) for i in range(1, 10)]
    arrays: dict[str, Any] = {"y": np.asarray(d["y"], np.float64)}
    binned = []
    for name in NUMERIC:
        x = np.asarray(d[name], np.float64)
        arrays[f"num_{name}"] = x
        f = numeric_feature(name, x, deciles)
        assert f is not None
        binned.append(np.asarray(f.codes, np.int64) + 1)  # 1-based bins
    for name in CATEGORICAL:
        cat = Categorical.from_values(d[name])
        arrays[f"cat_{name}"] = cat.codes
        arrays[f"labels_{name}"] = np.asarray([str(v) for v in cat.labels])
        binned.append(cat.codes + 1)
    arrays["binned"] = np.stack(binned, axis=1).astype(np.int32)
    np.savez(path, **arrays)
    return path


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(method: str, file: Path) -> dict[str, Any]:
    data = np.load(file)
    y = data["y"]
    loss = np.maximum(0.0, -y)
    binned = data["binned"]
    before = _vm_hwm_mb()
    if method == "sliceline":
        import resource
        import warnings

        from sliceline.slicefinder import Slicefinder

        # its sparse products grow with rows × candidates (3.5 GB at 200k rows here): cap the
        # address space so a shared machine's other processes are never pushed out
        cap = SLICELINE_CAP_GB * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            try:
                sf = Slicefinder(alpha=0.95, k=10, max_l=2, min_sup=MIN_SUP, verbose=False).fit(binned, loss)
            except MemoryError:
                return {"seconds": time.perf_counter() - t0, "imports_rss_mb": before,
                        "failed": f"MemoryError within a {SLICELINE_CAP_GB} GB address-space cap"}
            secs = time.perf_counter() - t0
        top = [[None if v is None else int(v) for v in row] for row in sf.top_slices_]
        scores = [s["slice_score"] for s in sf.top_slices_statistics_]
        return {"seconds": secs, "imports_rss_mb": before, "top": top, "scores": scores}
    if method == "error_mode":
        from alphatrace.forensics.slices import SearchParams, equality_features, search

        t0 = time.perf_counter()
        feats = equality_features(binned)
        t = search(feats, loss, SearchParams(alpha=0.95, k=10, max_level=2, min_support=MIN_SUP,
                                             reference=True))
        secs = time.perf_counter() - t0
        top = []
        for i in t.top.tolist():
            row: list[int | None] = [None] * binned.shape[1]
            for f, p in zip(t.feats[i].tolist(), t.preds[i].tolist(), strict=True):
                if f >= 0:
                    row[f] = int(feats[f].predicates[p].value)
            top.append(row)
        return {"seconds": secs, "imports_rss_mb": before, "top": top,
                "scores": t.score[t.top].tolist(), "slices_evaluated": len(t)}
    if method in ("clusters2", "clusters3"):
        from alphatrace.forensics import clusters as cl
        from alphatrace.forensics.config import ClustersConfig
        from alphatrace.forensics.slices import Categorical

        cols: dict[str, Any] = {n: data[f"num_{n}"] for n in NUMERIC}
        for n in CATEGORICAL:
            cols[n] = Categorical(data[f"cat_{n}"].astype(np.int64), tuple(data[f"labels_{n}"].tolist()))
        run_ids = [f"r{i:07d}" for i in range(y.size)]
        t0 = time.perf_counter()
        res = cl.find(cols, NUMERIC, y, run_ids, ClustersConfig(), depth=2 if method == "clusters2" else 3)
        secs = time.perf_counter() - t0
        return {"seconds": secs, "imports_rss_mb": before, "slices_tested": res.tested,
                "clusters": [c.sentence for c in res.clusters]}
    raise SystemExit(f"unknown method {method}")


def measure(method: str, file: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--file", str(file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{method} failed")
    res: dict[str, Any] = json.loads(out)
    res["peak_rss_mb"] = usage.ru_maxrss / 1024
    return res


def section(by_size: dict[int, dict[str, dict[str, Any]]], m: str, when: dt.datetime) -> str:
    def ok(b: bool) -> str:
        return "yes" if b else "**no**"

    lines = [
        f"## Forensics slice search (bench/bench_forensics.py) — {when:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m} (sliceline without numba).",
        "Input: synthetic runs × 12 features (7 numeric, 5 categorical; planted loss cluster). "
        "SliceLine rows: numeric features binned into deciles, error = max(0, −pnl_bps), alpha 0.95, "
        f"K 10, min support {MIN_SUP}, both engines on the same binned matrix. Cluster rows: raw values, "
        "thresholds at the 5% quantile grid, the full `forensics` computation. Each method in its own "
        "process; seconds exclude start-up, imports and loading the prepared arrays; peak RSS "
        f"includes them. sliceline runs under a {SLICELINE_CAP_GB} GB address-space cap.",
        "",
        "| runs | method | seconds | peak RSS MB | result |",
        "|---:|---|---:|---:|---|",
    ]
    verdict = []
    for n, rows in by_size.items():
        sl, em, c2, c3 = rows["sliceline"], rows["error_mode"], rows["clusters2"], rows["clusters3"]
        if "failed" in sl:
            lines.append(f"| {n:,} | {METHODS['sliceline']} | ({sl['seconds']:.1f}) | {sl['peak_rss_mb']:,.0f} "
                         f"| failed: {sl['failed']} |")
            same = "n/a"
        else:
            lines.append(f"| {n:,} | {METHODS['sliceline']} | {sl['seconds']:.2f} | {sl['peak_rss_mb']:,.0f} "
                         f"| top-{len(sl['top'])} |")
            same = ok(em["top"] == sl["top"] and bool(np.allclose(em["scores"], sl["scores"])))
        lines.append(f"| {n:,} | {METHODS['error_mode']} | {em['seconds']:.2f} | {em['peak_rss_mb']:,.0f} | "
                     f"same top-K and scores as sliceline: {same}; {em['slices_evaluated']:,} slices evaluated |")
        for key, r in (("clusters2", c2), ("clusters3", c3)):
            first = r["clusters"][0] if r["clusters"] else "—"
            lines.append(f"| {n:,} | {METHODS[key]} | {r['seconds']:.2f} | {r['peak_rss_mb']:,.0f} | "
                         f"{r['slices_tested']:,} slices tested; rank 1: {first} |")
        if "failed" not in sl:
            verdict.append(f"at {n:,} runs sliceline / alphatrace error mode **{sl['seconds'] / em['seconds']:.1f}×**, "
                           f"sliceline / full depth-2 clusters **{sl['seconds'] / c2['seconds']:.1f}×**")
        else:
            verdict.append(f"at {n:,} runs sliceline did not finish ({sl['failed']}); alphatrace error mode "
                           f"{em['seconds']:.2f} s, full depth-2 clusters {c2['seconds']:.2f} s")
    big = by_size[max(by_size)]
    ratios_ok = all("failed" in r["sliceline"] or r["sliceline"]["seconds"] / r["clusters2"]["seconds"] >= 5
                    for r in by_size.values())
    lines += [
        "",
        "; ".join(verdict) + ".",
        f"Targets at {max(by_size):,} runs: depth 2 ≤ 2 s: {ok(big['clusters2']['seconds'] <= 2.0)}; "
        f"≥ 5× sliceline (where it finishes): {ok(ratios_ok)}; depth 3 ≤ 10 s: "
        f"{ok(big['clusters3']['seconds'] <= 10.0)}; memory ≤ 1 GB: "
        f"{ok(max(big[k]['peak_rss_mb'] for k in ('error_mode', 'clusters2', 'clusters3')) <= 1024)}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="50,000 runs only, not recorded")
    ap.add_argument("--child")
    ap.add_argument("--file", type=Path)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.file)))
        return
    sizes = (50_000,) if a.quick else SIZES
    m = machine("numpy", "scipy", "sliceline")
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for n in sizes:
        file = prepare(n)
        rows = {}
        for method in METHODS:
            rows[method] = measure(method, file)
            r = rows[method]
            print(f"{n:,} {METHODS[method]}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:,.0f} MB"
                  + (f" ({r['failed']})" if "failed" in r else ""), file=sys.stderr)
        by_size[n] = rows
    text = section(by_size, m, dt.datetime.now(dt.UTC))
    print(text)
    if not a.quick:
        record(text)


if __name__ == "__main__":
    main()
