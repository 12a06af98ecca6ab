"""`alphatrace demo` end to end in a temporary folder, checked against the simulator's truth."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.demo.simulate import DemoEvents

pytestmark = pytest.mark.slow  # see `make test-fast`

def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["demo", *args])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """`alphatrace demo --json` with the shipped data, as a user runs it."""
    d = tmp_path_factory.mktemp("demo_cli")
    db = d / "demo.duckdb"
    r = _run("--db", str(db), "--json", "--events-dir", str(d / "ev"))
    assert r.exit_code == 0, r.output
    return d, json.loads(r.stdout)  # the whole of stdout is one JSON document


def test_json_counts_match_what_the_simulator_planted(
    built: tuple[Path, dict[str, Any]], demo: DemoEvents
) -> None:
    _, doc = built
    steps = doc["steps"]
    assert list(steps) == ["market", "simulate", "ingest", "summary", "reconcile", "agents",
                           "forensics", "governance"]
    t = demo.truth  # same bars and seed as the fixture: the same events
    assert steps["simulate"]["events"] == t.events_by_kind
    ing = steps["ingest"]
    assert ing["accepted"] == sum(t.events_by_kind.values())
    assert ing["by_kind"] == t.events_by_kind
    assert ing["duplicates"] == t.duplicates == 3
    assert ing["quarantined"] == len(t.bad_lines) == 8
    assert ing["files"] == 3
    summ = steps["summary"]
    assert {r["kind"]: r["events"] for r in summ["events"]} == t.events_by_kind
    assert {r["agent"]: r["runs"] for r in summ["agents"]} == t.runs_by_agent
    assert {r["strategy"]: r["runs"] for r in summ["strategies"]} == {
        "FUNDING": 1400, "MEAN_REVERT": 1400, "MOMENTUM": 1400}
    quarantined = {(q["file"], q["line"]) for q in summ["quarantine"]}
    assert quarantined == {(b.file, b.line) for b in t.bad_lines}
    fields = {(q["file"], q["line"]): q["field"] for q in summ["quarantine"]}
    assert all(fields[(b.file, b.line)] == b.field for b in t.bad_lines)
    ext = {r["agent"]: r["ext_pnl_runs"] for r in summ["agents"]}
    assert ext[t.external_pnl_agent] == t.external_pnl_runs and sum(ext.values()) == t.external_pnl_runs
    planted = steps["simulate"]["planted"]
    assert planted["loss_cluster"]["runs"] == len(t.cluster.run_ids)
    assert planted["cost_then_pnl_break"]["pnl_break"]["run_index"] == t.quality_break.pnl_break_index


def test_market_step_and_store_contents(built: tuple[Path, dict[str, Any]], demo_data_dir: Path) -> None:
    d, doc = built
    m = doc["steps"]["market"]
    assert m["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert m["file_names"] == sorted(p.name for p in demo_data_dir.glob("*.parquet"))
    assert m["quarantined"] == 0
    con = duckdb.connect(str(d / "demo.duckdb"), read_only=True)
    try:
        bars, funding = con.execute("SELECT (SELECT count(*) FROM bars), (SELECT count(*) FROM funding)").fetchall()[0]
        # ~188 days of hourly bars and 8-hourly funding for two symbols.
        assert bars == m["bars"] and 2 * 180 * 24 <= bars <= 2 * 190 * 24
        assert funding == m["funding"] and 2 * 180 * 3 <= funding <= 2 * 190 * 3
        assert con.execute("SELECT DISTINCT interval_s FROM bars").fetchall() == [(3600,)]
    finally:
        con.close()
    assert sorted(p.name for p in (d / "ev").iterdir()) == ["alpha.jsonl", "pnl.jsonl", "telemetry.jsonl"]


def test_rerun_rebuilds_the_store_and_gives_the_same_document(
    built: tuple[Path, dict[str, Any]], demo_data_dir: Path
) -> None:
    d, doc = built
    db = d / "demo.duckdb"
    # --data with the same files: the same document (the folder name is not part of it).
    r = _run("--db", str(db), "--json", "--data", str(demo_data_dir))
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)
    # Nothing accumulated: a fresh store, not a re-ingest into the old one.
    assert again == doc
    assert again["steps"]["ingest"]["duplicates"] == 3


def test_default_path_ignores_alphatrace_db(chdir_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    precious = chdir_tmp / "precious.duckdb"
    monkeypatch.setenv("ALPHATRACE_DB", str(precious))
    r = _run("--runs-per-agent", "40")
    assert r.exit_code == 0, r.output
    assert (chdir_tmp / "alphatrace-demo.duckdb").is_file()
    assert not precious.exists()
    # The rich report: tables, not JSON.
    for text in ("runs per agent", "MeanReversionAgent", "quarantined lines", "not valid JSON"):
        assert text in r.stdout


def test_refuses_to_overwrite_a_file_that_is_not_a_store(chdir_tmp: Path) -> None:
    notes = chdir_tmp / "notes.txt"
    notes.write_text("my notes\n")
    r = _run("--db", str(notes))
    assert r.exit_code == 2
    assert "not a DuckDB database file" in " ".join(r.stderr.split())
    assert notes.read_text() == "my notes\n"


def test_missing_market_folder_is_one_clear_error(chdir_tmp: Path) -> None:
    r = _run("--data", str(chdir_tmp / "nope"), "--json")
    assert r.exit_code == 2
    assert "no such folder of market data" in " ".join(r.stderr.split())
    assert r.stdout == ""


def test_demo_runs_the_whole_pipeline_and_finds_what_was_planted(
    built: tuple[Path, dict[str, Any]], demo: DemoEvents
) -> None:
    steps = built[1]["steps"]
    t = demo.truth
    rc = steps["reconcile"]
    assert rc["legs"] == rc["realized"] + rc["open"] + rc["unpriced"] > 0
    assert {a["agent"]: a["runs"] for a in steps["agents"]["agents"]} == t.runs_by_agent
    checks = steps["forensics"]["checks"]
    assert checks["loss_cluster"]["found"] and checks["loss_cluster"]["rank"] == 1
    assert checks["loss_cluster"]["jaccard"] >= 0.8
    cb = checks["cost_then_pnl"]
    assert cb["found"] and cb["found_cost_run"] == cb["planted_cost_run"]
    assert cb["found_pnl_run"] > cb["found_cost_run"]
    gov = steps["governance"]
    assert {c["agent"] for c in gov["confidence"]} == set(t.runs_by_agent)
    subjects = {(d["scope"], d["subject"]) for d in gov["decisions"]}
    assert subjects == {("agent", a) for a in t.runs_by_agent} | {
        ("strategy", s) for s in ("FUNDING", "MEAN_REVERT", "MOMENTUM")}
    assert gov["audit"]["ok"] is True and gov["audit"]["records"] == len(gov["decisions"])


def test_demo_shows_what_a_recovery_policy_would_give(built: tuple[Path, dict[str, Any]]) -> None:
    """The seed rule stays the default; beside it, the multipliers under the same rules plus
    recovery, recomputed here by hand from each run's pnl."""
    d, doc = built
    gov = doc["steps"]["governance"]
    alt = gov["with_recovery"]
    assert alt["recovery"] == 1.15
    assert "recovery" in gov["confidence_note"] and "floor" in gov["confidence_note"]
    from alphatrace.api import Database

    with Database(d / "demo.duckdb", read_only=True) as db:
        hist = db.confidence(history=True).to_pylist()
    by_agent: dict[str, float] = {}
    for r in hist:  # (agent, ts, run_id) order
        m = by_agent.get(r["agent"], 1.0)
        p = r["pnl"]
        f = 0.85 if p < -20 else 0.95 if p < 0 else 1.15 if p > 0 else 1.0
        by_agent[r["agent"]] = min(1.0, m * f)
    assert alt["multipliers"] == pytest.approx(by_agent, rel=1e-9)
    default = {c["agent"]: c["multiplier"] for c in gov["confidence"]}
    assert all(alt["multipliers"][a] >= default[a] for a in default)
    assert max(alt["multipliers"].values()) > 0.5 > max(default.values())


