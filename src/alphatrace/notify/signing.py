"""Webhook signatures, Stripe's scheme: `X-Alphatrace-Signature: t=<unix>,v1=<hex>` where
hex = HMAC-SHA256(secret, "<t>.<body>").

The timestamp is inside the MAC, so a receiver that also checks its age (`tolerance_s`)
refuses a captured request replayed later; the body is the exact bytes sent.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Alphatrace-Signature"
DELIVERY_HEADER = "X-Alphatrace-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_S = 300


def mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int) -> str:
    """The signature header's value for `body` sent at unix time `t`."""
    return f"t={t},v1={mac(secret, t, body)}"


def verify(secret: str, header: str, body: bytes, now: float,
           tolerance_s: float = DEFAULT_TOLERANCE_S) -> bool:
    """Whether `header` signs `body` with `secret` and its time is within `tolerance_s` of
    `now`. Several v1 entries are allowed (one per secret while a secret is rotated)."""
    t: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1":
            sigs.append(value)
    if t is None or not sigs or abs(now - t) > tolerance_s:
        return False
    want = mac(secret, t, body)
    return any(hmac.compare_digest(want, s) for s in sigs)
