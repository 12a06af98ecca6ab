"""`alphatrace keys ...` and `alphatrace serve` errors, as a user sees them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from alphatrace.cli.main import app

runner = CliRunner()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "k.duckdb")
    res = runner.invoke(app, ["keys", "create", "--name", "agent-1", "--scope", "ingest", "--json", "--db", db])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"name", "scope", "key"} and doc["scope"] == "ingest"
    assert doc["key"].startswith("atk_") and len(doc["key"]) > 40
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json", "--db", db]).stdout)
    assert [k["name"] for k in listed] == ["agent-1"] and listed[0]["revoked"] is False
    assert doc["key"] not in json.dumps(listed) and doc["key"].startswith(listed[0]["prefix"])
    rev = runner.invoke(app, ["keys", "revoke", "agent-1", "--json", "--db", db])
    assert json.loads(rev.stdout) == {"name": "agent-1", "revoked": True}
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json", "--db", db]).stdout)
    assert listed[0]["revoked"] is True and listed[0]["revoked_at"] is not None
    table = runner.invoke(app, ["keys", "create", "--name", "r", "--scope", "read", "--db", db])
    assert table.exit_code == 0 and "Shown once" in table.stdout


def test_key_mistakes_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "k.duckdb")
    res = runner.invoke(app, ["keys", "create", "--name", "x", "--scope", "root", "--db", db])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "ingest, read, admin" in res.output
    res = runner.invoke(app, ["keys", "revoke", "ghost", "--db", db])
    assert res.exit_code == 1 and "no API key named 'ghost'" in res.output


def test_serve_on_a_locked_store_says_why(tmp_path: Path) -> None:
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, time, sys; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
        "time.sleep(60)"), str(db)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        t0 = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "serve", "--db", str(db),
                              "--port", "1"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and time.monotonic() - t0 < 60
        assert "another process" in res.stderr and "Traceback" not in res.stderr
    finally:
        holder.kill()
        holder.wait()
