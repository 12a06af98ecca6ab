"""Confidence and the gates on Spark (`engines.spark.governance`) over an export decide what the
embedded engine decides: the same decision documents (canonical JSON), the same records in
the log with the same chain hashes, the same confidence summaries and histories, doubles bit
for bit, with `spark.sql.shuffle.partitions` 1 and 7.

Cases: a slice of the demo data, and hand-made edge cases (ties in time, late knowledge
times, open and excluded runs, runs with no agent or no strategy, a strategy kill that
cascades, a metric that is not finite, quotes and non-ASCII in names, a duration window with
recovery and floor, a revive, new data after the progress marks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from alphatrace.api import Database
from alphatrace.engines.spark.governance import SparkReads
from alphatrace.governance import confidence, journal
from alphatrace.governance.api import Gates
from alphatrace.store.export import export_parquet
from tests.rows import exclude, h, insert, run
from tests.spark import cases
from tests.spark.cases import first_batch, partitions, policy, same, second_batch

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

WRITTEN_AT = cases.WRITTEN_AT  # created_at of every record, so hashes can be compared


@pytest.fixture(autouse=True)
def _written_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "now", lambda: WRITTEN_AT)


def _decisions(db: Database) -> list[dict[str, Any]]:
    return journal.read_records(db.con)


def _evaluate_both(emb: Database, log: Database, lake: Path, spark: Any, policy: Any,
                   **kw: Any) -> dict[str, Any]:
    want = emb.gates.evaluation(policy=policy, **kw)
    got = Gates(log.store, SparkReads(spark, lake)).evaluation(policy=policy, **kw)
    same(want, got)
    return want


def test_gates_and_confidence_on_spark_equal_the_embedded_engine(tmp_path: Path,
                                                                 spark: Any) -> None:
    """Catch-up, revive, catch-up over new data, one evaluation at a past time: every
    document and the two logs record for record (seq, hash, prev_hash)."""
    emb = Database(tmp_path / "emb.duckdb")
    insert(emb.con, first_batch())
    exclude(emb.con, ["loser0002", "tie1"])
    export_parquet(emb.con, tmp_path / "lake")
    log = Database(tmp_path / "log.duckdb")  # the Spark side's log: no ledger at all
    gp = policy(cases.WINDOW_POLICY)
    with partitions(spark, 1):
        first = _evaluate_both(emb, log, tmp_path / "lake", spark, gp)
        actions = {d["action"] for d in first["decisions"]}
        assert actions == {"kill", "promote", "error", "hold", "inconclusive"}
        assert any(d["cascade_from"] for d in first["decisions"])
        assert any(d["subject"] == "solo" and d["state"] == "killed" for d in first["decisions"])
        for db in (emb, log):
            insert(db.con, [run("x", "anchor", 1.0, hour=9.5, strategy=None)])  # revive's as_of
            db.revive("solo", "reviewed", scope="agent", actor="tester")
        insert(emb.con, second_batch())
        export_parquet(emb.con, tmp_path / "lake")
    with partitions(spark, 7):
        again = _evaluate_both(emb, log, tmp_path / "lake", spark, gp)
        assert again["changed"] > 0
        _evaluate_both(emb, log, tmp_path / "lake", spark, gp, as_of=h(5), once=True)
        reads = SparkReads(spark, tmp_path / "lake")
        for p in (gp, policy(None)):
            want = confidence.compute(emb.con, p)
            assert reads.confidence(p, None, None, False).equals(
                want.summary(p.confidence.warn_below))
            assert reads.confidence(p, None, None, True).equals(want.history())
        assert reads.confidence(gp, "zoë", h(3), True).equals(
            confidence.compute(emb.con, gp, "zoë", h(3)).history())
    assert _decisions(log) == _decisions(emb)
    assert len(_decisions(emb)) > 20


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
    with partitions(spark, 7):
        got = ok("--engine", "spark", "gates", "evaluate", "--tables", lake, "--db", log,
                 "--json")
        conf = ok("confidence", "--engine", "spark", "--tables", lake, "--db", log, "--json")
    same(want, got)
    assert len(want["decisions"]) > 30 and {d["action"] for d in want["decisions"]} >= {
        "kill", "promote"}
    with Database(tmp_path / "emb.duckdb") as e, Database(tmp_path / "log.duckdb") as s:
        assert _decisions(s) == _decisions(e)
    same(ok("confidence", "--db", emb, "--json"), conf)



def test_runs_changed_by_market_data_are_late_on_spark_as_embedded(tmp_path: Path,
                                                                   spark: Any) -> None:
    """Late runs on both engines: every event first, with bars for BTC only (runs 5 and 6 of
    every agent judged, runs 0-4 on ETH unpriced), exported and evaluated; then ETH's bars,
    a reconcile, a new export and evaluation. The export carries `ledger_changes`, so Spark
    judges runs 0-4 at the agents' marks as the embedded engine does: the same documents,
    the same log, record for record, and the end batch reaches."""
    for part, (emb, log, lake, cfg) in enumerate(cases.late_eth_rounds(tmp_path)):
        export_parquet(emb.con, lake)
        with partitions(spark, 1 + 6 * part):
            _evaluate_both(emb, log, lake, spark, cfg.governance)
    assert _decisions(log) == _decisions(emb)
    states = journal.lifecycle_states(log.con)
    assert [states.get(("agent", a)) for a in ("Loser", "Winner", "Mixed")] == [
        "killed", "promoted", "killed"]
