"""A kill -9 during ingest leaves a consistent store that a re-run completes without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphatrace.store import Store
from alphatrace.store.ingest import ingest_paths

pytestmark = pytest.mark.slow  # see `make test-fast`

CHILD = """
import sys
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_paths
s = Store(sys.argv[1])
ingest_paths(s, [sys.argv[2]])
print("first file committed", flush=True)
ingest_paths(s, [sys.argv[3]])
print("second file committed", flush=True)
"""


def _write(path: Path, prefix: str, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"run_id": f"{prefix}{i}", "agent": "A", "latency_ms": i % 900,
                                 "tokens_in": i, "tokens_out": 7, "cost_usd": 0.001}) + "\n")


def test_kill_9_mid_file_then_rerun(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    _write(small, "s", 1_000)
    _write(big, "b", 400_000)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(small), str(big)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "first file committed"
    time.sleep(0.3)  # well inside the second file's transaction
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_mid_file = proc.returncode == -signal.SIGKILL

    with Store(db) as s:  # reopens: the WAL replays to a consistent state
        n = s.con.execute("SELECT count(*) FROM telemetry").fetchall()[0][0]
        files = s.con.execute("SELECT count(*) FROM ingested_files").fetchall()[0][0]
        # all or nothing per file: either only the first file, or both
        assert (n, files) in {(1_000, 1), (401_000, 2)}
        # the identity keys commit with their events (migration 0015): one per stored event
        assert s.con.execute("SELECT count(*) FROM event_identity").fetchall()[0][0] == n
        if killed_mid_file:
            assert (n, files) == (1_000, 1)
        r = ingest_paths(s, [str(small), str(big)])
        assert r.accepted == 401_000 - n
        assert r.duplicates == n
        total, distinct = s.con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM telemetry").fetchall()[0]
        assert total == distinct == 401_000
        assert s.con.execute("SELECT count(*) FROM event_identity").fetchall()[0][0] == 401_000
    assert killed_mid_file, "the kill landed after the second file committed; enlarge the file"
