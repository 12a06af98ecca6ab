"""The Spark engine through Spark Connect, as against a remote cluster: a Connect server in
its own process (tests/spark/connect_server.py), and `alphatrace` in another with only
`SPARK_REMOTE=sc://…` (and the server's token) set. It needs no SparkContext in the client:
the commands give what the embedded engine gives on the same data."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.store import Store
from alphatrace.store.export import export_parquet
from alphatrace.store.ingest import ingest_paths
from tests.spark.cases import same
from tests.spark.test_sharded_ingest import TABLES, _files, _rows

pytestmark = pytest.mark.slow  # two JVM starts; see `make test-fast`

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a client of a running Connect server."""
    pytest.importorskip("pyspark.sql.connect.session")
    pytest.importorskip("grpc_status")  # the Connect client's (the [spark] extra has them)
    pytest.importorskip("zstandard")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17+ (not on PATH)")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env.update(SPARK_CONNECT_AUTHENTICATE_TOKEN=secrets.token_hex(16),
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    log = tmp_path_factory.mktemp("connect") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tests/spark/connect_server.py"),
                                 str(port)], env=env, stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600  # a JVM start on a loaded machine: no speed bound
        while b"serving" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Connect server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {**env, "SPARK_REMOTE": f"sc://localhost:{port}"}
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


def _alphatrace(env: dict[str, str], cwd: Path, *args: str) -> Any:
    res = subprocess.run([sys.executable, "-c", "from alphatrace.cli.main import main; main()",
                          *args], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_ingest_on_connect_equals_the_embedded_ingest(remote: dict[str, str],
                                                      tmp_path: Path) -> None:
    files = _files(tmp_path)
    with Store(tmp_path / "embedded.duckdb") as store:
        embedded = ingest_paths(store, files)
        export_parquet(store.con, tmp_path / "embedded", list(TABLES))
    doc = _alphatrace(remote, tmp_path, "ingest", *files, "--engine", "spark", "--tables",
                      str(tmp_path / "spark"), "--json")
    assert (embedded.accepted, embedded.duplicates, embedded.quarantined) == (34, 10, 4)
    assert doc == {"accepted": 34, "duplicates": 10, "quarantined": 4, "files": 3}
    con = duckdb.connect()
    for table in TABLES:
        want = _rows(con, tmp_path / "embedded", table)
        assert want and _rows(con, tmp_path / "spark", table) == want, table


def test_gates_and_confidence_on_connect_equal_the_embedded_engine(
        remote: dict[str, str], tmp_path: Path, demo_slice: Path) -> None:
    shutil.copy(demo_slice, tmp_path / "emb.duckdb")
    shutil.copy(demo_slice, tmp_path / "log.duckdb")
    emb, log, lake = (str(tmp_path / n) for n in ("emb.duckdb", "log.duckdb", "lake"))

    def embedded(*args: str) -> Any:
        res = CliRunner().invoke(app, list(args))
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    embedded("export", "--to", "parquet", lake, "--db", emb, "--json")
    # --dry-run: the documents without records, whose hashes hold the wall clock of the write
    want = embedded("gates", "evaluate", "--db", emb, "--dry-run", "--json")
    got = _alphatrace(remote, tmp_path, "--engine", "spark", "gates", "evaluate", "--tables",
                      lake, "--db", log, "--dry-run", "--json")
    same(want, got)
    assert len(want["decisions"]) > 30 and {d["action"] for d in want["decisions"]} >= {
        "kill", "promote"}
    same(embedded("confidence", "--db", emb, "--json"),
         _alphatrace(remote, tmp_path, "--engine", "spark", "confidence", "--tables", lake,
                     "--db", log, "--json"))
