"""CLI contract (docs/architecture.md §CLI): --json documents, tables with the status line, --out files,
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, add_bars, add_pnl, add_telemetry, at

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.duckdb")
    with Store(path) as s:
        add_bars(s, "BTCUSDT", [100.0 + i for i in range(30)])
        add_alpha(s, "r1", "BTC", "LONG", at(0, 30), agent="A", strategy="S")
        add_alpha(s, "r2", "BTC", "SHORT", at(2), agent="B", strategy="S")
        add_alpha(s, "r3", "BTC", "LONG", at(40), agent="A")
        add_alpha(s, "r4", "DOGE", "LONG", at(1), agent="B")
        add_telemetry(s, "r1", agent="A", latency_ms=300.0, cost_usd=0.1)
        add_telemetry(s, "t9", agent="A", cost_usd=0.2)
        add_pnl(s, "p9", 4.0)
    return path


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_reconcile_json_contract(db: str) -> None:
    res = cli("reconcile", "--db", db, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {k: doc[k] for k in ("legs", "realized", "open", "unpriced")} == {
        "legs": 4, "realized": 2, "open": 1, "unpriced": 1}
    assert doc["runs"] == 6 and len(doc["policy_hash"]) == 64


def test_reconcile_table_and_policy_option(db: str, tmp_path: Path) -> None:
    pol = tmp_path / "p.toml"
    pol.write_text("[reconcile]\nfee_bps = 0\nhorizon = \"2h\"\n")
    res = cli("reconcile", "--db", db, "--policy", str(pol))
    assert res.exit_code == 0 and "realized" in res.stdout
    rows = json.loads(cli("ledger", "--db", db, "--json").stdout)
    r1 = next(r for r in rows if r["run_id"] == "r1")
    assert abs(r1["paper_pnl_bps"] - (103 / 101 - 1) * 1e4) < 1e-9


def test_ledger_json_is_ordered_rows(db: str) -> None:
    cli("reconcile", "--db", db)
    res = cli("ledger", "--db", db, "--json")
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert [r["run_id"] for r in rows] == ["r1", "r4", "r2", "r3", "p9", "t9"]
    assert rows[0]["ts"] == "2024-01-01T00:30:00.000000Z"
    only = json.loads(cli("ledger", "--db", db, "--json", "--status", "open").stdout)
    assert [r["run_id"] for r in only] == ["r3"]
    agent = json.loads(cli("ledger", "--db", db, "--json", "--agent", "B").stdout)
    assert [r["run_id"] for r in agent] == ["r4", "r2"]
    since = json.loads(cli("ledger", "--db", db, "--json", "--since", "2024-01-01T01:30").stdout)
    assert [r["run_id"] for r in since] == ["r2", "r3"]


def test_ledger_table_shows_the_status_line(db: str) -> None:
    cli("reconcile", "--db", db)
    res = cli("ledger", "--db", db)
    assert res.exit_code == 0
    flat = " ".join(res.stdout.split())
    assert "6 runs: 2 realized · 1 open · 1 unpriced (signals without prices) · 2 no_signal" in flat
    assert "1 telemetry without signal, 1 pnl for unknown runs" in flat


def test_ledger_reminds_to_reconcile_after_new_files(db: str, tmp_path: Path) -> None:
    assert "nothing reconciled yet" in " ".join(cli("ledger", "--db", db).stdout.split())
    cli("reconcile", "--db", db)
    f = tmp_path / "more.jsonl"
    f.write_text('{"run_id": "x", "agent": "A", "latency_ms": 1}\n')
    cli("ingest", str(f), "--db", db)
    assert "since the last reconcile" in " ".join(cli("ledger", "--db", db).stdout.split())


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_ledger_out_files(db: str, tmp_path: Path, suffix: str) -> None:
    cli("reconcile", "--db", db)
    out = tmp_path / f"ledger{suffix}"
    res = cli("ledger", "--db", db, "--out", str(out), "--status", "realized")
    assert res.exit_code == 0 and "wrote 2 runs" in res.stdout
    table = pq.read_table(out) if suffix == ".parquet" else pcsv.read_csv(out)
    assert table.column("run_id").to_pylist() == ["r1", "r2"]
    assert "paper_pnl_bps" in table.column_names and table.num_columns >= 29


@pytest.mark.parametrize(("args", "message"), [
    (["ledger", "--status", "closed"], "status 'closed' is not one of"),
    (["ledger", "--since", "last tuesday"], "--since 'last tuesday'"),
    (["ledger", "--out", "x.xlsx"], "must end in .parquet or .csv"),
    (["ledger", "--out", "x.csv", "--json"], "either --json or --out"),
])
def test_user_mistakes_are_one_red_line(db: str, args: list[str], message: str) -> None:
    cli("reconcile", "--db", db)
    res = cli(*args, "--db", db)
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert message in text and "Traceback" not in res.output


def test_bad_policy_names_file_line_and_column(db: str, tmp_path: Path) -> None:
    pol = tmp_path / "bad.yaml"
    pol.write_text("reconcile:\n  fee_bps: 5\n  horizon: forever\n")
    res = cli("reconcile", "--db", db, "--policy", str(pol))
    assert res.exit_code == 2
    assert f"{pol}:3:3: reconcile.horizon: " in res.output.replace("\n", "")


def test_ledger_on_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    res = cli("ledger", "--db", str(tmp_path / "nope.duckdb"))
    assert res.exit_code == 2 and "no alphatrace store" in res.output


def test_agents_json(db: str) -> None:
    cli("reconcile", "--db", db)
    res = cli("agents", "--db", db, "--json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert [a["agent"] for a in doc] == ["A", "B"]
    a = doc[0]
    assert (a["runs"], a["realized_runs"], a["total_cost_usd"]) == (3, 1, pytest.approx(0.3))
    table = cli("agents", "--db", db)
    assert table.exit_code == 0 and "agents" in table.stdout


def test_empty_store_reconciles_to_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.duckdb")
    doc = json.loads(cli("reconcile", "--db", db, "--json").stdout)
    assert (doc["legs"], doc["runs"]) == (0, 0)
    assert json.loads(cli("ledger", "--db", db, "--json").stdout) == []
    assert json.loads(cli("agents", "--db", db, "--json").stdout) == []


def test_a_store_without_the_ledger_tables_says_what_to_do(tmp_path: Path) -> None:
    db = str(tmp_path / "old.duckdb")
    with Store(db) as s:
        s.con.execute("DELETE FROM schema_migrations WHERE version = 6")
    res = cli("ledger", "--db", db)
    assert res.exit_code == 2 and "run `alphatrace reconcile`" in " ".join(res.output.split())
