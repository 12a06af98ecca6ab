"""Notifications from a real `alphatrace serve` subprocess: decisions appended through the
server reach the receiver signed; pending deliveries survive kill -9; a hanging receiver does
not slow ingest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from alphatrace.store import Store
from tests.notify.receiver import Receiver, free_port
from tests.notify.test_dispatch import verified
from tests.notify.util import hook, losers, policy_text
from tests.server.conftest import start_server


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line: a store held by a server runs the command there."""
    return subprocess.run([sys.executable, "-m", "alphatrace.cli.main", *args],
                          capture_output=True, text=True, timeout=120)


def prepared(tmp: Path, url: str, **retry: str) -> tuple[Path, Path]:
    pol = tmp / "p.yaml"
    pol.write_text(policy_text([hook(url)], **({"retry": retry} if retry else {})))
    return tmp / "collector.duckdb", pol


def evaluate(db: Path, pol: Path) -> list[dict[str, object]]:
    r = cli("gates", "evaluate", "--db", str(db), "--policy", str(pol), "--json", "--once")
    assert r.returncode == 0, r.stderr
    return [d for d in json.loads(r.stdout)["decisions"] if d["changed"]]


def test_decisions_appended_through_the_server_are_delivered(tmp_path: Path, secret: str,
                                                             receiver: Receiver) -> None:
    db, pol = prepared(tmp_path, receiver.url)
    srv = start_server(tmp_path, "--no-pipeline", prepare=lambda s: losers(s, ["A", "B"]))
    try:
        decided = evaluate(db, pol)
        got = receiver.wait_for(len(decided), timeout=20)
        r = cli("notify", "log", "--db", str(db), "--json")
        assert r.returncode == 0, r.stderr
        counts = json.loads(r.stdout)["counts"]
    finally:
        srv.stop()
    assert len(decided) == 3 and counts["delivered"] == 3 and counts["pending"] == 0
    assert sorted(q.headers["idempotency-key"] for q in got) == sorted(
        str(d["hash"]) for d in decided)
    assert all(verified(secret, q.headers, q.body) for q in got)


def test_pending_deliveries_survive_kill_9(tmp_path: Path, secret: str) -> None:
    rcv = Receiver(free_port())  # down
    db, pol = prepared(tmp_path, rcv.url, initial="0.2s", max="1s")
    srv = start_server(tmp_path, "--no-pipeline", prepare=lambda s: losers(s, ["A", "B", "C"]))
    try:
        decided = evaluate(db, pol)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the dispatcher has tried and failed
            r = cli("notify", "log", "--db", str(db), "--json")
            rows = json.loads(r.stdout)["deliveries"]
            if any(row["attempts"] for row in rows):
                break
            time.sleep(0.2)
        assert len(rows) == 4 and all(row["status"] == "pending" for row in rows)
    finally:
        srv.proc.kill()  # SIGKILL: no shutdown, no flush beyond what committed
        srv.proc.wait(10)
    rcv.up()
    try:
        srv = start_server(tmp_path, "--no-pipeline", keys=False)
        try:
            got = rcv.wait_for(4, timeout=30)
            time.sleep(0.5)  # a duplicate would arrive now
        finally:
            srv.stop()
    finally:
        rcv.down()
    keys = Counter(q.headers["idempotency-key"] for q in rcv.accepted())
    assert sorted(keys) == sorted(str(d["hash"]) for d in decided) and len(got) == 4
    assert set(keys.values()) == {1}
    with Store(db, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM notify_deliveries WHERE status = "
                                 "'delivered'").fetchall()[0][0] == 4


def test_a_hanging_receiver_does_not_slow_ingest(tmp_path: Path, secret: str) -> None:
    hanging = Receiver(free_port(), mode="hang").up()
    # retries 0.05-0.1 s apart: the dispatcher spends nearly all its time inside a request
    # that hangs until its 5 s timeout
    db, pol = prepared(tmp_path, hanging.url, initial="0.05s", max="0.1s")
    srv = start_server(tmp_path, "--no-pipeline", prepare=lambda s: losers(s, ["A"]))
    latencies: list[float] = []
    try:
        evaluate(db, pol)
        deadline = time.monotonic() + 20
        while not hanging.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hanging.requests, "the dispatcher never reached the receiver"
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i in range(15):
                events = [{"type": "telemetry", "run_id": f"h{i}-{j}", "agent": "H",
                           "ts": "2025-03-01T08:00:00Z", "tokens_in": j} for j in range(20)]
                t0 = time.monotonic()
                res = c.post("/v1/events", json=events, headers=srv.auth("ingest"))
                latencies.append(time.monotonic() - t0)
                assert res.status_code == 200, res.text
        assert all(r.answered is None for r in hanging.requests)  # it never answered
    finally:
        srv.stop()
        hanging.down()
    # Ingest waiting on the dispatcher would take up to its 5 s timeout; the bound leaves
    # room for a loaded machine and none for that.
    assert max(latencies) < 3.0, latencies
