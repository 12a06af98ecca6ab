"""`gates backtest` and `audit verify` (its re-computation) on Spark (`engines.spark.governance`)
over an export give the embedded engine's documents: the same canonical JSON, with
`spark.sql.shuffle.partitions` 1 and 7, on the hand-made cases of the gates' parity suite
(tests/spark/cases.py: ties, late knowledge times, open and excluded runs, runs with no agent
or no strategy, a cascading strategy kill, a metric that is not finite, quotes and non-ASCII
names, a duration window, a revive) and on a slice of the demo data through the CLI. A log
whose decisions no longer follow from the ledger, and a log rewritten with its hashes
recomputed, are rejected by both engines with the same problems."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from alphatrace.api import Database
from alphatrace.engines.spark.governance import SparkReads
from alphatrace.governance import audit, journal, redecide
from alphatrace.governance.api import Gates, Governance
from alphatrace.governance.reads import StoreReads
from alphatrace.store.export import export_parquet
from tests.governance.chain import tamper
from tests.policies import SEED
from tests.rows import exclude, h, insert, run
from tests.spark.cases import (
    WINDOW_POLICY,
    WRITTEN_AT,
    first_batch,
    partitions,
    policy,
    same,
    second_batch,
)

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


@pytest.fixture(autouse=True)
def _written_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "now", lambda: WRITTEN_AT)


def _history(path: Path) -> Database:
    """Both batches of the hand-made cases, two runs excluded by forensics."""
    db = Database(path)
    insert(db.con, first_batch() + second_batch())
    exclude(db.con, ["loser0002", "tie1"])
    return db


def test_backtest_on_spark_equals_the_embedded_engine(tmp_path: Path, spark: Any) -> None:
    emb = _history(tmp_path / "emb.duckdb")
    export_parquet(emb.con, tmp_path / "lake")
    nothing = Database(":memory:")  # the Spark side reads no store at all
    on_spark = Gates(nothing.store, SparkReads(spark, tmp_path / "lake"))
    gp = policy(WINDOW_POLICY)
    want = emb.gates.backtest(gp)
    s = want["summary"]
    assert s["killed"] > 0 and s["promoted"] > 0 and s["cascaded"] > 0
    killed = [r for r in want["subjects"] if r["killed_at"] is not None]
    assert any(r["runs_after_kill"] > 0 for r in killed)
    assert {"o'brien", "zoë"} <= {r["subject"] for r in want["subjects"]}
    assert any(d["action"] == "error" for d in want["decisions"])
    for n in (1, 7):
        with partitions(spark, n):
            same(want, on_spark.backtest(gp))
    seed = policy(None)
    with partitions(spark, 7):
        same(emb.gates.backtest(SEED), on_spark.backtest(SEED))
        same(emb.gates.backtest(seed), on_spark.backtest(seed))
    assert journal.read_records(nothing.con) == []


def test_an_empty_ledger_backtests_to_nothing_on_both(tmp_path: Path, spark: Any) -> None:
    emb = Database(tmp_path / "emb.duckdb")
    insert(emb.con, [run("open1", "a", None, hour=1, strategy="s")])  # no realized run
    export_parquet(emb.con, tmp_path / "lake")
    want = emb.gates.backtest(SEED)
    assert want["subjects"] == [] and want["decisions"] == []
    same(want, Gates(emb.store, SparkReads(spark, tmp_path / "lake")).backtest(SEED))


COUNT_POLICY = WINDOW_POLICY.replace(", duration: 10h", "")  # a window of runs only


def _logged(path: Path, gates: str) -> Database:
    """A log of the hand-made cases: a catch-up, a revive, a catch-up over new data, and a
    one-time evaluation under a second policy (the seed's)."""
    db = Database(path)
    insert(db.con, first_batch())
    exclude(db.con, ["loser0002", "tie1"])
    gp = policy(gates)
    db.gates.evaluate(gp)
    insert(db.con, [run("x", "anchor", 1.0, hour=11, strategy=None)])  # the revive's as_of
    db.revive("solo", "reviewed", scope="agent", actor="tester")
    insert(db.con, second_batch())
    db.gates.evaluate(gp)
    db.gates.evaluate(SEED, once=True)
    return db


def _verify_both(db: Database, lake: Path, spark: Any) -> dict[str, Any]:
    want = db.audit_verify()
    same(want, Governance(db.store, SparkReads(spark, lake)).audit_verify())
    return want


def _recheck(db: Database, how: redecide.Redecide) -> list[dict[str, Any]]:
    order = audit.chain_order(journal.read_records(db.con))
    return audit.recheck(db.con, order, set(), set(), how)


def test_audit_verify_on_spark_equals_the_embedded_engine(tmp_path: Path, spark: Any) -> None:
    """A clean log verifies on both; the re-decisions from one replay plan per policy and from
    one evaluation's windows per evaluation are the same on both; a log the embedded engine
    flags (a duration window), a ledger changed after the decisions, then a record rewritten
    with its hashes recomputed, are named the same way by both."""
    db = _logged(tmp_path / "emb.duckdb", COUNT_POLICY)
    lake = tmp_path / "lake"
    export_parquet(db.con, lake)
    reads = SparkReads(spark, lake)
    with partitions(spark, 1):
        ok = _verify_both(db, lake, spark)
    assert ok["ok"] is True and ok["problems"] == [] and ok["records"] > 20
    actions = {r["action"] for r in journal.read_records(db.con)}
    assert actions == {"kill", "promote", "hold", "inconclusive", "error", "revive"}
    newest = h(30)  # after every as_of in the log
    with partitions(spark, 7):
        assert _recheck(db, redecide.planned(reads, newest)) == _recheck(
            db, redecide.planned(StoreReads(db.con), newest)) == []
        assert _recheck(db, redecide.decide_each(reads)) == []

    # a duration window: the embedded engine's verdict on this log (problems included) is
    # Spark's too
    timed = _logged(tmp_path / "timed.duckdb", WINDOW_POLICY)
    export_parquet(timed.con, tmp_path / "timed_lake")
    with partitions(spark, 7):
        _verify_both(timed, tmp_path / "timed_lake", spark)

    # the ledger changes after the decisions: winner's first runs now lose
    db.con.execute("UPDATE ledger SET realized_pnl_bps = -500, pnl_usd = -500 "
                   "WHERE run_id IN ('winner0000', 'winner0001', 'winner0002')")
    export_parquet(db.con, lake)
    with partitions(spark, 7):
        changed = _verify_both(db, lake, spark)
    assert changed["ok"] is False
    assert {p["kind"] for p in changed["problems"]} == {"inputs_changed"}
    assert any("'winner'" in p["detail"] for p in changed["problems"])

    # a record's run_ids rewritten by SQL, every hash recomputed: only the re-computation sees it
    first_kill = next(r for r in journal.read_records(db.con)
                      if r["action"] == "kill" and r["run_ids"])
    db.close()
    tamper(tmp_path / "emb.duckdb",
           f"UPDATE decisions SET run_ids = '[\"forged\"]' WHERE seq = {first_kill['seq']}")
    with Database(tmp_path / "emb.duckdb", read_only=True) as again, partitions(spark, 1):
        rewritten = _verify_both(again, lake, spark)
    assert rewritten["ok"] is False
    assert any(p["seq"] == first_kill["seq"] and p["kind"] == "inputs_changed"
               and "run_ids" in p["detail"] for p in rewritten["problems"])


def test_demo_backtest_and_audit_on_spark_equal_the_embedded_engine(
        tmp_path: Path, spark: Any, demo_slice: Path) -> None:
    """The CLI: `alphatrace --engine spark gates backtest --tables DIR` and `alphatrace --engine
    spark audit verify --tables DIR --db STORE` print the embedded engine's documents, and a
    rewritten log fails both with exit 1 and the same problems."""
    from typer.testing import CliRunner

    from alphatrace.cli.main import app

    shutil.copy(demo_slice, tmp_path / "emb.duckdb")
    cli = CliRunner()

    def doc(code: int, *args: str) -> Any:
        res = cli.invoke(app, list(args))
        assert res.exit_code == code, res.output
        return json.loads(res.stdout)

    emb, lake = str(tmp_path / "emb.duckdb"), str(tmp_path / "lake")
    doc(0, "gates", "evaluate", "--db", emb, "--json")
    doc(0, "export", "--to", "parquet", lake, "--db", emb, "--json")
    want = doc(0, "gates", "backtest", "--db", emb, "--json")
    assert want["summary"]["killed"] > 0 and want["summary"]["promoted"] > 0
    with partitions(spark, 1):
        same(want, doc(0, "--engine", "spark", "gates", "backtest", "--tables", lake, "--json"))
    ok = doc(0, "audit", "verify", "--db", emb, "--json")
    assert ok["ok"] is True and ok["records"] > 30
    with partitions(spark, 7):
        same(ok, doc(0, "audit", "verify", "--engine", "spark", "--tables", lake, "--db", emb,
                     "--json"))
    with Database(tmp_path / "emb.duckdb", read_only=True) as d:
        victim = next(r for r in journal.read_records(d.con) if r["action"] == "promote")
    tamper(tmp_path / "emb.duckdb",
           f"UPDATE decisions SET run_ids = '[]' WHERE seq = {victim['seq']}")
    bad = doc(1, "audit", "verify", "--db", emb, "--json")
    assert bad["ok"] is False and any(p["seq"] == victim["seq"] for p in bad["problems"])
    with partitions(spark, 7):
        same(bad, doc(1, "--engine", "spark", "audit", "verify", "--tables", lake, "--db", emb,
                      "--json"))
