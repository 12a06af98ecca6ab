"""The benchmark generator and harness.

bench/ is scripts, not a package: each runs as `python bench/<name>.py` (the README and
bench/RESULTS.md say so), with its folder on the path, and imports the shared helpers as
`common`. Here they are loaded by path, and `common` is registered under that name for them,
instead of putting bench/ on everyone's import path."""

from __future__ import annotations

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
    sys.modules[spec.name] = mod  # as an import would (dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod


gen = _load("gen_events")
common = sys.modules.setdefault("common", _load("common"))  # for `from common import ...`
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


def test_a_universe_is_priced_on_its_own_market(tmp_path: Path, store: Store) -> None:
    """Issue #18's workload: many agents with Zipf-sized shares, many symbols, a pnl for a
    share of the runs, and bars that price every signal whose exit they cover."""
    u = gen.Universe(agents=50, symbols=7, zipf=1.1, strategies=4, pnl_share=0.1)
    path = tmp_path / "u.jsonl"
    runs = 4000
    events, nbytes = gen.generate(path, runs, seed=5, universe=u)
    objs = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(objs) == events and path.stat().st_size == nbytes
    kinds = [o["type"] for o in objs]
    pnl = kinds.count("pnl")
    assert kinds.count("telemetry") == kinds.count("alpha") == runs
    assert abs(pnl - 0.1 * runs) < 4 * (runs * 0.1 * 0.9) ** 0.5  # binomial, 4 sigma
    # every run's events in run order: telemetry, alpha, then its pnl if it has one
    order = [(o["run_id"], kinds[i]) for i, o in enumerate(objs)]
    assert order == sorted(order, key=lambda x: (x[0], ["telemetry", "alpha", "pnl"].index(x[1])))
    alpha = [o for o in objs if o["type"] == "alpha"]
    share0 = sum(o["agent"] == "Agent0000" for o in alpha) / runs
    want0 = 1 / sum(k ** -1.1 for k in range(1, 51))  # Zipf(1.1) over 50 agents
    assert abs(share0 - want0) < 4 * (want0 * (1 - want0) / runs) ** 0.5
    for o in alpha:
        k = int(o["agent"][5:])
        assert o["strategy"] == f"CLASS{k % 4:02d}"
        assert o["symbol"] in {f"U{j:03d}USDT" for j in range(7)}

    market = tmp_path / "m" / "bars.parquet"
    market.parent.mkdir()
    bars = gen.write_market(market, u)
    hours = (gen.SPAN_S + 3 * 86_400) // 3600
    assert bars == 7 * hours
    from alphatrace.ledger.policy import load
    from alphatrace.ledger.reconcile import reconcile
    from alphatrace.market.importer import import_files

    report = import_files(store, [str(market.parent)])
    assert (report.bars, report.funding, report.quarantined) == (7 * hours, 7 * len(range(0, hours, 8)), 0)
    ingest_paths(store, [str(path)])
    reconcile(store, load(), full=True)
    by_status = dict(store.con.execute(
        "SELECT status, count(*) FROM legs GROUP BY ALL").fetchall())
    assert by_status == {"realized": runs}  # every signal's exit is inside the bars
    sources = dict(store.con.execute(
        "SELECT pnl_source, count(*) FROM ledger GROUP BY ALL").fetchall())
    assert sources == {"external": pnl, "reconciled": runs - pnl}


def test_generation_is_deterministic(tmp_path: Path) -> None:
    gen.generate(tmp_path / "a.jsonl", 300, seed=1)
    gen.generate(tmp_path / "b.jsonl", 300, seed=1)
    gen.generate(tmp_path / "c.jsonl", 300, seed=2)
    a = (tmp_path / "a.jsonl").read_bytes()
    assert a == (tmp_path / "b.jsonl").read_bytes()
    assert a != (tmp_path / "c.jsonl").read_bytes()


def test_record_appends_whole_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    common.record("## A\n\nfirst\n", path)
    path.write_text(path.read_text() + "## Someone else\ntheirs")  # no trailing newline
    common.record("## B\n\nsecond\n", path)
    text = path.read_text()
    assert text == "# Benchmark results\n\n## A\n\nfirst\n## Someone else\ntheirs\n\n## B\n\nsecond\n"


def test_harness_smoke_run(tmp_path: Path) -> None:
    """The whole harness on 6,000 typed events (2,000 runs): a child process per method,
    nothing recorded; then the CPU breakdown on the file it generated."""
    before = (BENCH / "RESULTS.md").read_text() if (BENCH / "RESULTS.md").exists() else None
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_ingest.py"), "--events", "6000", "--inputs", "typed",
         "--no-record", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr
    # fresh ingest and the second file into the store holding the first: all accepted
    assert out.stdout.count("{'accepted': 6000, 'duplicates': 0, 'quarantined': 0}") == 2
    assert out.stdout.count("{'rows': 6000}") == 2  # DuckDB's own load and pandas
    assert "{'accepted': 0, 'duplicates': 6000, 'quarantined': 0}" in out.stdout
    assert "| typed | 6,000 |" in out.stdout
    after = (BENCH / "RESULTS.md").read_text() if (BENCH / "RESULTS.md").exists() else None
    assert before == after
    cost = subprocess.run(
        [sys.executable, str(BENCH / "bench_ingest_cost.py"), "--no-record", "--inputs", "typed",
         "--runs", "2000", "--out", str(tmp_path), "--repeat", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert cost.returncode == 0, cost.stderr
    assert "`events_typed_2000.jsonl`, 6,000 lines" in cost.stdout  # the whole small file
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1].rstrip(" |")
            for line in cost.stdout.splitlines() if line.startswith("| ") and "µs" not in line}
    names = list(rows)
    parts = [n for n in names[:names.index("**sum of parts**")] if not n.startswith("·")]
    assert len(parts) == 9, rows  # reading .. checkpoint: every part of an ingest has its row
    assert float(rows["**whole ingest** (`ingest_paths` + close, fresh store)"]) > 0, rows
    # the generator writes clean lines: the fast path clears them all, nothing is quarantined
    assert rows["lines the fast path did not clear"] == "0", rows
    assert rows["quarantine"] == "0.00", rows
    assert (BENCH / "RESULTS.md").read_text() == after  # nothing recorded here either
    rounds = subprocess.run(
        [sys.executable, str(BENCH / "bench_ingest_cost.py"), "--no-record", "--rounds", "16,32",
         "--repeat", "2"], capture_output=True, text=True, timeout=300, check=False)
    assert rounds.returncode == 0, rounds.stderr
    assert "| 16 |" in rounds.stdout and "| 32 |" in rounds.stdout, rounds.stdout
    assert (BENCH / "RESULTS.md").read_text() == after


def test_dedupe_smoke_run(tmp_path: Path) -> None:
    """bench_dedupe on a 300-event history: rounds of new events are all accepted and the
    retries all duplicates (the script stops otherwise), nothing recorded."""
    before = (BENCH / "RESULTS.md").read_text()
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_dedupe.py"), "--history", "0,300", "--sizes", "10",
         "--repeat", "2", "--no-record", "--out", str(tmp_path), "--label", "smoke"],
        capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "| smoke | 0 | 10 |" in out.stdout and "| smoke | 300 | 10 |" in out.stdout, out.stdout
    assert (BENCH / "RESULTS.md").read_text() == before
