"""`alphatrace --url URL --key KEY COMMAND` runs the command on that server (issue #14 item 5):
the same output and exit code as the command on a local copy of the store; files it reads are
uploaded, files it writes come back; a key without the command's scope, no key, an
unreachable server are each one clear line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alphatrace.demo import shipped
from alphatrace.demo.pipeline import run_demo
from alphatrace.governance import signing
from tests.server.conftest import Server, start_server

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {k: v for k, v in os.environ.items()
       if k not in ("ALPHATRACE_DB", "ALPHATRACE_URL", "ALPHATRACE_API_KEY", "COLUMNS")}
ENV["PYTHONPATH"] = str(SRC)  # the CLI under test, whatever the working directory
WRITTEN_AT = {"created_at", "hash", "prev_hash", "eval_id"}


def cli(cwd: Path, *args: str, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "alphatrace.cli.main", *args], cwd=cwd,
                          input=stdin, capture_output=True, timeout=300,
                          env={**ENV, "COLUMNS": "120", **(env or {})})


@dataclass
class Setup:
    server: Server
    local: Path  # a copy of the served store, for the answers without a server
    work: Path  # the caller's working directory
    agent: str
    run_id: str

    def remote(self, *args: str, scope: str = "admin", **kw: Any
               ) -> subprocess.CompletedProcess[bytes]:
        return cli(self.work, *args, "--url", self.server.url, "--key", self.server.keys[scope],
                   **kw)

    def here(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        return cli(self.work, *args, "--db", str(self.local), **kw)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("remote_cli")
    run_demo(root / "demo.duckdb", runs_per_agent=30)
    (root / "served").mkdir()
    (root / "work").mkdir()
    shutil.copy(root / "demo.duckdb", root / "served" / "collector.duckdb")
    shutil.copy(root / "demo.duckdb", root / "local.duckdb")
    rows = json.loads(cli(root, "ledger", "--json", "--db", str(root / "local.duckdb")).stdout)
    # --no-pipeline: the remote copy must change only by the commands compared here
    srv = start_server(root / "served", "--no-pipeline")
    try:
        yield Setup(srv, root / "local.duckdb", root / "work", rows[0]["agent"], rows[0]["run_id"])
    finally:
        srv.stop()


def test_read_commands_print_what_they_print_on_the_store_itself(setup: Setup) -> None:
    s = setup
    reads = [
        ("ledger", "--json"), ("ledger", "--agent", s.agent), ("agents",), ("agents", "--json"),
        ("explain", s.run_id, "--json"), ("explain", s.run_id), ("confidence", "--json"),
        ("confidence",), ("quarantine", "--json"), ("market", "symbols", "--json"),
        ("market", "resolve", "BTC", "NOPE", "--json"), ("exclusions", "list", "--json"),
        ("gates", "backtest", "--json"), ("gates", "evaluate", "--dry-run", "--json"),
        ("audit", "show", s.agent, "--json"), ("audit", "verify", "--json"),
        ("forensics", "--agent", s.agent, "--json"),
        ("ledger", "--agent", "Nobody"),  # an error: same line, same exit code
        ("ledger", "--status", "bogus"),
    ]
    for args in reads:
        want, got = s.here(*args), s.remote(*args, scope="read")
        assert (got.returncode, got.stdout, got.stderr) == (
            want.returncode, want.stdout, want.stderr), args
    assert s.here("ledger", "--agent", "Nobody").returncode == 1
    # --url and --key may stand anywhere, and come from the environment too
    first = cli(s.work, "--url", s.server.url, "--key", s.server.keys["read"], "agents", "--json")
    env = cli(s.work, "agents", "--json", env={"ALPHATRACE_URL": s.server.url,
                                               "ALPHATRACE_API_KEY": s.server.keys["read"]})
    want = s.here("agents", "--json")
    assert first.stdout == env.stdout == want.stdout and first.returncode == env.returncode == 0


def test_files_go_up_and_outputs_come_back(setup: Setup, tmp_path: Path) -> None:
    s = setup
    # ingest: a relative file, an absolute one, standard input; a bad line quarantined
    (s.work / "more.jsonl").write_text(json.dumps(
        {"type": "telemetry", "run_id": "cli1", "agent": "Remote", "latency_ms": 5}) + "\n"
        + "{broken\n")
    elsewhere = tmp_path / "abs.jsonl"
    elsewhere.write_text(json.dumps({"type": "telemetry", "run_id": "cli2", "agent": "Remote",
                                     "latency_ms": 6}) + "\n")
    piped = json.dumps({"type": "telemetry", "run_id": "cli3", "agent": "Remote",
                        "latency_ms": 7}).encode() + b"\n"
    for args, kw in ((("ingest", "more.jsonl", "--json"), {}),
                     (("ingest", str(elsewhere), "--json"), {}),
                     (("ingest", "-", "--json"), {"stdin": piped})):
        want, got = s.here(*args, **kw), s.remote(*args, scope="ingest", **kw)
        assert got.returncode == 0, got.stderr
        assert got.stdout == want.stdout, args
    q = json.loads(s.remote("quarantine", "--json", scope="read").stdout)
    assert any(r.get("path") == "more.jsonl" for r in (q if isinstance(q, list) else q["rows"]))
    # market import: the file name gives the symbol and interval, as locally
    bars = sorted(shipped.data_dir().glob("BTCUSDT_1h.parquet"))[0]
    want, got = s.here("market", "import", str(bars), "--json"), s.remote(
        "market", "import", str(bars), "--json", scope="ingest")
    assert (got.returncode, got.stdout) == (want.returncode, want.stdout)
    for args in (("reconcile", "--json"), ("exclusions", "apply", "--json")):
        want, got = s.here(*args), s.remote(*args)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), args
    want_g, got_g = s.here("gates", "evaluate", "--json"), s.remote("gates", "evaluate", "--json")
    assert got_g.returncode == want_g.returncode == 0, got_g.stderr

    def strip(doc: Any) -> Any:
        if isinstance(doc, list):
            return [strip(v) for v in doc]
        if isinstance(doc, dict):
            return {k: strip(v) for k, v in doc.items() if k not in WRITTEN_AT}
        return doc

    assert strip(json.loads(got_g.stdout)) == strip(json.loads(want_g.stdout))
    # an output file comes back where it was asked for, as the local run writes it
    (tmp_path / "sub").mkdir()
    for out in ("runs.csv", str(tmp_path / "sub" / "runs.parquet")):
        s.here("ledger", "--out", out.replace("runs.", "local.") if "/" not in out else
               str(tmp_path / "local.parquet"))
        got = s.remote("ledger", "--out", out, scope="read")
        assert got.returncode == 0, got.stderr
        assert (s.work / out if "/" not in out else Path(out)).exists()
    assert (s.work / "runs.csv").read_bytes() == (s.work / "local.csv").read_bytes()
    report = s.remote("report", "--out", "report.html", scope="read")
    assert report.returncode == 0, report.stderr
    assert (s.work / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    # a policy file is uploaded; an error in it names the file as given
    (s.work / "bad.yaml").write_text("confidence:\n  decay: [1\n")
    want, got = s.here("confidence", "--policy", "bad.yaml"), s.remote(
        "confidence", "--policy", "bad.yaml", scope="read")
    assert (got.returncode, got.stderr) == (want.returncode, want.stderr) and got.returncode != 0


def test_audit_sign_signs_with_the_key_here_and_appends_the_heads_file_here(
        setup: Setup, tmp_path: Path) -> None:
    s = setup
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    signing.generate(key, pub)
    heads = tmp_path / "heads.jsonl"
    got = cli(s.work, "audit", "sign", "--key", str(key), "--heads", str(heads), "--json",
              "--url", s.server.url, "--api-key", s.server.keys["admin"])
    assert got.returncode == 0, got.stderr
    signed = json.loads(got.stdout)
    assert signed["hash"] in heads.read_text()
    check = s.remote("audit", "verify", "--pubkey", str(pub), "--heads", str(heads), "--json",
                     scope="read")
    assert check.returncode == 0, check.stdout + check.stderr


def test_refusals_are_one_clear_line(setup: Setup) -> None:
    s = setup
    denied = s.remote("ingest", "x.jsonl", scope="read")
    assert denied.returncode == 2
    assert denied.stderr.decode() == (
        f"error: the server at {s.server.url} refused the key (403): `alphatrace ingest` needs "
        "a key with scope ingest or admin; key 'test-read' has scope read\n")
    assert b"scope admin" in s.remote("gates", "evaluate", scope="read").stderr
    assert b"scope read" in s.remote("agents", scope="ingest").stderr
    assert b"scope admin" in s.remote("keys", "list", scope="read").stderr
    nokey = cli(s.work, "agents", "--url", s.server.url)
    assert nokey.returncode == 2 and b"needs an API key" in nokey.stderr
    badkey = cli(s.work, "agents", "--url", s.server.url, "--key", "nope")
    assert badkey.returncode == 2 and b"401" in badkey.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = cli(s.work, "agents", "--url", f"http://127.0.0.1:{port}", "--key", "k")
    assert gone.returncode == 2
    assert gone.stderr.decode().startswith(
        f"error: cannot reach the alphatrace server at http://127.0.0.1:{port}")
    both = s.remote("agents", "--db", "x.duckdb")
    assert both.returncode == 2 and b"--db and --url" in both.stderr
    assert b"runs on this machine only" in s.remote("demo").stderr
    # $ALPHATRACE_URL (set for the agents' SDK) yields to an explicit --db, and never sends
    # `serve`, `follow` or `demo` away
    env = {"ALPHATRACE_URL": s.server.url, "ALPHATRACE_API_KEY": s.server.keys["read"]}
    here = cli(s.work, "agents", "--json", "--db", str(s.local), env=env)
    assert here.returncode == 0 and here.stdout == s.here("agents", "--json").stdout
    follow = cli(s.work, "follow", str(s.work / "nothing"), "--once", "--db",
                 str(s.work / "f.duckdb"), env=env)
    assert b"runs on this machine only" not in follow.stderr
    assert s.remote("version").stdout.strip() == cli(s.work, "version").stdout.strip()


def test_the_server_refuses_paths_outside_the_scratch_folder(setup: Setup) -> None:
    """A key reaches the served store and the files it sent, nothing else on the server."""
    from alphatrace.client import http

    for argv in (["ingest", "/etc/passwd"], ["ledger", "--db", "/tmp/other.duckdb"],
                 ["confidence", "--policy=../secret.yaml"], ["report", "--out", "~/x.html"],
                 ["ingest", "--follow", "spool", "--json"]):
        with pytest.raises(http.RemoteError, match="400"):
            http.post(s_url(setup), "/v1/cli", setup.server.keys["admin"],
                      {"argv": argv, "columns": 80})


def s_url(setup: Setup) -> str:
    return setup.server.url


def test_a_key_created_remotely_works_at_once(setup: Setup) -> None:
    s = setup
    made = s.remote("keys", "create", "--name", "made-remotely", "--scope", "read", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    got = cli(s.work, "agents", "--json", "--url", s.server.url, "--key", key)
    assert got.returncode == 0 and got.stdout == s.remote("agents", "--json").stdout
    gone = s.remote("keys", "revoke", "made-remotely")
    assert gone.returncode == 0, gone.stderr
    again = cli(s.work, "agents", "--url", s.server.url, "--key", key)
    assert again.returncode == 2 and b"401" in again.stderr
