"""One local Spark session for the Spark tests (local[2], UTC, few shuffle partitions)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
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
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
