"""`forensics` and `explain` on Spark (`engines.spark.forensics`) over an export print the
embedded engine's `--json` documents byte for byte, with `spark.sql.shuffle.partitions` 1
and 7. `forensics`: synthetic runs with a planted loss cluster, a cost rise before a PnL fall,
numeric attrs (several events per run, text under a numeric key), excluded runs and runs with
no agent, with and without --agent, --strategy, --since, --holdout and --depth; and the demo's
data (real prices, simulated agents). `explain`: demo runs whose causes fire (legs, price
paths, regimes), an excluded run, ledger rows without signals, a run with no agent, and an
unknown run (the same error)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

POLICY = """
forensics:
  explain: {min_history: 5, slow_abs_ms: 2500}
  clusters: {min_support: 25, max_attrs: 3}
  changepoints: {min_size: 20, p_max: 0.01}
"""


@contextmanager
def _partitions(spark: Any, n: int) -> Iterator[None]:
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")


def _run(*args: str) -> Any:
    from typer.testing import CliRunner

    from alphatrace.cli.main import app

    return CliRunner().invoke(app, list(args))


def _ok(*args: str) -> str:
    res = _run(*args)
    assert res.exit_code == 0, (res.output, res.exception)
    return str(res.stdout)


def _synthetic(path: Path) -> None:
    """Three agents in two strategies: a planted loss cluster (SynthAgent), a cost rise then a
    PnL fall (BreakAgent), plain runs (Plain, another strategy); numeric attrs on telemetry
    (several events per run, a text value under a numeric key, a key only some runs have),
    excluded runs, runs with no agent."""
    import numpy as np

    from alphatrace.forensics import synthetic as syn
    from alphatrace.store import Store
    from tests.rows import T0, exclude, full_row, insert

    plain = syn.runs(700, 9, planted=None)
    plain["run_id"] = np.array([f"p{i:05d}" for i in range(700)], dtype=object)
    tables = [syn.ledger_table(syn.runs(2000, 8)),
              syn.ledger_table(syn.breaks(500, 3, cost_at=180, pnl_at=300), agent="BreakAgent"),
              syn.ledger_table(plain, agent="Plain").set_column(
                  2, "strategy", pa.array(["OTHER"] * 700))]
    with Store(path) as s:
        for t in tables:
            s.con.register("_t", t)
            s.con.execute("INSERT INTO ledger BY NAME SELECT * FROM _t")
            s.con.unregister("_t")
        insert(s.con, [full_row(f"anon{i}", T0 + dt.timedelta(hours=i), agent=None,
                                realized_pnl_bps=-5.0 * i) for i in range(5)])
        # attrs: temp tracks latency (a second, correlated feature); depth on a third of the
        # runs; two or three telemetry events per run for some, whose values are averaged
        s.con.execute("""
            INSERT INTO telemetry (event_id, run_id, agent, file_id, line, attrs)
            SELECT 't' || run_id || '-' || k, run_id, coalesce(agent, '?'), 1, row_number() OVER (),
                   CASE WHEN k = 0 THEN json_object('temp', round(latency_ms / 1000 + 0.1, 3),
                                                    'depth', CASE WHEN hash(run_id) % 3 = 0
                                                                  THEN hash(run_id) % 7 END)
                        WHEN k = 1 THEN json_object('temp', round(latency_ms / 997, 4),
                                                    'note', 'retry')
                        ELSE json_object('temp', 'n/a', 'depth', 0.1) END
            FROM ledger, range(3) r(k)
            WHERE k = 0 OR hash(run_id || k) % 4 = 0""")
        exclude(s.con, ["r0000007", "r0000100", "BreakAgent-00310", "p00042"])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(store, export, policy) of the synthetic runs."""
    tmp = tmp_path_factory.mktemp("spark_fx_syn")
    db, lake, pol = tmp / "syn.duckdb", tmp / "lake", tmp / "p.yaml"
    pol.write_text(POLICY)
    _synthetic(db)
    _ok("export", "--to", "parquet", str(lake), "--db", str(db), "--json")
    return db, lake, pol


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(store, export, policy): the demo's data reconciled (legs, bars), exclusions applied."""
    from alphatrace.demo.pipeline import STEPS, run_demo

    tmp = tmp_path_factory.mktemp("spark_fx_demo")
    db, lake, pol = tmp / "demo.duckdb", tmp / "lake", tmp / "p.yaml"
    pol.write_text(POLICY + """  exclusions:
    - name: big_losses
      reason: "lost more than 40 bps"
      when: [{field: pnl, op: "<", value: -40}]
""")
    run_demo(db, runs_per_agent=60,
             steps=[s for s in STEPS if s.name in ("market", "simulate", "ingest", "reconcile")])
    _ok("exclusions", "apply", "--db", str(db), "--policy", str(pol), "--json")
    _ok("export", "--to", "parquet", str(lake), "--db", str(db), "--json")
    return db, lake, pol


