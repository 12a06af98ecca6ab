"""POST /v1/events against a real server: statuses per event, body shapes, limits, disconnects."""

from __future__ import annotations

import json
import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx

from tests.server.conftest import Server


def rid() -> str:
    return f"r-{uuid.uuid4()}"


def tel(run_id: str, **kw: object) -> dict[str, object]:
    return {"type": "telemetry", "run_id": run_id, "agent": "HttpAgent", **kw}


def test_mixed_batch_answers_each_event(client: httpx.Client, server: Server) -> None:
    r1 = rid()
    batch = [
        tel(r1, ts="2025-03-01T08:00:00Z", tokens_in=1830, tokens_out=421, event_id=f"{r1}:1"),
        {"type": "alpha", "run_id": r1, "agent": "HttpAgent", "symbol": "BTC", "direction": "short",
         "ts": "2025-03-01T08:00:01Z", "event_id": f"{r1}:2"},
        {"type": "alpha", "run_id": r1, "agent": "HttpAgent", "symbol": "BTC", "direction": "UP"},
        {"run_id": r1, "realized_pnl_bps": 12.5, "event_id": f"{r1}:3"},  # pnl by shape
        tel(r1, tokens_in=-3),
    ]
    res = client.post("/v1/events", json=batch, headers=server.auth("ingest"))
    assert res.status_code == 207
    doc = res.json()
    assert (doc["accepted"], doc["duplicates"], doc["rejected"]) == (3, 0, 2)
    st = doc["results"]
    assert [r["index"] for r in st] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in st] == ["accepted", "accepted", "rejected", "accepted", "rejected"]
    assert [r.get("kind") for r in st] == ["telemetry", "alpha", "alpha", "pnl", "telemetry"]
    assert st[0]["event_id"] == f"{r1}:1"
    assert st[2]["field"] == "direction" and "UP" in st[2]["reason"]
    assert st[4]["field"] == "tokens_in" and ">= 0" in st[4]["reason"]


def test_retry_is_duplicate_and_wrapped_form(client: httpx.Client, server: Server) -> None:
    r1 = rid()
    events = [tel(r1, tokens_in=i, event_id=f"{r1}:{i}") for i in range(3)]
    first = client.post("/v1/events", json={"events": events}, headers=server.auth("ingest"))
    again = client.post("/v1/events", json=events, headers=server.auth("ingest"))
    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["accepted"] == 3
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 3
    # Same content without event_id: identity is the content hash, also a duplicate on retry.
    anon = [tel(r1, tokens_in=77, ts=1_740_816_000)]
    assert client.post("/v1/events", json=anon, headers=server.auth("ingest")).json()["accepted"] == 1
    assert client.post("/v1/events", json=anon, headers=server.auth("ingest")).json()["duplicates"] == 1


def test_empty_batch(client: httpx.Client, server: Server) -> None:
    res = client.post("/v1/events", json=[], headers=server.auth("ingest"))
    assert res.status_code == 200
    assert res.json() == {"accepted": 0, "duplicates": 0, "rejected": 0, "results": []}


def test_bad_bodies_are_400_with_a_message(client: httpx.Client, server: Server) -> None:
    h = {**server.auth("ingest"), "Content-Type": "application/json"}
    cases = {
        b'[{"run_id": ': "not valid JSON",
        b"": "empty body",
        b'{"run_id": "x"}': 'without "events"',
        b'{"events": 3}': '"events" must be a JSON array',
        b"42": "must be a JSON array",
        b'[{"run_id": "x", "agent": "a"}, 7]': "event 1 is not a JSON object",
        b"\xff\xfe\x00": "not",
    }
    for body, msg in cases.items():
        res = client.post("/v1/events", content=body, headers=h)
        assert res.status_code == 400, body
        assert msg in res.json()["detail"], (body, res.json())


def test_body_over_5mb_is_413(client: httpx.Client, server: Server) -> None:
    h = {**server.auth("ingest"), "Content-Type": "application/json"}
    big = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    res = client.post("/v1/events", content=big, headers=h)
    assert res.status_code == 413
    # Chunked (no Content-Length): the limit is enforced while reading.
    def gen():  # type: ignore[no-untyped-def]
        yield b"["
        for _ in range(6):
            yield b" " * (1024 * 1024)
        yield b"]"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        res = c.post("/v1/events", content=gen(), headers=h)
    assert res.status_code == 413
    # Just under the limit is fine.
    ok = b"[" + b" " * (5 * 1024 * 1024 - 2) + b"]"
    assert client.post("/v1/events", content=ok, headers=h).status_code == 200


def _raw_post(server: Server, body: bytes, send: int) -> None:
    """Send headers and the first `send` bytes of the body, then vanish."""
    u = urlsplit(server.url)
    s = socket.create_connection((u.hostname, u.port))
    head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.keys['ingest']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + body[:send])
    s.close()


def test_survives_client_disconnects(client: httpx.Client, server: Server) -> None:
    r1, r2 = rid(), rid()
    half = json.dumps([tel(r1, tokens_in=1, event_id=f"{r1}:1")]).encode()
    _raw_post(server, half, len(half) // 2)  # gone mid-body: nothing stored, server fine
    full = json.dumps([tel(r2, tokens_in=1, event_id=f"{r2}:1")]).encode()
    _raw_post(server, full, len(full))  # gone before the answer: stored all the same
    time.sleep(0.5)
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/v1/runs/{r1}", headers=server.auth("read")).status_code == 404
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        res = client.get(f"/v1/runs/{r2}", headers=server.auth("read"))
        if res.status_code == 200:
            break
        time.sleep(0.1)
    assert res.status_code == 200 and len(res.json()["events"]) == 1
    # Its retry is a duplicate: the write was neither lost nor doubled.
    again = client.post("/v1/events", content=full, headers=server.auth("ingest"))
    assert again.json()["duplicates"] == 1
