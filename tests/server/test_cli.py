"""`alphatrace keys ...` and `alphatrace serve` errors, as a user sees them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from alphatrace.cli.main import app
from tests.server.conftest import serve_with_port_taken, start_server

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


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    port, res = serve_with_port_taken(tmp_path, "--port")
    assert res.returncode == 2
    out = res.stdout + res.stderr
    assert f"127.0.0.1:{port} is already in use" in out and "--port" in out
    # Nothing claims the server started, and the error is the only thing said about it.
    assert "collector on" not in out and "startup" not in out.lower() and "Errno" not in out
    assert "Traceback" not in out


def test_serve_says_each_warning_once(tmp_path: Path) -> None:
    srv = start_server(tmp_path, keys=False)
    srv.stop()
    log = srv.log.read_text()
    assert log.count("no API keys") == 1, log
    assert log.count("alphatrace collector on") == 1


def test_serve_rejects_bad_limits(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "--db", str(tmp_path / "c.duckdb"), "--header-timeout", "0"])
    assert res.exit_code == 2 and "timeouts must be positive" in res.output
