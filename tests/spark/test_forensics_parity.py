"""`forensics` and `explain` on Spark (`engines.spark.forensics`) over an export print the
embedded engine's `--json` documents byte for byte, with `spark.sql.shuffle.partitions` 1
and 7: on a slice of the demo data (real prices, simulated agents with planted stories) under
a policy small enough that it has loss clusters, change points and fired causes, with
excluded runs, and with the --agent, --strategy, --since, --holdout and --depth options; and
`explain` of runs with causes, an excluded run, and an unknown run (the same error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

POLICY = """
forensics:
  explain: {min_history: 5, slow_abs_ms: 2500}
  clusters: {min_support: 8, max_attrs: 3}
  changepoints: {min_size: 10, p_max: 0.01}
  exclusions:
    - name: infra_errors
      reason: "errored run that lost money"
      when: [{field: errors, op: ">", value: 0}, {field: pnl, op: "<", value: 0}]
"""


@contextmanager
def _partitions(spark: Any, n: int) -> Iterator[None]:
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(store, export, policy): the demo's data reconciled, its exclusions applied, exported."""
    from alphatrace.demo.pipeline import STEPS, run_demo

    tmp = tmp_path_factory.mktemp("spark_fx_demo")
    db, lake, pol = tmp / "demo.duckdb", tmp / "lake", tmp / "p.yaml"
    pol.write_text(POLICY)
    run_demo(db, runs_per_agent=120,
             steps=[s for s in STEPS if s.name in ("market", "simulate", "ingest", "reconcile")])
    _ok("exclusions", "apply", "--db", str(db), "--policy", str(pol), "--json")
    _ok("export", "--to", "parquet", str(lake), "--db", str(db), "--json")
    return db, lake, pol


def _run(*args: str) -> Any:
    from typer.testing import CliRunner

    from alphatrace.cli.main import app

    return CliRunner().invoke(app, list(args))


def _ok(*args: str) -> str:
    res = _run(*args)
    assert res.exit_code == 0, (res.output, res.exception)
    return str(res.stdout)


def test_forensics_on_spark_prints_the_embedded_document(spark: Any,
                                                         demo: tuple[Path, Path, Path]) -> None:
    db, lake, pol = demo
    want = _ok("forensics", "--db", str(db), "--policy", str(pol), "--json")
    doc = json.loads(want)
    # the case is worth comparing: clusters in several populations, change points, findings
    assert len(doc["clusters"]) >= 3 and doc["search"]["populations"] > 3
    assert len(doc["changepoints"]) >= 3 and doc["findings"]
    for n in (1, 7):
        with _partitions(spark, n):
            got = _ok("--engine", "spark", "forensics", "--tables", str(lake), "--policy",
                      str(pol), "--json")
        assert got == want


@pytest.mark.parametrize("options", [
    ("--agent", "TrendFollowerAgent"), ("--strategy", "MEAN_REVERT"), ("--holdout", "0.3"),
    ("--since", "2025-09-01", "--depth", "1")])
def test_forensics_options_on_spark(spark: Any, demo: tuple[Path, Path, Path],
                                    options: tuple[str, ...]) -> None:
    db, lake, pol = demo
    want = _ok("forensics", "--db", str(db), "--policy", str(pol), "--json", *options)
    with _partitions(spark, 7):
        got = _ok("forensics", "--engine", "spark", "--tables", str(lake), "--policy", str(pol),
                  "--json", *options)
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
    assert {"slow", "wrong", "errored"} <= seen, seen
    return excluded + picked


def test_explain_on_spark_prints_the_embedded_document(spark: Any,
                                                       demo: tuple[Path, Path, Path]) -> None:
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


def test_explain_of_an_unknown_run_on_spark_is_the_same_error(
        spark: Any, demo: tuple[Path, Path, Path]) -> None:
    db, lake, _ = demo
    want = _run("explain", "no-such-run", "--db", str(db), "--json")
    got = _run("explain", "no-such-run", "--engine", "spark", "--tables", str(lake), "--json")
    assert want.exit_code == got.exit_code != 0
    assert "unknown run 'no-such-run'" in want.output and want.output == got.output
