"""Delivery to real receivers on 127.0.0.1: signed as documented, at least once through an
outage, expired after the horizon, and a hanging receiver does not hold up the others."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alphatrace.api import Database
from alphatrace.notify import delivery, outbox
from alphatrace.notify.dispatcher import Dispatcher, deliver_pending
from tests.notify.receiver import Receiver, free_port
from tests.notify.util import SECRET_ENV, hook, losers, policy


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(tmp_path / "s.duckdb")
    yield d
    d.close()


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute HMAC-SHA256 over "<t>.<body>" and compare."""
    parts = dict(p.split("=", 1) for p in headers["x-alphatrace-signature"].split(","))
    want = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return (hmac.compare_digest(want.hexdigest(), parts["v1"])
            and abs(time.time() - int(parts["t"])) < 300)


def test_a_webhook_is_signed_and_carries_its_ids(db: Database, receiver: Receiver,
                                                 secret: str) -> None:
    losers(db.store, ["A"])
    recs = db.gates.evaluate(policy([hook(receiver.url)], dashboard_url="http://at:8700"), once=True)
    with delivery.client() as http:
        r = deliver_pending(db.con, http, db.store.path)
    assert (r.attempted, r.delivered) == (2, 2)
    got = receiver.accepted()
    ids = {d["record_seq"]: d["id"] for d in outbox.log(db.con)}
    for req, rec in zip(got, recs, strict=True):  # in seq order
        assert verified(secret, req.headers, req.body)
        assert not verified(secret, req.headers, req.body.replace(b"killed", b"promoted"))
        assert not verified("another secret", req.headers, req.body)
        assert req.headers["idempotency-key"] == rec["hash"]
        assert req.headers["x-alphatrace-delivery"] == str(ids[rec["seq"]])
        assert req.headers["content-type"] == "application/json"
        body = json.loads(req.body)
        assert body["record"] == json.loads(json.dumps(rec))
        assert body["link"].startswith("http://at:8700/")
    assert outbox.counts(db.con) == {"pending": 0, "delivered": 2, "expired": 0}
    log = outbox.log(db.con)
    assert all(e["status_codes"] == [200] and e["delivered_at"] is not None for e in log)
    # nothing due: a second pass sends nothing
    with delivery.client() as http:
        assert deliver_pending(db.con, http, db.store.path).attempted == 0


def test_slack_gets_text(db: Database, receiver: Receiver) -> None:
    losers(db.store, ["A"])
    db.gates.evaluate(policy([{"name": "chat", "kind": "slack", "url": receiver.url,
                               "subjects": ["A"]}]), once=True)
    with delivery.client() as http:
        deliver_pending(db.con, http, db.store.path)
    (req,) = receiver.accepted()
    text = json.loads(req.body)["text"]
    assert "kill agent A" in text and "kill_drawdown" in text and "/agent?name=A" in text
    assert "x-alphatrace-signature" not in req.headers


def test_a_missing_secret_is_an_error_retried_not_a_crash(db: Database, receiver: Receiver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    losers(db.store, ["A"])
    db.gates.evaluate(policy([hook(receiver.url)]), once=True)
    with delivery.client() as http:
        r = deliver_pending(db.con, http, db.store.path)
    assert r.failed == 1 and r.delivered == 0  # the target's turn ends at its first failure
    assert receiver.requests == []
    (first,) = [e for e in outbox.log(db.con) if e["attempts"]]
    assert SECRET_ENV in first["last_error"] and first["status"] == "pending"


def test_down_then_back_every_decision_once(db: Database, secret: str) -> None:
    port = free_port()
    rcv = Receiver(port)  # not up: connections are refused
    losers(db.store, ["A", "B", "C"])
    gp = policy([hook(rcv.url)], retry={"initial": "0.05s", "max": "0.2s"})
    disp = Dispatcher(db.store, poll_s=0.1)
    disp.start()
    try:
        recs = db.gates.evaluate(gp, once=True)
        assert len(recs) == 4
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and disp.failed < 3:
            time.sleep(0.02)
        assert disp.failed >= 3 and disp.delivered == 0
        rcv.mode = "fail"  # up, but answering 503 for a while
        rcv.up()
        time.sleep(0.5)
        rcv.mode = "ok"
        got = rcv.wait_for(4)
        time.sleep(0.5)  # anything sent twice would arrive now
    finally:
        disp.stop()
        rcv.down()
    keys = Counter(r.headers["idempotency-key"] for r in rcv.accepted())
    assert sorted(keys) == sorted(r["hash"] for r in recs)
    assert set(keys.values()) == {1}, keys
    assert len(got) == 4
    assert any(r.answered == 503 for r in rcv.requests)
    log = outbox.log(db.con)
    assert all(e["status"] == "delivered" for e in log)
    # one probe per backoff step while down: the other three were not all hammered
    first = max(log, key=lambda e: e["attempts"])
    assert first["attempts"] >= 3 and None in first["status_codes"]
    assert first["status_codes"][-1] == 200


def test_gives_up_after_the_horizon(db: Database, secret: str) -> None:
    rcv = Receiver(free_port())  # never up
    losers(db.store, ["A"])
    db.gates.evaluate(policy([hook(rcv.url, actions=["kill"], subjects=["A"])],
                             retry={"initial": "0.05s", "max": "0.1s", "horizon": "0.5s"}), once=True)
    deadline = time.monotonic() + 10
    with delivery.client() as http:
        while time.monotonic() < deadline and outbox.counts(db.con)["expired"] == 0:
            deliver_pending(db.con, http, db.store.path)
            time.sleep(0.05)
    (e,) = outbox.log(db.con)
    assert e["status"] == "expired" and "ConnectError" in e["last_error"]
    assert e["next_attempt_at"] is None
    # Retried until the horizon, and the last try at or past it (however slow the machine:
    # a first try already past the horizon is the only one).
    expires, tries = db.con.execute(
        "SELECT d.expires_at, list(a.sent_at ORDER BY a.attempt) FROM notify_deliveries d "
        "JOIN notify_attempts a ON a.delivery_id = d.id GROUP BY d.expires_at").fetchone()
    assert len(tries) == e["attempts"] and tries[-1] >= expires
    assert all(t < expires for t in tries[:-1])
    if tries[0] < expires:
        assert len(tries) >= 2


def test_a_hanging_receiver_does_not_hold_up_the_other_targets(db: Database, secret: str,
                                                               receiver: Receiver) -> None:
    hanging = Receiver(free_port(), mode="hang").up()
    losers(db.store, ["A"])
    db.gates.evaluate(policy([hook(hanging.url, "slow"), hook(receiver.url, "fast")]), once=True)
    timeout = httpx.Timeout(2.0, connect=1.0)
    t0 = time.monotonic()
    try:
        with delivery.client(timeout) as http:
            r = deliver_pending(db.con, http, db.store.path)
        fast = [q.at - t0 for q in receiver.accepted()]
    finally:
        hanging.down()
    assert r.delivered == 2 and r.failed == 1  # fast got both; slow timed out on its first
    assert len(fast) == 2 and max(fast) < 1.5  # did not wait for the 2 s read timeout
    slow = [e for e in outbox.log(db.con) if e["target"] == "slow" and e["attempts"]]
    assert len(slow) == 1 and "ReadTimeout" in slow[0]["last_error"]
