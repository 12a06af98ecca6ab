"""GET /v1/decisions/stream (issue #20 item 3): Server-Sent Events of decision records; a client
that disconnects and resumes with Last-Event-ID sees every seq exactly once, including records
appended while it was connected and while it was away."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.server.stream_routes import frame, last_seen
from tests.policies import SEED_FLAG
from tests.server.conftest import Server, start_server
from tests.server.test_sizing import evidence
from tests.server.test_sizing_live import cli


def sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Events of an SSE body as {"id", "event", "data"} (comments and retry skipped)."""
    ev: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in ev:
                yield ev
            ev = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            ev[name] = value[1:] if value.startswith(" ") else value


def records(r: httpx.Response, n: int) -> list[dict[str, Any]]:
    """The next `n` records of an open stream."""
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got: list[dict[str, Any]] = []
    for ev in sse(r.iter_lines()):
        assert ev["event"] == "decision"
        rec = json.loads(ev["data"])
        assert int(ev["id"]) == rec["seq"]
        got.append(rec)
        if len(got) == n:
            break
    return got


def stream(server: Server, last_id: int | None = None,
           since: int | None = None) -> Any:
    headers = server.auth("read")
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    params = {"since": since} if since is not None else None
    return httpx.stream("GET", f"{server.url}/v1/decisions/stream", headers=headers,
                        params=params, timeout=httpx.Timeout(60.0))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, *SEED_FLAG)
    yield srv
    srv.stop()


def decide(server: Server, agent: str, pnls: list[float]) -> None:
    """Evidence over HTTP, then reconcile and evaluate through the server."""
    r = httpx.post(f"{server.url}/v1/events", json=evidence(agent, pnls),
                   headers=server.auth("ingest"), timeout=30)
    assert r.status_code == 200, r.text
    for args in (("reconcile",), ("gates", "evaluate", *SEED_FLAG)):
        done = cli(server.db.parent, *args, "--db", server.db.name)
        assert done.returncode == 0, done.stderr


def head(server: Server) -> int:
    doc = httpx.get(f"{server.url}/v1/agents/-/sizing", headers=server.auth("read")).json()
    return int(doc["seq"])


def test_resume_with_last_event_id_sees_every_seq_exactly_once(server: Server) -> None:
    decide(server, "A", [-50.0] * 6)  # kills A and its strategy S1
    first = head(server)
    assert first >= 2
    with stream(server) as r:  # one record, then gone
        seen = records(r, 1)
    assert [x["seq"] for x in seen] == [1]

    decide(server, "B", [5.0] * 6)  # more decisions while nobody listens
    with stream(server, last_id=seen[-1]["seq"]) as r:
        # ... and more while the client is connected: pushed as they are appended
        decide(server, "C", [-50.0] * 6)
        final = head(server)
        assert final > first
        seen += records(r, final - 1)
    assert [x["seq"] for x in seen] == list(range(1, final + 1))  # every seq once, in order
    # ?since= is the same resume point for a client that cannot send the header.
    with stream(server, since=final - 1) as r:
        assert [x["seq"] for x in records(r, 1)] == [final]


def test_the_stream_needs_a_read_key_or_a_dashboard_session(server: Server) -> None:
    url = f"{server.url}/v1/decisions/stream"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=server.auth("ingest")).status_code == 403
    bad = httpx.get(url, headers={**server.auth("read"), "Last-Event-ID": "x"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.text


@given(st.integers(0, 2**62), st.one_of(st.none(), st.integers(0, 2**62)))
def test_last_event_id_wins_over_since(header: int, since: int | None) -> None:
    assert last_seen(str(header), since) == header
    assert last_seen(None, since) == (since or 0)
    assert last_seen("  ", since) == (since or 0)


def test_a_frame_is_one_event_with_the_seq_as_id() -> None:
    text = frame({"seq": 7, "subject": "a\nb", "metrics": {"x": 1.5}})
    assert text.startswith("id: 7\nevent: decision\ndata: {") and text.endswith("}\n\n")
    assert text.count("\n") == 4  # the newline inside a value is escaped by JSON