def test_forensics_on_spark_prints_the_embedded_document(
        spark: Any, synthetic: tuple[Path, Path, Path]) -> None:
    db, lake, pol = synthetic
    want = _ok("forensics", "--db", str(db), "--policy", str(pol), "--json")
    doc = json.loads(want)
    # the case is worth comparing: clusters (an attr among the features), change points
    assert len(doc["clusters"]) >= 2 and doc["search"]["populations"] == 7
    assert "temp" in doc["search"]["features"] and "depth" in doc["search"]["features"]
    assert {c["metric"] for c in doc["changepoints"]} >= {"cost_per_run", "mean_pnl_bps"}
    for n in (1, 7):
        with _partitions(spark, n):
            got = _ok("--engine", "spark", "forensics", "--tables", str(lake), "--policy",
                      str(pol), "--json")
        assert got == want


@pytest.mark.parametrize("options", [
    ("--agent", "BreakAgent"), ("--strategy", "SYNTH"), ("--holdout", "0.3"),
    ("--since", "2024-01-02", "--depth", "1")])
def test_forensics_options_on_spark(spark: Any, synthetic: tuple[Path, Path, Path],
                                    options: tuple[str, ...]) -> None:
    db, lake, pol = synthetic
    want = _ok("forensics", "--db", str(db), "--policy", str(pol), "--json", *options)
    with _partitions(spark, 7):
        got = _ok("forensics", "--engine", "spark", "--tables", str(lake), "--policy", str(pol),
                  "--json", *options)
    assert got == want


def test_demo_forensics_on_spark(spark: Any, demo: tuple[Path, Path, Path]) -> None:
    """The demo's events carry attrs as the SDK writes them; excluded runs from a rule."""
    db, lake, pol = demo
    want = _ok("forensics", "--db", str(db), "--policy", str(pol), "--json")
    with _partitions(spark, 7):
        got = _ok("forensics", "--engine", "spark", "--tables", str(lake), "--policy", str(pol),
                  "--json")
    assert got == want


def _interesting_runs(db: Path, pol: Path) -> list[str]:
    """An excluded run, and runs whose explanations fire causes (each cause once when it can)."""
    with duckdb.connect(str(db), read_only=True) as con:
        excluded = [r[0] for r in con.execute(
            "SELECT run_id FROM run_exclusions ORDER BY run_id LIMIT 1").fetchall()]
        candidates = [r[0] for r in con.execute(
            "SELECT run_id FROM ledger WHERE errors > 0 OR latency_ms > 2500 OR gross_bps < -30 "
            "OR abs(execution_gap_bps) >= 20 OR status <> 'realized' "
            "ORDER BY ts, run_id").fetchall()]
    assert excluded, "the demo slice has no run the exclusion rule matches"
    picked: list[str] = []
    seen: set[str] = set()
    for rid in candidates:
        causes = {c["cause"] for c in json.loads(
            _ok("explain", rid, "--db", str(db), "--policy", str(pol), "--json"))["causes"]}
        if causes - seen:
            picked.append(rid)
            seen |= causes
        if len(picked) >= 6:
            break
    assert len(seen) >= 2, seen
    return excluded + picked


