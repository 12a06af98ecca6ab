"""Signatures as a receiver checks them: HMAC-SHA256 over "<t>.<body>" computed here with
the standard library, not with the code under test."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.notify.signing import sign, verify


def by_hand(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    want = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(want.hexdigest(), parts["v1"])


def test_a_known_vector() -> None:
    # echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
    header = sign("whsec", b'{"a":1}', 1_700_000_000)
    assert header == ("t=1700000000,v1=" + hmac.new(b"whsec", b'1700000000.{"a":1}',
                                                     hashlib.sha256).hexdigest())


@given(st.text(min_size=1, max_size=40), st.binary(max_size=300),
       st.integers(1_000_000_000, 4_000_000_000))
def test_signed_bodies_verify_and_any_change_does_not(secret: str, body: bytes, t: int) -> None:
    header = sign(secret, body, t)
    assert by_hand(secret, header, body)
    assert verify(secret, header, body, now=t + 10)
    tampered = body + b" " if not body else bytes([body[0] ^ 1]) + body[1:]
    assert not by_hand(secret, header, tampered)
    assert not verify(secret, header, tampered, now=t)
    assert not verify(secret + "x", header, body, now=t)


def test_an_old_or_malformed_signature_is_refused() -> None:
    header = sign("s", b"{}", 1_000)
    assert verify("s", header, b"{}", now=1_000 + 300)
    assert not verify("s", header, b"{}", now=1_000 + 301)  # a replay, too late
    assert not verify("s", "v1=abc", b"{}", now=1_000)
    assert not verify("s", "t=1000", b"{}", now=1_000)
    assert not verify("s", "", b"{}", now=1_000)
    # a rotated secret: both signatures sent, either verifies
    both = header + ",v1=" + sign("new", b"{}", 1_000).split("v1=")[1]
    assert verify("new", both, b"{}", now=1_000) and verify("s", both, b"{}", now=1_000)
