"""Spark reads what `alphatrace export --to parquet` writes: the same rows and the same UTC
instants (the shared market files, with nanosecond timestamps, it cannot read)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from alphatrace.store.export import export_parquet
from tests.store.test_export import _store

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


def test_spark_reads_the_exported_tables(tmp_path: Path, spark: Any) -> None:
    s = _store(tmp_path / "s.duckdb")
    export_parquet(s.con, tmp_path / "out")
    bars = spark.read.parquet(str(tmp_path / "out" / "bars.parquet"))
    assert dict(bars.dtypes)["ts"] == "timestamp"
    got = [(r["ts"], r["open"]) for r in bars.orderBy("ts").collect()]
    # Spark returns naive datetimes in the session zone (UTC here)
    assert got == [(dt.datetime(2024, 1, 1, h), o)
                   for h, o in enumerate([100.0, 101.0, 103.0, 102.0, 104.0])]
    ledger = spark.read.parquet(str(tmp_path / "out" / "ledger.parquet"))
    rows = {r["run_id"]: r for r in ledger.collect()}
    want = {r[0]: r[1:] for r in s.con.execute(
        "SELECT run_id, ts, realized_pnl_bps, net_usd FROM ledger").fetchall()}
    assert {k: (r["ts"], r["realized_pnl_bps"], r["net_usd"]) for k, r in rows.items()} == want