def test_demo_summary_reads_confidence_as_percent(tmp_path: Path) -> None:
    r = _run("--db", str(tmp_path / "d.duckdb"))
    assert r.exit_code == 0, r.output
    section = r.stdout[r.stdout.index("confidence (alphatrace confidence)"):]
    section = section[:section.index("lifecycle changes")]
    assert "< 0.01 %" in section and "with recovery 1.15" in section
    assert not re.search(r"\de-\d", section)
    assert "note:" in section and "recovery" in section and "floor" in section


def test_default_forensics_finds_the_planted_cluster_at_rank_one(
        built: tuple[Path, dict[str, Any]], demo: DemoEvents, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store-wide question (no --agent) searches every agent and strategy class too, so
    MeanReversionAgent's planted cluster is the top finding of `forensics`, the page and the
    report (which read the same search)."""
    d, _ = built
    planted = set(demo.truth.cluster.run_ids)
    out = CliRunner().invoke(app, ["forensics", "--db", str(d / "demo.duckdb"), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    top = doc["clusters"][0]
    got = set(top["run_ids"])
    assert top["population"] == f"agent {demo.truth.cluster.agent}"
    assert len(got & planted) / len(got | planted) >= 0.8
    assert doc["search"]["populations"] == 1 + 6 + 3  # the store, 6 agents, 3 strategies
    assert doc["findings"][0] == top["sentence"]

    from alphatrace.server.dashboard import forensics as forensics_doc
    from alphatrace.store import Store
    from tests.dashboard.util import source

    with Store(d / "demo.duckdb", read_only=True) as store:
        page = forensics_doc.forensics(source(store.con), store.con, None, None, None, None, None, 500)
    assert page["clusters"][0]["sentence"] == top["sentence"]
    from alphatrace.cli import common

    monkeypatch.setattr(common.console, "_width", 200)
    table = CliRunner().invoke(app, ["forensics", "--db", str(d / "demo.duckdb")])
    first = next(x for x in table.stdout.splitlines() if x.startswith("│ 1 "))
    assert "agent MeanReversionAgent" in first and "latency_ms >" in first
