"""`alphatrace export --to parquet`: every exported table holds the store's rows, with its
timestamps as microsecond UTC instants, in a deterministic file; secrets are not exported."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.errors import StoreError
from alphatrace.store import Store
from alphatrace.store.export import MANIFEST, export_parquet
from tests.ledger.helpers import add_alpha, add_bars, add_pnl, add_telemetry, at, run_reconcile

UTC = dt.UTC


def _store(path: Path) -> Store:
    s = Store(path)
    add_bars(s, "BTCUSDT", [100.0, 101.0, 103.0, 102.0, 104.0])
    add_alpha(s, "r1", "BTCUSDT", "LONG", at(0, 30), agent="A", horizon_s=3600)
    add_alpha(s, "r2", "BTCUSDT", "SHORT", at(1, 10), agent="B", horizon_s=7200)
    add_telemetry(s, "r1", agent="A", cost_usd=0.25, tokens_in=10)
    add_pnl(s, "r2", -12.5, ts=at(4))
    run_reconcile(s)
    s.con.execute("INSERT INTO api_keys (name, scope, key_hash, prefix, created_at) VALUES "
                  "('n', 'read', 'secret-hash', 'at_', ?)", [at(0)])
    return s


def test_rows_and_instants_survive_the_round_trip(tmp_path: Path) -> None:
    s = _store(tmp_path / "s.duckdb")
    done = export_parquet(s.con, tmp_path / "out")
    by_table = {e.table: e for e in done}
    bars = pq.read_table(tmp_path / "out" / "bars.parquet")
    assert bars.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    # bar i opens at 2024-01-01 00:00 + i hours, UTC, whatever the reader's zone
    assert bars.column("ts").to_pylist() == [dt.datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(5)]
    assert bars.column("open").to_pylist() == [100.0, 101.0, 103.0, 102.0, 104.0]
    ledger = pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    assert [r["run_id"] for r in ledger] == ["r1", "r2"]
    assert ledger[0]["ts"] == dt.datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    assert ledger[1]["realized_pnl_bps"] == -12.5  # the external figure, as given
    for table in ("alpha", "telemetry", "pnl", "legs", "ledger", "bars"):
        n = s.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        assert by_table[table].rows == n == pq.read_metadata(tmp_path / "out" / f"{table}.parquet").num_rows
    assert not (tmp_path / "out" / "api_keys.parquet").exists()
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["tables"]["ledger"]["rows"] == 2 and manifest["timestamps"] == "us, UTC"
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_the_same_store_gives_the_same_files(tmp_path: Path) -> None:
    s = _store(tmp_path / "s.duckdb")
    a = {e.table: e.sha256 for e in export_parquet(s.con, tmp_path / "a")}
    b = {e.table: e.sha256 for e in export_parquet(s.con, tmp_path / "b")}
    assert a == b and len(a) >= 10


def test_unknown_table_is_named(tmp_path: Path) -> None:
    s = _store(tmp_path / "s.duckdb")
    with pytest.raises(StoreError, match=r"cannot export 'api_keys': the tables are telemetry"):
        export_parquet(s.con, tmp_path / "x", ["ledger", "api_keys"])


def test_cli_exports_chosen_tables_as_json(tmp_path: Path) -> None:
    _store(tmp_path / "s.duckdb").close()
    res = CliRunner().invoke(app, ["export", "--to", "parquet", str(tmp_path / "o"), "--db",
                                   str(tmp_path / "s.duckdb"), "--tables", "ledger,bars", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [(d["table"], d["rows"]) for d in doc] == [("bars", 5), ("ledger", 2)]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "_alphatrace.json", "bars.parquet", "ledger.parquet"]
