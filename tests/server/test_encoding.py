"""Content-Encoding: gzip and deflate bodies decode to exactly what was compressed (checked
against the stdlib's own compressors), never past the limit, and a bomb stops at the limit."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import uuid
import zlib

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.server.encoding import TooLarge, Undecodable, Unsupported, codings, decode
from tests.server.conftest import Server


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110 deflate: the zlib format
    "raw-deflate": raw_deflate,  # what some clients send as "deflate"
}


@given(st.binary(max_size=3000), st.sampled_from(sorted(ENCODERS)), st.integers(0, 4000))
def test_decode_is_the_inverse_of_the_compressor_up_to_the_limit(
    data: bytes, kind: str, limit: int
) -> None:
    header = "deflate" if kind == "raw-deflate" else kind
    body = ENCODERS[kind](data)
    if len(data) <= limit:
        assert decode(body, header, limit) == data
    else:
        with pytest.raises(TooLarge):
            decode(body, header, limit)


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4))
def test_gzip_members_in_a_row_are_one_body(parts: list[bytes]) -> None:
    body = b"".join(gzip.compress(p) for p in parts)
    assert decode(body, "gzip", 10_000) == b"".join(parts) == gzip.decompress(body)


@given(st.binary(max_size=300), st.sampled_from(["gzip", "deflate", "identity", "br", "gzip, gzip"]),
       st.integers(0, 500))
def test_any_bytes_decode_within_the_limit_or_fail_cleanly(body: bytes, coding: str,
                                                           limit: int) -> None:
    try:
        out = decode(body, coding, limit)
    except (TooLarge, Unsupported, Undecodable):
        return
    assert len(out) <= limit


def test_codings_apply_in_order_and_identity_is_nothing() -> None:
    data = b'[{"a": 1}]' * 50
    assert decode(data, None, 1000) == decode(data, "identity", 1000) == data
    assert decode(gzip.compress(zlib.compress(data)), "deflate, gzip", 1000) == data
    assert decode(gzip.compress(data), " GZIP ,identity", 1000) == data
    assert codings("gzip, , Deflate") == ["gzip", "deflate"]
    with pytest.raises(TooLarge):
        decode(data, None, len(data) - 1)


def test_broken_and_unknown_codings() -> None:
    good = gzip.compress(b"x" * 1000)
    with pytest.raises(Undecodable, match="truncated"):
        decode(good[: len(good) // 2], "gzip", 10_000)
    with pytest.raises(Undecodable, match="not valid gzip"):
        decode(b"not gzip at all", "gzip", 10_000)
    with pytest.raises(Undecodable, match="after the end"):
        decode(zlib.compress(b"x") + b"junk", "deflate", 10_000)
    with pytest.raises(Unsupported, match="br"):
        decode(b"x", "br", 10)


def bomb(decoded_mb: int) -> bytes:
    """gzip of `decoded_mb` MB of zeros (about 1 KB per MB)."""
    c = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    mb = bytes(1 << 20)
    return b"".join(c.compress(mb) for _ in range(decoded_mb)) + c.flush()


def test_a_gzip_bomb_stops_at_the_limit_in_bounded_memory() -> None:
    body = bomb(200)
    limit = 5 << 20
    assert len(body) < limit // 10  # small on the wire, 200 MB once inflated
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            decode(body, "gzip", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit  # the output buffer and one chunk, not 200 MB


# -- over HTTP ----------------------------------------------------------------------------
def events_body(run_id: str) -> bytes:
    return json.dumps([{"type": "telemetry", "run_id": run_id, "agent": "gz", "tokens_in": 5,
                        "ts": "2025-03-01T08:00:00Z", "event_id": f"{run_id}:{i}"}
                       for i in range(3)]).encode()


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_batches_are_ingested(client: httpx.Client, server: Server, coding: str) -> None:
    run_id = f"gz-{uuid.uuid4()}"
    body = ENCODERS[coding](events_body(run_id))
    res = client.post("/v1/events", content=body, headers={
        **server.auth("ingest"), "Content-Type": "application/json", "Content-Encoding": coding})
    assert res.status_code == 200 and res.json()["accepted"] == 3
    run = client.get(f"/v1/runs/{run_id}", headers=server.auth("read")).json()
    assert [e["tokens_in"] for e in run["events"]] == [5, 5, 5]


def test_compressed_body_errors(client: httpx.Client, server: Server) -> None:
    h = {**server.auth("ingest"), "Content-Type": "application/json"}
    res = client.post("/v1/events", content=bomb(50), headers={**h, "Content-Encoding": "gzip"})
    assert res.status_code == 413 and "decompressed body larger than the 5 MB" in res.text
    res = client.post("/v1/events", content=b"[]", headers={**h, "Content-Encoding": "br"})
    assert res.status_code == 415 and res.headers["accept-encoding"] == "gzip, deflate"
    res = client.post("/v1/events", content=b"[]", headers={**h, "Content-Encoding": "gzip"})
    assert res.status_code == 400 and "not valid gzip" in res.json()["detail"]
    # The OTLP route decodes the same way.
    res = client.post("/v1/otlp/v1/traces", content=bomb(50),
                      headers={**h, "Content-Encoding": "gzip"})
    assert res.status_code == 413
