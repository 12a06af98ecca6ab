"""The ledger built on Spark (`engines.spark.ledger`) over an export equals the embedded
engine's ledger by run_id, doubles bit for bit, on hand-made edge cases: multi-leg runs,
FLAT legs, ties in time, NULLs, several pnl revisions and symbols, telemetry-only and pnl-only
runs, signals before the first bar, bar holes, open and unpriced legs."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest

from alphatrace.engines.spark.ledger import ledger_frame
from alphatrace.ledger.build import LEDGER_COLUMNS
from alphatrace.store import Store
from alphatrace.store.export import export_parquet
from tests.ledger.helpers import (
    add_alpha,
    add_bars,
    add_funding,
    add_pnl,
    add_telemetry,
    at,
    policy,
)

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

POLICY = """
reconcile:
  horizon: 2h
  agents:
    B: {size_usd: 2500, fee_bps: 2}
"""


def _edge_store(path: Path) -> Store:
    s = Store(path)
    add_bars(s, "BTCUSDT", [100.0, 101.3, None, 99.7, 104.1, 103.9, None, None, 105.5, 106.25],
             start=at(1))
    add_bars(s, "ETHUSDT", [10.0 + i * 0.137 for i in range(12)])
    add_funding(s, "BTCUSDT", [(at(2.5), 0.0001, 100.7), (at(4), -0.00031, None),
                               (at(6), 0.00017, 104.0)])
    # multi-leg runs, mixed directions and symbols, ties in ts, a FLAT leg
    add_alpha(s, "m1", "BTCUSDT", "LONG", at(1.2), agent="A", size_usd=1000.0, strategy="s")
    add_alpha(s, "m1", "ETHUSDT", "SHORT", at(1.2), agent="A", size_usd=333.3)
    add_alpha(s, "m1", "ETHUSDT", "FLAT", at(1.2), agent="A")
    add_alpha(s, "m2", "BTCUSDT", "LONG", at(2), agent="B", score=0.7)
    add_alpha(s, "m2", "BTCUSDT", "LONG", at(2), agent="B", score=0.1, horizon_s=3 * 3600.0)
    add_alpha(s, "f1", "ETHUSDT", "FLAT", at(3), agent="A")
    add_alpha(s, "f2", "ETHUSDT", "FLAT", None, agent="B")
    add_alpha(s, "early", "BTCUSDT", "LONG", at(-3), agent="A")     # before the first bar
    add_alpha(s, "nosym", "DOGEUSDT", "SHORT", at(2), agent="A")    # no market
    add_alpha(s, "open", "BTCUSDT", "SHORT", at(9.5), agent="B")    # no exit bar yet
    add_alpha(s, "mix", "BTCUSDT", "LONG", at(3), agent="A", strategy="s")
    add_alpha(s, "mix", "DOGEUSDT", "LONG", at(3), agent="A", strategy="t")
    for k in range(8):
        add_alpha(s, f"r{k}", "ETHUSDT" if k % 2 else "BTCUSDT", "SHORT" if k % 3 else "LONG",
                  at(1 + k * 0.7), agent="AB"[k % 2], size_usd=100.0 * (k + 1) / 7)
    # telemetry: several records, wall time vs summed latency, NULL models
    add_telemetry(s, "m1", agent="A", latency_ms=12.5, cost_usd=0.013, tokens_in=10,
                  model="x", ts=at(1.2))
    add_telemetry(s, "m1", agent="A", latency_ms=7.25, cost_usd=0.0071, tokens_in=3,
                  model="", ts=at(1.2))
    add_telemetry(s, "m2", agent="B", start_ts=at(2), end_ts=at(2, 0.0123), cost_usd=0.1,
                  model="y")
    add_telemetry(s, "m2", agent="B", start_ts=at(2, 1), end_ts=at(2, 1.5), cost_usd=0.2,
                  model="x")
    add_telemetry(s, "tonly", agent="C", latency_ms=3.0, cost_usd=0.5, ts=at(4))
    for k in range(8):
        add_telemetry(s, f"r{k}", agent="AB"[k % 2], latency_ms=1.0 + k / 3,
                      cost_usd=0.01 * k / 3, ts=at(1 + k * 0.7))
    # pnl: revisions, per-symbol figures with and without legs, run level, pnl-only runs
    add_pnl(s, "m1", 12.5, symbol="BTCUSDT", ts=at(5))
    add_pnl(s, "m1", 13.75, symbol="btc/usdt", revision=1, ts=at(6))
    add_pnl(s, "m1", -4.1, symbol="ETHUSDT", ts=at(5))
    add_pnl(s, "m1", 2.2, symbol="SOLUSDT", ts=at(5))
    add_pnl(s, "m2", 7.0, ts=at(7))
    add_pnl(s, "m2", 8.0, revision=2, ts=None)
    add_pnl(s, "ponly", 1.5, agent="C", ts=at(3))
    add_pnl(s, "r3", -2.0 / 3, symbol="ETHUSDT", ts=at(9))
    add_pnl(s, "r4", 5.0 / 7, ts=at(9))
    return s


def _bits(v: Any) -> Any:
    if isinstance(v, float):
        return ("nan",) if math.isnan(v) else struct.pack("<d", v)
    if hasattr(v, "timestamp"):
        return v.replace(tzinfo=None)
    return v


def _rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["run_id"]: {k: _bits(v) for k, v in r.items()} for r in rows}


def test_spark_ledger_equals_the_embedded_ledger(tmp_path: Path, spark: Any) -> None:
    from alphatrace.ledger.reconcile import reconcile

    cfg = policy(POLICY)
    s = _edge_store(tmp_path / "s.duckdb")
    reconcile(s, cfg)
    export_parquet(s.con, tmp_path / "lake")
    cols = ", ".join(LEDGER_COLUMNS)
    want = _rows(s.con.sql(f"SELECT {cols} FROM ledger").to_arrow_table().to_pylist())
    s.close()
    assert {r["status"] for r in want.values()} >= {"realized", "open", "unpriced",
                                                    "no_signal"}
    # 7 shuffle partitions here, 1 in the CLI test below: results must not depend on them.
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        got = _rows([r.asDict() for r in ledger_frame(spark, tmp_path / "lake", cfg).collect()])
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    assert got.keys() == want.keys()
    for run_id, row in want.items():
        for k in LEDGER_COLUMNS:
            assert got[run_id][k] == row[k], (run_id, k, got[run_id][k], row[k])


def test_cli_writes_the_spark_ledger_as_parquet(tmp_path: Path, spark: Any) -> None:
    """`alphatrace ledger --engine spark --tables DIR --out DIR2 --policy P --json`."""
    import json

    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from alphatrace.cli.main import app
    from alphatrace.ledger.reconcile import reconcile

    s = _edge_store(tmp_path / "s.duckdb")
    reconcile(s, policy(POLICY))
    export_parquet(s.con, tmp_path / "lake")
    want = _rows(s.con.sql(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger ORDER BY ts, run_id"
                           ).to_arrow_table().to_pylist())
    s.close()
    (tmp_path / "p.yaml").write_text(POLICY)
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    try:
        res = CliRunner().invoke(app, ["ledger", "--engine", "spark", "--tables",
                                       str(tmp_path / "lake"), "--out", str(tmp_path / "out"),
                                       "--policy", str(tmp_path / "p.yaml"), "--json"])
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"engine": "spark", "runs": len(want),
                                      "out": str(tmp_path / "out")}
    got = _rows(pq.read_table(tmp_path / "out").to_pylist())
    assert got == want
    no_tables = CliRunner().invoke(app, ["ledger", "--engine", "spark", "--out", "x"])
    assert no_tables.exit_code != 0 and "--tables" in no_tables.output
