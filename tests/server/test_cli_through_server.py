"""Every CLI command works on a store held by a running server (issue #14 item 5, first step):
the server writes a discovery file beside the store, and a command that finds it runs through
the server, with the same output and exit code as without a server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from alphatrace.store import Store
from alphatrace.store.discovery import path_for
from tests.server.conftest import start_server
from tests.server.test_reads import fill

ENV = {k: v for k, v in os.environ.items() if k not in ("ALPHATRACE_DB", "COLUMNS")}


def cli(cwd: Path, *args: str, stdin: bytes | None = None,
        columns: int = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "alphatrace.cli.main", *args], cwd=cwd,
                          input=stdin, capture_output=True, timeout=300,
                          env={**ENV, "COLUMNS": str(columns)})


READS = [
    ("ledger", "--json"), ("agents", "--json"), ("quarantine", "--json"), ("agents",),
    ("ledger", "--agent", "L"), ("confidence", "--json"), ("ledger", "--agent", "Nobody"),
]


def test_commands_on_a_served_store_give_what_they_give_without_a_server(tmp_path: Path) -> None:
    db = tmp_path / "collector.duckdb"
    with Store(db) as store:
        fill(store)
    # Without a server: what each command prints, and its exit code.
    alone = {args: cli(tmp_path, *args, "--db", db.name) for args in READS}
    assert alone[("ledger", "--agent", "Nobody")].returncode == 1  # an error goes through too

    srv = start_server(tmp_path, "--no-pipeline")  # keep the hand-made ledger of fill()
    try:
        found = path_for(db)
        assert stat.S_IMODE(found.stat().st_mode) == 0o600  # the token is its owner's alone
        assert json.loads(found.read_text())["url"] == srv.url
        for args, want in alone.items():
            got = cli(tmp_path, *args, "--db", db.name)
            assert (got.returncode, got.stdout) == (want.returncode, want.stdout), args

        # Writes go through too: a relative path, then standard input, then a reconcile.
        (tmp_path / "more.jsonl").write_text(json.dumps(
            {"type": "telemetry", "run_id": "n1", "agent": "N", "latency_ms": 5}) + "\n")
        ing = cli(tmp_path, "ingest", "more.jsonl", "--db", db.name, "--json")
        assert ing.returncode == 0, ing.stderr
        assert json.loads(ing.stdout)["accepted"] == 1
        piped = cli(tmp_path, "ingest", "-", "--db", db.name, "--json", stdin=json.dumps(
            {"type": "telemetry", "run_id": "n2", "agent": "N", "latency_ms": 6}).encode() + b"\n")
        assert json.loads(piped.stdout)["accepted"] == 1, piped.stderr
        assert cli(tmp_path, "reconcile", "--db", db.name).returncode == 0
        runs = {r["run_id"] for r in json.loads(cli(tmp_path, "ledger", "--json", "--db",
                                                       db.name).stdout)}
        assert {"n1", "n2"} <= runs

        # What cannot run beside a server says so, with the server's address.
        demo = cli(tmp_path, "demo", "--db", db.name)
        assert demo.returncode != 0 and srv.url in demo.stderr.decode()
    finally:
        srv.stop()
    assert not path_for(db).exists()  # removed when the server stops
    again = cli(tmp_path, "agents", "--json", "--db", db.name)  # local again
    assert again.returncode == 0 and "N" in {r["agent"] for r in json.loads(again.stdout)}
