"""Confidence and the gates on Spark (`engines.spark.governance`) over an export decide what the
embedded engine decides: the same decision documents (canonical JSON), the same records in
the log with the same chain hashes, the same confidence summaries and histories, doubles bit
for bit, with `spark.sql.shuffle.partitions` 1 and 7.

Cases: a slice of the demo data, and hand-made edge cases (ties in time, late knowledge
times, open and excluded runs, runs with no agent or no strategy, a strategy kill that
cascades, a metric that is not finite, quotes and non-ASCII in names, a duration window with
recovery and floor, a revive, new data after the progress marks)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from alphatrace.api import Database
from alphatrace.engines.spark.governance import SparkReads
from alphatrace.governance import confidence, journal
from alphatrace.governance.api import Gates
from alphatrace.governance.canon import canonical_json
from alphatrace.governance.policy import load_governance
from alphatrace.policy import parse_policy_text
from alphatrace.store.export import export_parquet
from tests.rows import exclude, h, insert, run, series

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

WRITTEN_AT = dt.datetime(2030, 1, 1)  # created_at of every record, so hashes can be compared

# A duration window, recovery and floor, and a strategy-only kill rule.
WINDOW_POLICY = """
confidence:
  rules:
    - {when: "pnl < -20", factor: 0.8}
    - {when: "pnl < 0", factor: 0.93}
  recovery: 1.07
  floor: 0.3
gates:
  min_runs: 3
  window: {runs: 6, duration: 10h}
  rules:
    - {name: kill_loss, action: kill, when: "last_5_runs_pnl < -60 or error_rate > 0.3"}
    - {name: kill_class, action: kill, when: "rolling_pnl_bps < -150", scope: [strategy]}
    - {name: promote_ok, action: promote, when: "rolling_pnl_bps > 40 and median_latency_ms < 700"}
