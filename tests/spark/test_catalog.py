"""`--tables catalog.schema` on Spark: every table read by name through the session's catalog
and written with `saveAsTable` (`engines.spark.lake`), so a Delta or Iceberg catalog works
unchanged. CI has neither (no jars offline): the catalog here is Spark's built-in
`spark_catalog`, a database of Parquet tables, which goes through the same calls.

Loaded with the export of the demo slice, the catalog gives the embedded engine's documents
(`gates evaluate`, `confidence`, `forensics`, `explain` with legs and price paths, whose market
the driver reads through Spark); `reconcile` and `ledger` write their tables into a namespace
equal to the embedded engine's, doubles bit for bit; `ingest` writes the tables the folder
form writes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from alphatrace.engines.spark.lake import Lake, lake
from alphatrace.ledger.build import LEDGER_COLUMNS
from alphatrace.ledger.pricing import LEG_COLUMNS
from tests.spark.cases import partitions, same
from tests.spark.test_forensics_parity import POLICY
from tests.spark.test_ledger_parity import _bits

slow = pytest.mark.slow  # a JVM start; see `make test-fast`


def test_tables_names_a_namespace_or_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.chdir(tmp_path)
    assert lake("spark_catalog.alphatrace") == Lake(namespace="spark_catalog.alphatrace")
    assert lake(Path("lake.at")) == Lake(namespace="lake.at")
    (tmp_path / "v1.2").mkdir()
    for folder in ("v1.2", "./lake.at", "lake", "a.b.c", "/tmp/x.y", "1x.y"):
        assert lake(folder) == Lake(folder=Path(folder)), folder


def _ok(*args: str) -> Any:
    from typer.testing import CliRunner

    from alphatrace.cli.main import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def _database(spark: Any, name: str, where: Path) -> str:
    """A fresh `spark_catalog` database whose tables live under `where` (not the warehouse)."""
    spark.sql(f"DROP DATABASE IF EXISTS spark_catalog.{name} CASCADE")
    spark.sql(f"CREATE DATABASE spark_catalog.{name} LOCATION '{where}'")
    return f"spark_catalog.{name}"


@pytest.fixture(scope="module")
def catalog(spark: Any, demo_slice: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Path, Path, str]]:
    """(store, export folder, namespace): the demo slice exported, and every exported table
    loaded into a `spark_catalog` database with `saveAsTable`."""
    from alphatrace.engines.spark.session import session

    tmp = tmp_path_factory.mktemp("spark_catalog")
    db, folder = tmp / "emb.duckdb", tmp / "lake"
    shutil.copy(demo_slice, db)
    _ok("export", "--to", "parquet", str(folder), "--db", str(db), "--json")
    session()  # the session's UTC zone and microsecond timestamps, as the commands set them
    ns = _database(spark, "at_lake", tmp / "warehouse")
    for f in sorted(folder.glob("*.parquet")):
        spark.read.parquet(str(f)).write.saveAsTable(f"{ns}.{f.stem}")
    yield db, folder, ns
    spark.sql(f"DROP DATABASE IF EXISTS {ns} CASCADE")


@slow
def test_commands_read_the_catalog_by_name(catalog: tuple[Path, Path, str], spark: Any,
                                           tmp_path: Path) -> None:
    db, _, ns = catalog
    assert not Path(ns).exists()
    log = tmp_path / "log.duckdb"
    shutil.copy(db, log)
    emb = tmp_path / "emb.duckdb"
    shutil.copy(db, emb)
    with partitions(spark, 7):
        same(_ok("gates", "evaluate", "--db", str(emb), "--dry-run", "--json"),
             _ok("--engine", "spark", "gates", "evaluate", "--tables", ns, "--db", str(log),
                 "--dry-run", "--json"))
        same(_ok("confidence", "--db", str(emb), "--json"),
             _ok("confidence", "--engine", "spark", "--tables", ns, "--db", str(log), "--json"))
        pol = tmp_path / "p.yaml"
        pol.write_text(POLICY)
        want = _ok("forensics", "--db", str(emb), "--policy", str(pol), "--json")
        assert want["search"]["slices_tested"] > 100
        assert _ok("--engine", "spark", "forensics", "--tables", ns, "--policy", str(pol),
                   "--json") == want
        with duckdb.connect(str(emb), read_only=True) as con:  # runs with legs and a loss
            runs = [r[0] for r in con.execute(
                "SELECT run_id FROM ledger WHERE gross_bps < -30 AND run_id IN "
                "(SELECT run_id FROM legs) ORDER BY ts, run_id LIMIT 3").fetchall()]
        assert len(runs) == 3
        for rid in runs:
            assert (_ok("--engine", "spark", "explain", rid, "--tables", ns, "--policy",
                        str(pol), "--json")
                    == _ok("explain", rid, "--db", str(emb), "--policy", str(pol), "--json"))


def _keyed(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: {k: _bits(v) for k, v in r.items()} for r in rows}


def _store_rows(db: Path, table: str, columns: tuple[str, ...], key: str
                ) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return _keyed(con.sql(f"SELECT {', '.join(columns)} FROM {table}"
                              ).to_arrow_table().to_pylist(), key)


def _table_rows(spark: Any, name: str, columns: tuple[str, ...], key: str
                ) -> dict[str, dict[str, Any]]:
    return _keyed(spark.table(name).select(*columns).toArrow().to_pylist(), key)


@slow
def test_reconcile_and_ledger_write_catalog_tables(catalog: tuple[Path, Path, str], spark: Any,
                                                   tmp_path: Path) -> None:
    db, _, ns = catalog
    out = _database(spark, "at_out", tmp_path / "out")
    built = _database(spark, "at_built", tmp_path / "built")
    try:
        # a change log beside the ledger `ledger` replaces describes a ledger that is gone
        spark.sql(f"CREATE TABLE {built}.ledger_changes AS SELECT * FROM {ns}.ledger_changes")
        with partitions(spark, 7):
            doc = _ok("reconcile", "--engine", "spark", "--tables", ns, "--out", out, "--json")
            led = _ok("ledger", "--engine", "spark", "--tables", ns, "--out", built, "--json")
        want_legs = _store_rows(db, "legs", LEG_COLUMNS, "event_id")
        want_ledger = _store_rows(db, "ledger", LEDGER_COLUMNS, "run_id")
        assert doc["legs"] == len(want_legs) and doc["runs"] == len(want_ledger) > 100
        assert led == {"engine": "spark", "runs": len(want_ledger), "out": built}
        assert not spark.catalog.tableExists(f"{built}.ledger_changes")  # run._forget_changes
        assert _table_rows(spark, f"{out}.legs", LEG_COLUMNS, "event_id") == want_legs
        assert _table_rows(spark, f"{out}.ledger", LEDGER_COLUMNS, "run_id") == want_ledger
        assert _table_rows(spark, f"{built}.ledger", LEDGER_COLUMNS, "run_id") == want_ledger
        # the tables are catalog tables in the session's default format, not loose folders
        assert spark.catalog.getTable(f"{out}.ledger").tableType == "MANAGED"
    finally:
        for name in (out, built):
            spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")


@slow
def test_ingest_writes_catalog_tables(spark: Any, tmp_path: Path) -> None:
    from tests.spark.test_sharded_ingest import _files

    files = _files(tmp_path)
    ns = _database(spark, "at_ingest", tmp_path / "wh")
    try:
        by_name = _ok("ingest", *files, "--engine", "spark", "--tables", ns, "--json")
        by_folder = _ok("ingest", *files, "--engine", "spark", "--tables",
                        str(tmp_path / "folder"), "--json")
        assert by_name == by_folder == {"accepted": 34, "duplicates": 10, "quarantined": 4,
                                        "files": 3}
        for table in ("telemetry", "alpha", "pnl", "quarantine", "ingested_files"):
            got = spark.table(f"{ns}.{table}").drop("ingested_at")
            want = spark.read.parquet(str(tmp_path / "folder" / f"{table}.parquet")
                                      ).drop("ingested_at")
            rows = sorted(map(repr, want.collect()))
            assert rows and sorted(map(repr, got.collect())) == rows, table
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {ns} CASCADE")
