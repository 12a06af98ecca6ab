"""Several writer processes at once, through the SDK and raw HTTP with retries: every event is
stored exactly once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from alphatrace.sdk.follow import closed_files
from alphatrace.store import Store
from tests.server.conftest import start_server

REPO = Path(__file__).resolve().parents[2]


def raw_writer(url: str, key: str, agent: str, batches: int, size: int) -> None:
    """Posts each batch twice (a client retry), from its own connection."""
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as c:
        for b in range(batches):
            batch = [{"type": "telemetry", "run_id": f"{agent}-{b}-{i}", "agent": agent,
                      "event_id": f"{agent}-{b}-{i}", "tokens_in": i, "ts": 1_740_816_000 + b}
                     for i in range(size)]
            for _ in range(2):
                res = c.post("/v1/events", json=batch)
                assert res.status_code == 200, res.text


@pytest.mark.slow
def test_many_writers_exactly_once(tmp_path: Path) -> None:
    """Three SDK processes over HTTP, three raw clients retrying every batch, and a spool
    folder the server picks up itself, all at once."""
    spool = tmp_path / "spool"
    spool.mkdir()
    srv = start_server(tmp_path, "--follow", str(spool))
    try:
        spooler = subprocess.Popen([sys.executable, "-m", "tests.sdk.agent_proc", "Spooled", "10",
                                    "--spool", str(spool)], cwd=REPO)
        sdk_procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.sdk.agent_proc", f"Sdk{i}", "200", "--url", srv.url,
                 "--key", srv.keys["ingest"], "--spool", str(tmp_path / f"spool{i}")], cwd=REPO)
            for i in range(3)
        ]
        threads = [threading.Thread(target=raw_writer,
                                    args=(srv.url, srv.keys["ingest"], f"Raw{i}", 6, 250))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for p in [*sdk_procs, spooler]:
            assert p.wait(120) == 0
        # Nothing fell back to the SDK processes' own spools: the collector took it all.
        for i in range(3):
            assert not (tmp_path / f"spool{i}").exists() or not closed_files([tmp_path / f"spool{i}"])
        with httpx.Client(base_url=srv.url, headers=srv.auth("read")) as c:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the spool is picked up within a poll or two
                agents = {a["agent"]: a for a in c.get("/v1/agents").json()["agents"]}
                if agents.get("Spooled", {}).get("events") == 30:
                    break
                time.sleep(0.2)
        assert agents["Spooled"]["events"] == 30
        assert list(spool.glob("*.jsonl.done")) and not closed_files([spool])
        for i in range(3):
            assert agents[f"Sdk{i}"]["events"] == 600 and agents[f"Sdk{i}"]["runs_seen"] == 200
            assert agents[f"Raw{i}"]["events"] == 1500 and agents[f"Raw{i}"]["runs_seen"] == 1500
    finally:
        srv.stop()
    with Store(srv.db, read_only=True) as store:
        for table, n in (("telemetry", 3 * 400 + 3 * 1500 + 20), ("alpha", 3 * 200 + 10)):
            total, distinct = store.con.execute(
                f"SELECT count(*), count(DISTINCT event_id) FROM {table}").fetchall()[0]
            assert total == distinct == n
        assert [r[0] for r in store.con.execute("SELECT accepted FROM spool_files").fetchall()] == [30]
    assert "Traceback" not in srv.log.read_text()