"""


def _policy(text: str | None) -> Any:
    return load_governance(None if text is None else parse_policy_text(text, "p.yaml"))


@contextmanager
def _partitions(spark: Any, n: int) -> Iterator[None]:
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")


@pytest.fixture(autouse=True)
def _written_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "now", lambda: WRITTEN_AT)


def _first_batch() -> list[dict[str, Any]]:
    rows = [
        *series("loser", [-30, -25, 5, -40, -35, -10, -50], strategy="trend"),
        *series("winner", [12, 30, 8, 25, 19, 22, 41], strategy="carry", lag_h=0.5),
        *series("o'brien", [3, -4, 3, -4, 3, -4], strategy="trend", prefix="ob"),
        *series("zoë", [-60, -70, -80, 5, -90], strategy="trend", start_hour=0.5),
        *series("solo", [10, -30, -40, -50], strategy=None),
        *series("slow", [5, 6, 7, 8], strategy="carry", latency_ms=float("inf")),
    ]
    # ties: several runs signalled and known at the same instant, ordered by run_id only
    rows += [run(f"tie{i}", "tied", p, hour=2.0, strategy="carry") for i, p in
             enumerate([9.5, -3.25, 7.0, -1.0])]
    rows += [run("nobody", None, -12.0, hour=3, strategy="trend"),
             run("open1", "loser", None, hour=8, strategy="trend"),
             run("late", "winner", -200.0, hour=1.5, strategy="carry", known=h(9.5)),
             run("err1", "tied", 1.0, hour=4, strategy="carry", errors=3)]
    return rows


def _second_batch() -> list[dict[str, Any]]:
    return [*series("loser", [20, 25, 30, 35], strategy="trend", start_hour=12, prefix="l2_"),
            *series("winner", [-5, 50, 60], strategy="carry", start_hour=12, prefix="w2_"),
            *series("fresh", [1, 2, 3, 4], strategy="trend", start_hour=13)]


def _decisions(db: Database) -> list[dict[str, Any]]:
    return journal.read_records(db.con)


def _same(want: Any, got: Any) -> None:
    assert canonical_json(got) == canonical_json(want)


def _evaluate_both(emb: Database, log: Database, lake: Path, spark: Any, policy: Any,
                   **kw: Any) -> dict[str, Any]:
    want = emb.gates.evaluation(policy=policy, **kw)
    got = Gates(log.store, SparkReads(spark, lake)).evaluation(policy=policy, **kw)
    _same(want, got)
    return want


def test_gates_and_confidence_on_spark_equal_the_embedded_engine(tmp_path: Path,
                                                                 spark: Any) -> None:
    """Catch-up, revive, catch-up over new data, one evaluation at a past time: every
    document and the two logs record for record (seq, hash, prev_hash)."""
    emb = Database(tmp_path / "emb.duckdb")
    insert(emb.con, _first_batch())
    exclude(emb.con, ["loser0002", "tie1"])
    export_parquet(emb.con, tmp_path / "lake")
    log = Database(tmp_path / "log.duckdb")  # the Spark side's log: no ledger at all
    gp = _policy(WINDOW_POLICY)
    with _partitions(spark, 1):
        first = _evaluate_both(emb, log, tmp_path / "lake", spark, gp)
        actions = {d["action"] for d in first["decisions"]}
        assert actions == {"kill", "promote", "error", "hold", "inconclusive"}
        assert any(d["cascade_from"] for d in first["decisions"])
        assert any(d["subject"] == "solo" and d["state"] == "killed" for d in first["decisions"])
        for db in (emb, log):
            insert(db.con, [run("x", "anchor", 1.0, hour=9.5, strategy=None)])  # revive's as_of
            db.revive("solo", "reviewed", scope="agent", actor="tester")
        insert(emb.con, _second_batch())
        export_parquet(emb.con, tmp_path / "lake")
    with _partitions(spark, 7):
        again = _evaluate_both(emb, log, tmp_path / "lake", spark, gp)
        assert again["changed"] > 0
        _evaluate_both(emb, log, tmp_path / "lake", spark, gp, as_of=h(5), once=True)
        reads = SparkReads(spark, tmp_path / "lake")
        for p in (gp, _policy(None)):
            want = confidence.compute(emb.con, p)
            assert reads.confidence(p, None, None, False).equals(
                want.summary(p.confidence.warn_below))
            assert reads.confidence(p, None, None, True).equals(want.history())
        assert reads.confidence(gp, "zoë", h(3), True).equals(
            confidence.compute(emb.con, gp, "zoë", h(3)).history())
    assert _decisions(log) == _decisions(emb)
    assert len(_decisions(emb)) > 20


@pytest.fixture(scope="module")
def demo_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data (real prices, simulated agents), reconciled, without its governance."""
    from alphatrace.demo.pipeline import STEPS, run_demo

    db = tmp_path_factory.mktemp("spark_gov_demo") / "demo.duckdb"
    run_demo(db, runs_per_agent=40,
             steps=[s for s in STEPS if s.name in ("market", "simulate", "ingest", "reconcile")])
    return db


def test_demo_catch_up_on_spark_equals_the_embedded_engine(tmp_path: Path, spark: Any,
                                                           demo_slice: Path) -> None:
    """The CLI, as the README shows it: `alphatrace export --to parquet DIR`, then
    `alphatrace --engine spark gates evaluate --tables DIR`; and `confidence`."""
    from typer.testing import CliRunner

    from alphatrace.cli.main import app

    shutil.copy(demo_slice, tmp_path / "emb.duckdb")
    shutil.copy(demo_slice, tmp_path / "log.duckdb")
    cli = CliRunner()

    def ok(*args: str) -> Any:
        res = cli.invoke(app, list(args))
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    emb, log, lake = str(tmp_path / "emb.duckdb"), str(tmp_path / "log.duckdb"), str(
        tmp_path / "lake")
    ok("export", "--to", "parquet", lake, "--db", emb, "--json")
    want = ok("gates", "evaluate", "--db", emb, "--json")
    with _partitions(spark, 7):
        got = ok("--engine", "spark", "gates", "evaluate", "--tables", lake, "--db", log,
                 "--json")
        conf = ok("confidence", "--engine", "spark", "--tables", lake, "--db", log, "--json")
    _same(want, got)
    assert len(want["decisions"]) > 30 and {d["action"] for d in want["decisions"]} >= {
        "kill", "promote"}
    with Database(tmp_path / "emb.duckdb") as e, Database(tmp_path / "log.duckdb") as s:
        assert _decisions(s) == _decisions(e)
    _same(ok("confidence", "--db", emb, "--json"), conf)