def test_explain_on_spark_prints_the_embedded_document(spark: Any,
                                                       demo: tuple[Path, Path, Path]) -> None:
    """Runs with legs and price paths (the demo), one excluded."""
    db, lake, pol = demo
    runs = _interesting_runs(db, pol)
    assert json.loads(_ok("explain", runs[0], "--db", str(db), "--json"))["excluded"]
    for n in (1, 7):
        with _partitions(spark, n):
            for rid in runs:
                want = _ok("explain", rid, "--db", str(db), "--policy", str(pol), "--json")
                got = _ok("--engine", "spark", "explain", rid, "--tables", str(lake),
                          "--policy", str(pol), "--json")
                assert got == want, rid


def test_explain_without_legs_on_spark(spark: Any, synthetic: tuple[Path, Path, Path]) -> None:
    """Ledger rows with no signal events (no legs, no price path), a cost spike, a run with
    no agent, an excluded run."""
    db, lake, pol = synthetic
    for rid in ("BreakAgent-00200", "BreakAgent-00310", "anon3", "r0000000"):
        want = _ok("explain", rid, "--db", str(db), "--policy", str(pol), "--json")
        got = _ok("explain", rid, "--engine", "spark", "--tables", str(lake), "--policy",
                  str(pol), "--json")
        assert got == want, rid


def test_explain_of_an_unknown_run_on_spark_is_the_same_error(
        spark: Any, demo: tuple[Path, Path, Path]) -> None:
    db, lake, _ = demo
    want = _run("explain", "no-such-run", "--db", str(db), "--json")
    got = _run("explain", "no-such-run", "--engine", "spark", "--tables", str(lake), "--json")
    assert want.exit_code == got.exit_code != 0
    assert "unknown run 'no-such-run'" in want.output and want.output == got.output


def test_tables_spark_wrote_as_folders(spark: Any, demo: tuple[Path, Path, Path],
                                       tmp_path: Path) -> None:
    """Each table written by Spark as a folder of part files
    (`DIR/<table>.parquet/part-*.parquet`) reads as the export's files do."""
    db, lake, pol = demo
    snap = tmp_path / "snap"
    for f in sorted(lake.glob("*.parquet")):
        spark.read.parquet(str(f)).write.parquet(str(snap / f.name))
    assert (snap / "bars.parquet").is_dir()
    want = _ok("forensics", "--db", str(db), "--policy", str(pol), "--json")
    got = _ok("--engine", "spark", "forensics", "--tables", str(snap), "--policy", str(pol),
              "--json")
    assert got == want
    rid = _interesting_runs(db, pol)[1]
    want = _ok("explain", rid, "--db", str(db), "--policy", str(pol), "--json")
    assert json.loads(want)["causes"]
    got = _ok("--engine", "spark", "explain", rid, "--tables", str(snap), "--policy", str(pol),
              "--json")
    assert got == want


def test_unknown_agent_on_spark_is_refused(spark: Any, synthetic: tuple[Path, Path, Path]) -> None:
    db, lake, _ = synthetic
    want = _run("forensics", "--agent", "BreakAgnet", "--db", str(db), "--json")
    got = _run("forensics", "--agent", "BreakAgnet", "--engine", "spark", "--tables", str(lake),
               "--json")
    assert want.exit_code == got.exit_code != 0
    assert "BreakAgent" in got.output and want.output == got.output


def test_slice_search_passes_run_on_the_executors(
        spark: Any, synthetic: tuple[Path, Path, Path]) -> None:
    """With every population's search on the executors (`min_rows=1`), the document is the
    embedded engine's, and Spark ran the histogram passes: its status tracker lists their jobs
    (one per lattice level and population) in their job group. Without the wiring, none."""
    from alphatrace.engines.spark.forensics import forensics
    from alphatrace.engines.spark.slices import JOB_GROUP
    from alphatrace.forensics.api import Forensics
    from alphatrace.store import Store

    db, lake, pol = synthetic
    with Store(db, read_only=True) as store:
        want = Forensics(store).forensics(policy=pol)
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(JOB_GROUP))
    with _partitions(spark, 7):
        got = forensics(spark, lake, policy=pol, min_rows=1)
    jobs = set(tracker.getJobIdsForGroup(JOB_GROUP)) - before
    assert got == want
    # 7 populations (the store, each agent, each strategy class), each at least its first level
    assert want["search"]["populations"] == 7
    assert len(jobs) >= 7, len(jobs)
