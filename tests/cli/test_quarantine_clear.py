"""`alphatrace quarantine clear [--file F] [--before TS]`: removes exactly the selected rows,
records each clear, and never creates a store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from alphatrace.cli.main import app

runner = CliRunner()


def _ingest(tmp_path: Path, db: Path, name: str, bad: int) -> Path:
    f = tmp_path / name
    f.write_text(json.dumps({"run_id": "r1", "agent": "A", "tokens_in": 10}) + "\n" + "{broken\n" * bad)
    out = runner.invoke(app, ["ingest", str(f), "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    return f


def _paths(db: Path) -> dict[str, int]:
    out = runner.invoke(app, ["quarantine", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    counts: dict[str, int] = {}
    for r in json.loads(out.stdout):
        counts[Path(r["path"]).name] = counts.get(Path(r["path"]).name, 0) + 1
    return counts


def test_clear_by_file_then_by_age_then_all_each_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    _ingest(tmp_path, db, "a.jsonl", 2)
    b = _ingest(tmp_path, db, "b.jsonl", 3)
    _ingest(tmp_path, db, "c.jsonl", 1)
    assert _paths(db) == {"a.jsonl": 2, "b.jsonl": 3, "c.jsonl": 1}

    dry = runner.invoke(app, ["quarantine", "clear", "--file", "a.jsonl", "--dry-run",
                              "--db", str(db), "--json"])
    assert json.loads(dry.stdout)["removed"] == 2 and _paths(db)["a.jsonl"] == 2

    out = runner.invoke(app, ["quarantine", "clear", "--file", "a.jsonl", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["removed"] == 2
    assert _paths(db) == {"b.jsonl": 3, "c.jsonl": 1}

    # b was ingested before c: date b's file back a day, then prune what is older than an hour
    con = duckdb.connect(str(db))
    con.execute("UPDATE ingested_files SET ingested_at = ingested_at - INTERVAL 1 DAY WHERE path = ?",
                [str(b)])
    con.close()
    out = runner.invoke(app, ["quarantine", "clear", "--before", "1h", "--db", str(db), "--json"])
    assert json.loads(out.stdout)["removed"] == 3
    assert _paths(db) == {"c.jsonl": 1}

    out = runner.invoke(app, ["quarantine", "clear", "--db", str(db)])
    assert out.exit_code == 0 and "removed 1 quarantined row" in out.stdout
    assert _paths(db) == {}

    con = duckdb.connect(str(db), read_only=True)
    rec = con.execute("SELECT seq, file, before IS NOT NULL, rows, paths FROM quarantine_clears "
                      "ORDER BY seq").fetchall()
    con.close()
    assert [(r[1], r[2], r[3]) for r in rec] == [("a.jsonl", False, 2), (None, True, 3), (None, False, 1)]
    assert json.loads(rec[0][4]) == {str(tmp_path / "a.jsonl"): 2}


def test_unknown_file_and_bad_time_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    _ingest(tmp_path, db, "events.jsonl", 1)
    out = runner.invoke(app, ["quarantine", "clear", "--file", "event.jsonl", "--db", str(db)])
    assert out.exit_code == 1
    assert out.output.strip() == "error: no quarantined file named 'event.jsonl'; did you mean 'events.jsonl'?"
    out = runner.invoke(app, ["quarantine", "clear", "--before", "last tuesday", "--db", str(db)])
    assert out.exit_code == 2 and "--before 'last tuesday'" in out.output


def test_clear_never_creates_a_store(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    out = runner.invoke(app, ["quarantine", "clear", "--db", str(db)])
    assert out.exit_code == 2 and not db.exists()


def test_before_is_compared_in_utc() -> None:
    from alphatrace.ledger.query import parse_since

    assert parse_since("2025-01-01T02:00:00+02:00") == dt.datetime(2025, 1, 1)
