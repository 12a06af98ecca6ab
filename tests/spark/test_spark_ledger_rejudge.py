"""Governance over a ledger Spark built (`ledger --engine spark --out`, `reconcile --engine
spark --out`): Spark's reconcile rebuilds the whole ledger and records no `ledger_changes`, so
a catch-up cannot tell which runs changed. The contract: it judges every marked subject again
at its mark (`replay.every_mark`), which records what the embedded engine records from its
changes — a subject none of whose runs changed decides there what it decided last (no news).
The evaluation document then also lists every marked subject as evaluated (`changed: false`);
the log is the embedded engine's, record for record.

The lake here is the store's export without `ledger_changes.parquet`: the ledger Spark builds
equals the exported one bit for bit (tests/spark/test_reconcile_parity.py), and this keeps
the test to one JVM's governance work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alphatrace.api import Database
from alphatrace.engines.spark.governance import SparkReads
from alphatrace.governance import journal
from alphatrace.governance.api import Gates
from alphatrace.store.export import export_parquet
from tests.spark import cases

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


@pytest.fixture(autouse=True)
def _written_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "now", lambda: cases.WRITTEN_AT)


def without_changes(emb: Database, lake: Path) -> None:
    export_parquet(emb.con, lake)
    for p in lake.glob("ledger_changes*"):
        p.unlink()


def test_late_runs_on_a_ledger_without_changes_are_judged_at_every_mark(
        tmp_path: Path, spark: Any) -> None:
    """Every event first, with bars for BTC only (runs 5 and 6 of every agent judged, runs 0-4
    on ETH unpriced); then ETH's bars and a reconcile: runs 0-4 become known before the marks.
    Spark, with no changes to read, judges every subject at its mark: the same log as the
    embedded engine (which reads its changes), record for record, and the lifecycle batch
    reaches (Loser and Mixed killed on runs 0-4, Winner promoted)."""
    for emb, log, lake, cfg in cases.late_eth_rounds(tmp_path):
        without_changes(emb, lake)
        want = emb.gates.evaluation(policy=cfg.governance)
        got = Gates(log.store, SparkReads(spark, lake)).evaluation(policy=cfg.governance)
        # the news is the same; Spark also evaluated the subjects it judged at their marks
        assert [d for d in got["decisions"] if d["changed"]] == [
            d for d in want["decisions"] if d["changed"]]
        assert got["evaluated"] >= want["evaluated"]
    assert journal.read_records(log.con) == journal.read_records(emb.con)
    states = journal.lifecycle_states(log.con)
    assert [states.get(("agent", a)) for a in ("Loser", "Winner", "Mixed")] == [
        "killed", "promoted", "killed"]
    assert log.con.execute("SELECT count(*) FROM gate_seen").fetchall() == [(0,)]


def test_a_ledger_spark_writes_into_an_export_drops_its_change_log(
        tmp_path: Path, spark: Any) -> None:
    """The rebuild in place: after ETH's bars priced runs 0-4, the export folder gets the new
    legs and `ledger --engine spark --out lake/ledger.parquet` rebuilds its ledger. The
    folder's `ledger_changes.parquet` is the old ledger's: read beside the new one it names
    none of the runs it changed, the catch-up finds no news after `gate_seen`, and Loser and
    Mixed are never killed. Dropped with the write (`run._forget_changes`), every mark is
    judged again: the embedded engine's log, record for record."""
    import shutil

    from alphatrace.engines.spark.run import ledger_to_parquet

    lake = tmp_path / "lake"
    for part, (emb, log, _, cfg) in enumerate(cases.late_eth_rounds(tmp_path)):
        if part == 0:
            export_parquet(emb.con, lake)
        else:
            fresh = tmp_path / "fresh"
            export_parquet(emb.con, fresh)
            shutil.copy(fresh / "legs.parquet", lake / "legs.parquet")
            assert (lake / "ledger_changes.parquet").exists()
            ledger_to_parquet(lake, lake / "ledger.parquet", cfg.reconcile)
            assert not (lake / "ledger_changes.parquet").exists()
        emb.gates.evaluation(policy=cfg.governance)
        Gates(log.store, SparkReads(spark, lake)).evaluation(policy=cfg.governance)
    assert journal.read_records(log.con) == journal.read_records(emb.con)
    states = journal.lifecycle_states(log.con)
    assert [states.get(("agent", a)) for a in ("Loser", "Winner", "Mixed")] == [
        "killed", "promoted", "killed"]
