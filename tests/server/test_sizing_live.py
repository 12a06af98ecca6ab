"""A kill reaches the sizing endpoint and the SDK (issue #20, "Correctness"): a real server on
127.0.0.1, losing evidence posted over HTTP, the derivation run through the server (the CLI
finds the server and runs there; the live pipeline does it by itself once merged), then the
endpoint is polled and the SDK asked again once its cache time has passed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import alphatrace
from alphatrace.errors import GovernanceError
from alphatrace.governance.policy import load_governance
from alphatrace.sdk import emitter
from alphatrace.sdk import sizing as sdk_sizing
from tests.policies import SEED_FLAG
from tests.server.conftest import Server, start_server
from tests.server.test_sizing import evidence

ENV = {k: v for k, v in os.environ.items() if k not in ("ALPHATRACE_DB", "COLUMNS")}


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alphatrace.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=ENV)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def sdk_on(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ALPHATRACE_URL", server.url)
    monkeypatch.setenv("ALPHATRACE_READ_KEY", server.keys["read"])
    emitter.reset()
    sdk_sizing.reset()
    yield
    sdk_sizing.reset()
    emitter.reset()


def poll_killed(server: Server, agent: str, tries: int = 100) -> dict[str, object]:
    doc: dict[str, object] = {}
    for _ in range(tries):
        doc = httpx.get(f"{server.url}/v1/agents/{agent}/sizing",
                        params={"base_size": 10_000, "score": 1},
                        headers=server.auth("read"), timeout=10).json()
        if doc["killed"]:
            return doc
        time.sleep(0.1)
    return doc


def test_a_kill_is_visible_at_the_endpoint_and_in_the_sdk_within_the_cache_time(
        server: Server, sdk_on: None, tmp_path: Path) -> None:
    r = httpx.post(f"{server.url}/v1/events", json=evidence("K", [-50.0] * 6),
                   headers=server.auth("ingest"), timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == 12
    # The SDK with the policy's cache time and a bound no loaded machine reaches: this test is
    # about when the kill shows, not about the 200 ms default (tests/sdk/test_sizing.py).
    sdk_policy = tmp_path / "sdk.yaml"
    sdk_policy.write_text("sizing: {cache_s: 1.0, timeout_ms: 10000}\n")
    pinned = load_governance(sdk_policy).sizing
    # Before the evidence is derived: the SDK sizes at 1.0 and caches that answer.
    assert alphatrace.size("K", 10_000, 1.0, policy=sdk_policy) == 10_000.0
    sizer = sdk_sizing.sizer(server.url, server.keys["read"], pinned)
    valid_until = sizer._cache["K"][0]

    db = server.db.name
    # One evaluation (--once) under the seed's gates: the server's own pipeline evaluates the
    # default's (no kill on 6 runs) and has caught up to the newest run, so a catch-up under
    # another policy would start after it.
    for args in (("reconcile",), ("gates", "evaluate", "--once", *SEED_FLAG)):
        done = cli(server.db.parent, *args, "--db", db)
        assert done.returncode == 0, done.stderr
    # The endpoint answers the kill as soon as the command returns (the hook ran before).
    doc = poll_killed(server, "K", tries=1)
    assert (doc["killed"], doc["size"], doc["state"]) == (True, 0.0, "killed")
    assert "kill_drawdown" in str(doc["reason"])

    # The SDK: the cached answer stands until its cache time is over, then the kill shows.
    while time.monotonic() <= valid_until:
        time.sleep(0.05)
    with pytest.raises(GovernanceError, match="killed"):
        alphatrace.size("K", 10_000, 1.0, policy=sdk_policy)
    assert alphatrace.size("K", 10_000, 1.0, policy=sdk_policy, raise_on_kill=False) == 0.0
