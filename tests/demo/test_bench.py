"""The benchmark generator and harness (bench/ is scripts, not a package: loaded by path)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from alphatrace.store import Store
from alphatrace.store.ingest import ingest_paths

pytestmark = pytest.mark.slow  # see `make test-fast`

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load("gen_events")
sys.path.insert(0, str(BENCH))  # the scripts import their shared module as `common`
common = _load("common")
harness = _load("bench_ingest")


def test_generated_lines_are_valid_events_in_run_order(tmp_path: Path, store: Store,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen, "CHUNK_RUNS", 64)  # several chunks, the boundary included
    path = tmp_path / "e.jsonl"
    events, nbytes = gen.generate(path, 200, seed=3)
    raw = path.read_bytes()
    assert events == 600 and nbytes == len(raw) and raw.endswith(b"\n")
    objs = [json.loads(line) for line in raw.decode().splitlines()]
    assert len(objs) == 600
    assert [o["type"] for o in objs[:6]] == ["telemetry", "alpha", "pnl"] * 2
    assert [o["run_id"] for o in objs[::3]] == [f"r{i:010d}" for i in range(200)]
    assert all(o["run_id"] == objs[3 * (i // 3)]["run_id"] for i, o in enumerate(objs))
    times = [o["ts"] for o in objs[::3]]
    assert times == sorted(times)  # time-ordered across chunk boundaries
    for t in objs[::3]:
        i = gen.MODELS.index(t["model"])
        want = (t["tokens_in"] * gen.PRICE_IN[i] + t["tokens_out"] * gen.PRICE_OUT[i]) / 1e6
        assert t["cost_usd"] == pytest.approx(want, abs=5.01e-7)
    report = ingest_paths(store, [str(path)])
    assert (report.accepted, report.duplicates, report.quarantined) == (600, 0, 0)
    assert report.by_kind == {"telemetry": 200, "alpha": 200, "pnl": 200}


def test_generation_is_deterministic(tmp_path: Path) -> None:
    gen.generate(tmp_path / "a.jsonl", 300, seed=1)
    gen.generate(tmp_path / "b.jsonl", 300, seed=1)
    gen.generate(tmp_path / "c.jsonl", 300, seed=2)
    a = (tmp_path / "a.jsonl").read_bytes()
    assert a == (tmp_path / "b.jsonl").read_bytes()
    assert a != (tmp_path / "c.jsonl").read_bytes()


def _rows(a_s: float, p_s: float, rss: float) -> dict[str, dict[str, object]]:
    base = {"peak_rss_mb": rss, "imports_rss_mb": 90.0, "cpu_seconds": 3.0}
    return {
        "alphatrace": harness._row("alphatrace", {**base, "seconds": a_s, "result": {"accepted": 3_000_000}}, 3_000_000, 600_000_000),
        "pandas": harness._row("pandas", {**base, "seconds": p_s, "result": {"rows": 3_000_000}}, 3_000_000, 600_000_000),
        "reingest": harness._row("reingest", {**base, "seconds": 2.0, "result": {"duplicates": 3_000_000}}, 3_000_000, 600_000_000),
        "duckdb": harness._row("duckdb", {**base, "seconds": 1.5, "result": {"rows": 3_000_000}}, 3_000_000, 600_000_000),
    }


def test_section_reports_rates_ratio_and_targets() -> None:
    m = "2 CPUs (Test CPU), 24.0 GiB RAM, Linux; Python 3.11.7"
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    # 3M events in 2.5 s = 1,200,000/s; baseline 30 s = 100,000/s; ratio 12.0.
    text = harness.section(_rows(2.5, 30.0, 900.0), m, 1_000_000, 3_000_000, 600_000_000, when)
    assert text.startswith("## Ingest throughput (bench/bench_ingest.py) — 2026-01-02 03:04 UTC")
    assert "Machine: 2 CPUs (Test CPU), 24.0 GiB RAM, Linux; Python 3.11.7 (a busy" in text
    assert ("| alphatrace ingest, fresh store | 2.50 | 3.00 | 1,200,000 | 240.0 | 900 | 90 "
            "| accepted 3,000,000 |") in text
    assert "| pandas read_json + DuckDB insert | 30.00 | 3.00 | 100,000 | 20.0 |" in text
    assert "**12.0×**" in text
    assert "≥ 1M events/s: yes; ≥ 5× baseline: yes; peak RSS ≤ 2 GB: yes" in text
    # DuckDB's own load: 3M in 1.5 s = 2,000,000/s; 1,200,000 / 2,000,000 = 0.60 of it.
    assert "| DuckDB read_json into a table (ceiling: validates nothing) | 1.50 |" in text
    assert ("DuckDB's own loader, validating nothing: 2,000,000 events/s (3.00 CPU s); "
            "alphatrace runs at 0.60× of that ceiling.") in text
    # 3M in 6 s = 500,000/s; baseline 20 s = 150,000/s; ratio 3.3; 2.5 GB
    slow = harness.section(_rows(6.0, 20.0, 2560.0), m, 1_000_000, 3_000_000, 600_000_000, when)
    assert "**3.3×**" in slow
    assert "≥ 1M events/s: **no**; ≥ 5× baseline: **no**; peak RSS ≤ 2 GB: **no**" in slow


def test_record_appends_whole_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    common.record("## A\n\nfirst\n", path)
    path.write_text(path.read_text() + "## Someone else\ntheirs")  # no trailing newline
    common.record("## B\n\nsecond\n", path)
    text = path.read_text()
    assert text == "# Benchmark results\n\n## A\n\nfirst\n## Someone else\ntheirs\n\n## B\n\nsecond\n"


def test_harness_smoke_run(tmp_path: Path) -> None:
    """The whole harness on 2,000 runs: four child processes, nothing recorded; then the CPU
    breakdown on the file it generated."""
    before = (BENCH / "RESULTS.md").read_text() if (BENCH / "RESULTS.md").exists() else None
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_ingest.py"), "--runs", "2000", "--no-record",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "{'accepted': 6000, 'duplicates': 0, 'quarantined': 0}" in out.stdout
    assert "{'rows': 6000}" in out.stdout
    assert "{'accepted': 0, 'duplicates': 6000, 'quarantined': 0}" in out.stdout
    assert "alphatrace / pandas:" in out.stdout
    after = (BENCH / "RESULTS.md").read_text() if (BENCH / "RESULTS.md").exists() else None
    assert before == after
    cost = subprocess.run(
        [sys.executable, str(BENCH / "bench_ingest_cost.py"), "--no-record",
         "--file", str(tmp_path / "events_2000.jsonl")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert cost.returncode == 0, cost.stderr
    assert "(6,000 lines)" in cost.stdout
    rows = [line for line in cost.stdout.splitlines() if line.startswith("| ") and "µs" not in line]
    assert len(rows) == 5 and float(rows[0].split("|")[2]) > 0, cost.stdout
    assert (BENCH / "RESULTS.md").read_text() == after  # nothing recorded here either
