"""Bearer-key authentication for every route except /healthz.

The presented key is hashed and compared with `hmac.compare_digest` against every active key's
hash, without stopping at the first match, so timing says nothing about which key (or how much
of one) matched. No key or an unknown key → 401; a key without the route's scope → 403; the body
is a fixed word either way, so a caller learns nothing about existing keys.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alphatrace.server.keys import hash_key

GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"ingest", "read", "admin"}),
}

bearer = HTTPBearer(auto_error=False, description="An API key from `alphatrace keys create`.")


@dataclass(frozen=True)
class Principal:
    name: str
    scope: str


class KeyRing:
    """The active keys' hashes, held in memory; replaced whole when keys change."""

    def __init__(self, keys: list[tuple[str, str, str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: tuple[tuple[bytes, str, str], ...] = ()
        self.replace(keys or [])

    def replace(self, keys: list[tuple[str, str, str]]) -> None:
        with self._lock:
            self._keys = tuple((h.encode(), n, s) for h, n, s in keys)

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, key: str) -> Principal | None:
        presented = hash_key(key).encode()
        found: Principal | None = None
        for h, name, scope in self._keys:
            if hmac.compare_digest(presented, h) and found is None:
                found = Principal(name, scope)
        return found


def bearer_principal(ring: KeyRing, authorization: str | None) -> Principal | None:
    """The key holder of an `Authorization: Bearer <key>` value (HTTP header or gRPC
    metadata); None when absent, malformed, unknown or revoked."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return ring.verify(key.strip())


def allows(who: Principal, scope: str) -> bool:
    return scope in GRANTS.get(who.scope, frozenset())


def unauthorized() -> HTTPException:
    return HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys granting `scope` (async: no thread hop per request)."""

    async def dep(
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> Principal:
        ring: KeyRing = request.app.state.keyring
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise unauthorized()
        who = ring.verify(creds.credentials)
        if who is None:
            raise unauthorized()
        if not allows(who, scope):
            raise HTTPException(403, "forbidden")
        return who

    dep.__name__ = f"require_{scope}"
    return dep
