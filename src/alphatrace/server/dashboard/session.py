"""Who may see the pages: the collector's API keys with scope `read` (or `admin`).

A browser signs in once with a key through the login form and gets a random session token in
an HttpOnly, SameSite=Strict cookie; the key itself never goes back to the browser. The server
keeps token → key in memory and re-checks the key against the live key ring on every request,
so revoking a key (`DELETE /v1/keys/...`) ends its sessions at once. Scripts skip the form and
send `Authorization: Bearer <key>`, exactly as for the collector's read routes.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from alphatrace.server.auth import GRANTS, KeyRing, Principal

COOKIE = "alphatrace_session"
DEFAULT_TTL_S = 12 * 3600


@dataclass(frozen=True)
class Access:
    """The outcome for one request: `who` is set when it may read."""

    who: Principal | None
    status: int  # 200 may read, 401 no valid credentials, 403 a key without read scope


class Sessions:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_sessions: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._by_token: dict[str, tuple[str, float]] = {}

    def create(self, key: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._by_token) >= self.max_sessions:
                self._purge(now)
                while len(self._by_token) >= self.max_sessions:  # oldest first
                    self._by_token.pop(next(iter(self._by_token)))
            self._by_token[token] = (key, now + self.ttl_s)
        return token

    def key(self, token: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            found = self._by_token.get(token)
            if found is None:
                return None
            if found[1] <= now:
                del self._by_token[token]
                return None
            return found[0]

    def drop(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)

    def _purge(self, now: float) -> None:
        for t in [t for t, (_, exp) in self._by_token.items() if exp <= now]:
            del self._by_token[t]


def can_read(who: Principal | None) -> bool:
    return who is not None and "read" in GRANTS.get(who.scope, frozenset())


def access(request: Request, sessions: Sessions) -> Access:
    """Bearer key if the request has an Authorization header (no fallback to the cookie when
    it is wrong), else the session cookie."""
    ring: KeyRing = request.app.state.keyring
    header = request.headers.get("authorization")
    key: str | None
    if header is not None:
        scheme, _, cred = header.partition(" ")
        key = cred.strip() if scheme.lower() == "bearer" and cred.strip() else None
    else:
        token = request.cookies.get(COOKIE)
        key = sessions.key(token) if token else None
    if key is None:
        return Access(None, 401)
    who = ring.verify(key)
    if who is None:
        return Access(None, 401)
    return Access(who, 200) if can_read(who) else Access(None, 403)


def safe_next(target: str | None) -> str:
    """Only a path on this server: never `//host`, a scheme, or a backslash trick."""
    t = (target or "/").strip()
    if not t.startswith("/") or t.startswith("//") or "\\" in t or any(ord(c) < 32 for c in t):
        return "/"
    return t
