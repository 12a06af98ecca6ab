"""One local Spark session for the Spark tests (local[2], UTC, few shuffle partitions), and the
demo slice the governance parity tests read."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17+ (not on PATH)")
    # Python workers (mapInArrow) run this interpreter, with its pyarrow and alphatrace.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (pyspark_sql.SparkSession.builder.master("local[2]")
               .appName("alphatrace-tests")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "1g")
               # catalog tables (tests/spark/test_catalog.py) never land in the checkout
               .config("spark.sql.warehouse.dir",
                       str(tmp_path_factory.mktemp("spark_warehouse")))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def demo_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data (real prices, simulated agents), reconciled, without its governance."""
    from alphatrace.demo.pipeline import STEPS, run_demo

    db = tmp_path_factory.mktemp("spark_gov_demo") / "demo.duckdb"
    run_demo(db, runs_per_agent=40,
             steps=[s for s in STEPS if s.name in ("market", "simulate", "ingest", "reconcile")])
    return db
