"""`alphatrace.size()` against a server (issue #20 item 1): cached answers, a bounded wait, the
fail policy when the server is down or silent, the kill raised or sized 0.

The server here is a stub that answers what the test sets (the real route is tested in
tests/server/test_sizing*.py), so each failure mode is exact.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import alphatrace
from alphatrace.errors import GovernanceError, InputError
from alphatrace.governance.policy import SizingSection, load_governance
from alphatrace.policy import Policy
from alphatrace.sdk import sizing
from alphatrace.sdk.sizing import RemoteSizer


class Stub:
    """A sizing server: `state[agent]` is what it answers; `hang` makes it accept and stall."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}
        self.policy = {"fail": "closed", "cache_s": 60.0, "timeout_ms": 10_000.0}
        self.hits: list[str] = []
        self.auth: list[str | None] = []
        self.hang = threading.Event()
        self.release = threading.Event()
        self.down = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if stub.down:  # gone: kept-alive connections end without an answer
                    self.close_connection = True
                    return
                stub.hits.append(self.path)
                stub.auth.append(self.headers.get("Authorization"))
                if stub.hang.is_set():
                    stub.release.wait(10)
                agent = self.path.split("/")[3]
                doc = {"agent": agent, "multiplier": 1.0, "killed": False, "reason": None,
                       "seq": 0, **stub.state.get(agent, {}), "policy": stub.policy}
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.down = True
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# Where a test expects an answer, the client waits as long as it may: a loaded machine answers
# a local request in more than the default 200 ms now and then.
PATIENT = SizingSection(timeout_ms=10_000)


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def fresh_sizer() -> Iterator[None]:
    sizing.reset()
    yield
    sizing.reset()


def dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_size_asks_the_server_once_per_cache_time(stub: Stub,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHATRACE_URL", stub.url)
    monkeypatch.setenv("ALPHATRACE_READ_KEY", "rk")
    stub.state["A"] = {"multiplier": 0.5}
    sizing.sizer(stub.url, "rk").settings = PATIENT  # the server's policy is adopted after
    assert alphatrace.size("A", 10_000, -1.5) == 10_000 * 1.5 * 0.5
    assert alphatrace.size("A", 100, 2) == 100.0  # from the cache: one request
    assert stub.hits == ["/v1/agents/A/sizing"] and stub.auth == ["Bearer rk"]
    stub.state["A"] = {"multiplier": 0.25}
    assert alphatrace.size("A", 100, 2) == 100.0  # cached until cache_s (60 s here) is over
    s = sizing.sizer(stub.url, "rk")
    s._cache["A"] = (0.0, s._cache["A"][1])  # its time is over
    assert alphatrace.size("A", 100, 2) == 50.0
    assert len(stub.hits) == 2
    with pytest.raises(InputError, match="base_size"):
        alphatrace.size("A", -1, 1)


def test_agent_names_are_quoted_into_the_path(stub: Stub) -> None:
    RemoteSizer(stub.url, None, PATIENT).size("a/b c", 1, 1)
    assert stub.hits == ["/v1/agents/a%2Fb%20c/sizing"] and stub.auth == [None]


def test_a_killed_agent_raises_or_sizes_zero(stub: Stub) -> None:
    stub.state["K"] = {"killed": True, "multiplier": 0.9, "reason": "rule kill_drawdown"}
    s = RemoteSizer(stub.url, None, PATIENT)
    with pytest.raises(GovernanceError, match="kill_drawdown") as e:
        s.size("K", 100, 1)
    assert "open" in str(e.value)  # says what a kill stops
    assert s.size("K", 100, 1, raise_on_kill=False) == 0.0


def test_the_server_s_policy_is_adopted_unless_the_caller_gave_one(stub: Stub) -> None:
    stub.policy = {"fail": "last_known", "cache_s": 0.5, "timeout_ms": 50.0}
    s = RemoteSizer(stub.url, None)
    s.settings = PATIENT  # not pinned: the first answer's policy replaces it
    s.size("A", 1, 1)
    assert s.settings == SizingSection(fail="last_known", cache_s=0.5, timeout_ms=50.0)
    mine = SizingSection(fail="closed", cache_s=2.0)
    pinned = RemoteSizer(stub.url, None, mine.model_copy(update={"timeout_ms": 10_000}))
    pinned.size("A", 1, 1)
    assert pinned.settings == mine.model_copy(update={"timeout_ms": 10_000})


def test_unreachable_fails_closed_by_default_and_logs_once_a_minute(
        caplog: pytest.LogCaptureFixture) -> None:
    s = RemoteSizer(dead_url(), None, SizingSection(cache_s=0.0))
    with caplog.at_level(logging.WARNING, "alphatrace.sdk"):
        assert [s.size("A", 100, 1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert s.failures == 3  # cache_s 0: every call tried the server
    warned = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warned) == 1 and "fail: closed" in warned[0].getMessage()


def test_last_known_reuses_the_last_answer_when_the_server_goes_away(stub: Stub) -> None:
    stub.state["A"] = {"multiplier": 0.8}
    s = RemoteSizer(stub.url, None, SizingSection(fail="last_known", cache_s=0.0,
                                                  timeout_ms=10_000))
    assert s.size("A", 100, 1) == pytest.approx(80.0)
    stub.close()
    assert s.size("A", 100, 1) == pytest.approx(80.0)
    assert s.size("B", 100, 1) == 0.0  # never answered: closed
    assert s.answer("A").ok is False


def test_a_silent_server_costs_one_timeout_then_the_fail_policy(stub: Stub) -> None:
    stub.hang.set()
    s = RemoteSizer(stub.url, None, SizingSection(cache_s=60.0, timeout_ms=50))
    assert s.size("A", 100, 1) == 0.0
    assert s.answer("A").ok is False  # remembered: the next calls do not wait again
    assert s.size("A", 100, 1) == 0.0
    assert len(stub.hits) == 1


def test_a_late_answer_is_cached_from_when_it_was_asked_not_from_when_it_came(
        stub: Stub) -> None:
    # The answer reflects the server's state at some time after the request left: it may be
    # trusted for cache_s from then. Counted from its arrival, an answer that came late would
    # keep a "not killed" alive past cache_s after the kill. (The fetch is called directly with
    # a long socket timeout: through size() the caller stops waiting at timeout_ms, and the
    # pool thread's answer lands in the cache the same way.)
    stub.hang.set()
    s = RemoteSizer(stub.url, None, SizingSection(cache_s=1.0, timeout_ms=10_000))
    threading.Timer(2.0, stub.release.set).start()  # answered about 2 s after asked
    assert s._fetch("A", 30.0).ok
    assert s._cache["A"][0] < time.monotonic()  # already stale when it came
    stub.hang.clear()
    assert s.size("A", 100, 1) == 100.0
    assert len(stub.hits) == 2  # asked again


def test_without_a_server_size_reads_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with alphatrace.connect(path):
        pass
    assert alphatrace.size("A", 100, 2, db=path) == 200.0


def test_a_policy_file_s_sizing_section_is_read(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("sizing: {fail: last_known, cache_s: 0.25, timeout_ms: 80}\n")
    assert load_governance(p).sizing == SizingSection(fail="last_known", cache_s=0.25,
                                                      timeout_ms=80)
    with pytest.raises(Exception, match="fail"):
        load_governance(Policy({"sizing": {"fail": "open"}}, "<t>"))


def test_a_forked_child_sizes_with_its_own_sizer(stub: Stub, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.setenv("ALPHATRACE_URL", stub.url)
    stub.state["A"], stub.state["B"] = {"multiplier": 0.5}, {"multiplier": 0.25}
    assert alphatrace.size("A", 100, 1) == 50.0  # the parent's sizer and pool exist
    parent = sizing.sizer(stub.url, None)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh sizer (the parent's pool threads are not here)
        try:
            fresh = sizing.sizer(stub.url, None) is not parent
            # B is not cached: a request, which needs pool threads of this process
            os.write(w, f"{fresh} {alphatrace.size('B', 100, 1)}".encode())
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 100).decode() == "True 25.0" and status == 0
