"""The ingest CLI contract (docs/architecture.md §CLI): --json is one document, errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from alphatrace.cli.main import app

runner = CliRunner()


def _events(tmp_path: Path) -> Path:
    f = tmp_path / "e.jsonl"
    f.write_text(
        json.dumps({"run_id": "r1", "agent": "A", "tokens_in": 10}) + "\n"
        + "{broken\n"
        + json.dumps({"run_id": "r1", "realized_pnl_bps": 4.5}) + "\n"
    )
    return f


def test_ingest_json_contract_and_idempotency(tmp_path: Path) -> None:
    db, f = tmp_path / "s.duckdb", _events(tmp_path)
    first = runner.invoke(app, ["ingest", str(f), "--db", str(db), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"accepted": 2, "duplicates": 0, "quarantined": 1, "files": 1}
    second = runner.invoke(app, ["ingest", str(f), "--db", str(db), "--json"])
    # the bad line was quarantined by the first run: a duplicate now
    assert json.loads(second.stdout) == {"accepted": 0, "duplicates": 3, "quarantined": 0, "files": 1}


def test_quarantine_lists_file_line_reason(tmp_path: Path) -> None:
    db, f = tmp_path / "s.duckdb", _events(tmp_path)
    runner.invoke(app, ["ingest", str(f), "--db", str(db)])
    out = runner.invoke(app, ["quarantine", "--db", str(db), "--json"])
    assert out.exit_code == 0
    (rec,) = json.loads(out.stdout)
    assert (rec["path"], rec["line"], rec["reason"]) == (str(f), 2, "not valid JSON")
    table = runner.invoke(app, ["quarantine", "--db", str(db)])
    assert "not valid JSON" in table.stdout


def test_db_from_environment(tmp_path: Path) -> None:
    db, f = tmp_path / "env.duckdb", _events(tmp_path)
    out = runner.invoke(app, ["ingest", str(f), "--json"], env={"ALPHATRACE_DB": str(db)})
    assert out.exit_code == 0 and db.exists()


def test_missing_file_is_one_line_error_no_traceback(tmp_path: Path) -> None:
    out = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "s.duckdb")])
    assert out.exit_code == 2
    assert "no such file" in out.output and "Traceback" not in out.output


def test_schema_export_is_json_schema(tmp_path: Path) -> None:
    out = runner.invoke(app, ["schema", "--kind", "alpha"])
    s = json.loads(out.stdout)
    assert s["required"] == ["run_id", "agent", "symbol", "direction"]
    assert s["properties"]["direction"]["pattern"].startswith("^(?i:")
    bad = runner.invoke(app, ["schema", "--kind", "trades"])
    assert bad.exit_code == 2
