"""examples/webhook_receiver.py accepts what alphatrace signs, and refuses a tampered body, a
wrong secret and a stale timestamp; a repeated Idempotency-Key is acknowledged, not redone."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from alphatrace.notify import payload
from alphatrace.notify.signing import sign

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def url() -> Iterator[str]:
    mod = load()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), mod.make_handler("s3cret", set()))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


def post(url: str, body: bytes, signature: str, key: str = "k1") -> httpx.Response:
    return httpx.post(url, content=body, headers={
        "X-Alphatrace-Signature": signature, "Idempotency-Key": key,
        "X-Alphatrace-Delivery": "1", "Content-Type": "application/json"})


def test_the_example_verifies(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    body = payload.webhook_body(payload.sample_record(), None, test=True).encode()
    now = int(time.time())
    tampered = body.replace(b'"killed"', b'"promoted"')
    assert tampered != body
    assert post(url, tampered, sign("s3cret", body, now)).status_code == 401
    assert post(url, body, sign("wrong", body, now)).status_code == 401
    assert post(url, body, sign("s3cret", body, now - 301)).status_code == 401
    ok = post(url, body, sign("s3cret", body, now))
    assert ok.status_code == 200 and ok.text == "ok"
    again = post(url, body, sign("s3cret", body, now))
    assert again.status_code == 200 and again.text == "duplicate"
    out = capsys.readouterr().out
    assert out.count("test: kill agent alphatrace-test") == 1
    assert json.loads(body)["type"] == "test"
