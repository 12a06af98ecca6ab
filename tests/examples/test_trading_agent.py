"""Issue #20's "Done when": examples/trading_agent.py, run as a user runs it against a real
`alphatrace serve`, trades through the SDK, sizes each signal with `alphatrace.size()`, and
stops opening positions once killed; a webhook receiver got the kill, signed (checked as a
receiver checks it).

How soon after the kill it stops is a bound on clocks, which a loaded CI machine cannot keep
for the server's part: it is asserted where it is deterministic, the SDK's cache time in
tests/sdk/test_sizing.py (`test_a_late_answer_is_cached_from_when_it_was_asked_not_from_when_it_came`)
and the kill's visibility through a real server in tests/server/test_sizing_live.py. Here the
gaps are printed (pytest -s), not asserted."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import yaml

from tests.notify.receiver import Receiver, free_port
from tests.server.conftest import start_server

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "trading_agent.py"
SECRET_ENV = "ALPHATRACE_EXAMPLE_HOOK_SECRET"
SECRET = "whsec_example_agent"
CACHE_S = 1.0  # the policy's sizing.cache_s (the shipped default)
INTERVAL_S = 0.1  # the agent's time between signals


def policy(hook_url: str) -> str:
    """Kill on losing evidence quickly (3 runs whose mean loses > 20 bps); kills go to one
    webhook."""
    return yaml.safe_dump({
        "gates": {"min_runs": 3, "window": {"runs": 5}, "rules": [
            {"name": "kill_losing", "action": "kill", "when": "mean_pnl_bps < -20"}]},
        "sizing": {"fail": "closed", "cache_s": CACHE_S, "timeout_ms": 200},
        "notify": {"retry": {"initial": "0.2s", "max": "1s"}, "targets": [
            {"name": "desk", "kind": "webhook", "url": hook_url, "secret_env": SECRET_ENV,
             "actions": ["kill"]}]},
    }, sort_keys=False)


def load_example_receiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "webhook_receiver", ROOT / "examples" / "webhook_receiver.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lines(out: str) -> list[tuple[dt.datetime, str, str]]:
    """(time, word, rest) of each line the agent printed."""
    got = []
    for line in out.splitlines():
        stamp, word, rest = [*line.split(" ", 2), ""][:3]
        got.append((dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")), word, rest))
    return got


def test_help_runs_without_a_server() -> None:
    res = subprocess.run([sys.executable, str(AGENT), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "--edge-bps" in res.stdout


def test_the_agent_stops_opening_positions_once_killed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)  # the server's environment: it signs with it
    receiver = Receiver(free_port()).up()
    pol = tmp_path / "policy.yaml"
    pol.write_text(policy(receiver.url))
    srv = start_server(tmp_path, "--policy", str(pol))
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ALPHATRACE_") and k != SECRET_ENV}
        env.update(ALPHATRACE_URL=srv.url, ALPHATRACE_API_KEY=srv.keys["ingest"],
                   ALPHATRACE_READ_KEY=srv.keys["read"],
                   ALPHATRACE_SPOOL=str(tmp_path / "spool"),
                   PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]))
        res = subprocess.run(
            [sys.executable, str(AGENT), "--agent", "Loser", "--strategy", "LOSING",
             "--edge-bps", "-40", "--signals", "600", "--interval", str(INTERVAL_S)],
            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        doc = httpx.get(f"{srv.url}/v1/decisions", params={"after": 0},
                        headers=srv.auth("read"), timeout=30).json()
        kills = [r for r in doc["decisions"] if r["action"] == "kill"]
        assert kills, res.stdout
        first = min(kills, key=lambda r: r["seq"])
        got = receiver.wait_for(1, timeout=30)
    finally:
        srv.stop()
        receiver.down()

    printed = lines(res.stdout)
    words = [w for _, w, _ in printed]
    assert "KILLED" in words, res.stdout
    stop = words.index("KILLED")
    opens = [t for t, w, _ in printed[:stop] if w == "OPEN"]
    assert len(opens) >= 3  # it traded: the gates needed 3 realized runs
    assert "OPEN" not in words[stop:]  # and opened nothing after the kill ...
    assert words[-1] == "DONE" and "killed=yes" in printed[-1][2]
    assert "no new positions" in printed[stop][2] and "kill_losing" in printed[stop][2]

    # For the reader (not asserted: see the module's docstring): the gap from the kill's append
    # (its record's created_at) to the last position the agent opened, and to when it saw it.
    appended = dt.datetime.fromisoformat(first["created_at"].replace("Z", "+00:00"))
    last_open_gap = (opens[-1] - appended).total_seconds()
    killed_gap = (printed[stop][0] - appended).total_seconds()
    print(f"kill seq {first['seq']} appended {first['created_at']}; last open "
          f"{last_open_gap:+.3f} s, KILLED printed {killed_gap:+.3f} s after it")
    assert killed_gap > 0  # it saw the kill after the kill was appended, never before

    # The receiver got the kill, signed: verified as examples/webhook_receiver.py does.
    ok = load_example_receiver().signature_ok
    mine = [q for q in got if json.loads(q.body)["record"]["seq"] == first["seq"]]
    assert len(mine) == 1, [json.loads(q.body)["record"]["seq"] for q in got]
    q = mine[0]
    sig = q.headers["x-alphatrace-signature"]
    now = dt.datetime.now(dt.UTC).timestamp()
    assert ok(SECRET, sig, q.body, now)
    assert not ok(SECRET, sig, q.body.replace(b'"kill"', b'"hold"'), now)  # tampered
    assert not ok("another secret", sig, q.body, now)
    body = json.loads(q.body)
    assert body["type"] == "decision" and body["record"]["hash"] == first["hash"]
    assert q.headers["idempotency-key"] == first["hash"]
