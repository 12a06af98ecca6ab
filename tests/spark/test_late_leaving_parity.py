"""Runs that stop counting for a subject are late on Spark as on the embedded engine (issue
#14): each cause of tests/governance/test_runs_leaving.py, exported after each change, gives
the same documents and the same log, record for record; one case reads an export whose
`ledger_changes` has run ids only (from before migration 0028)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from alphatrace.api import Database
from alphatrace.engines.spark.governance import SparkReads
from alphatrace.governance import journal
from alphatrace.governance.api import Gates
from alphatrace.store.export import export_parquet
from tests.governance.test_runs_leaving import BASE, MARK, WANT, change, ingest, pnl, text
from tests.policies import SEED
from tests.spark import cases
from tests.spark.cases import partitions, same

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


@pytest.fixture(autouse=True)
def _written_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "now", lambda: cases.WRITTEN_AT)


def _both(emb: Database, log: Database, lake: Path, spark: Any) -> list[tuple[Any, ...]]:
    want = emb.gates.evaluation(policy=SEED)
    got = Gates(log.store, SparkReads(spark, lake)).evaluation(policy=SEED)
    same(want, got)
    return [tuple(d[f] for f in ("as_of", "scope", "subject", "action", "rule", "state",
                                 "run_ids")) for d in want["decisions"] if d["changed"]]


@pytest.mark.parametrize("cause", ["left", "excluded", "moved", "agent"])
def test_a_run_leaving_a_subject_is_late_on_spark_as_embedded(tmp_path: Path, spark: Any,
                                                              cause: str) -> None:
    with Database(tmp_path / "emb.duckdb") as emb, Database(tmp_path / "log.duckdb") as log:
        lake = tmp_path / "lake"
        ingest(emb, BASE)
        export_parquet(emb.con, lake)
        with partitions(spark, 1):
            _both(emb, log, lake, spark)
        change(emb, cause, tmp_path)
        export_parquet(emb.con, lake)
        with partitions(spark, 7):
            got = _both(emb, log, lake, spark)
        assert sorted(got) == sorted(WANT[cause])
        assert journal.read_records(log.con) == journal.read_records(emb.con)


def test_an_export_from_before_0028_gives_the_new_side_from_its_ledger(
        tmp_path: Path, spark: Any) -> None:
    """A late run (A6, -200 at hour 4.5, before A's mark) in an export whose ledger_changes
    has only seq and run_id: Spark reads A6's subjects from the export's ledger and kills A
    at its mark, as the embedded engine does from its own table."""
    with Database(tmp_path / "emb.duckdb") as emb, Database(tmp_path / "log.duckdb") as log:
        lake = tmp_path / "lake"
        ingest(emb, BASE)
        export_parquet(emb.con, lake)
        _both(emb, log, lake, spark)
        ingest(emb, [pnl("A6", "A", -200.0, 4.5)])
        export_parquet(emb.con, lake)
        path = next(lake.glob("ledger_changes*"))
        files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
        for f in files:
            pq.write_table(pq.read_table(f).select(["seq", "run_id"]), f)
        got = Gates(log.store, SparkReads(spark, lake)).evaluation(policy=SEED)
        assert [(d["as_of"], d["subject"], d["action"]) for d in got["decisions"]
                if d["changed"]] == [(text(MARK), "A", "kill")]
