"""`alphatrace.size()` for an agent: asks the server when one is configured, else the store.

With $ALPHATRACE_URL set (or `alphatrace.configure(url=...)`) and no `db=`, the size comes
from the server's GET /v1/agents/{agent}/sizing, whose answer (state and multiplier) is reused
for `cache_s` (default 1 s): a cached call is a dict lookup and a multiplication. The key is
$ALPHATRACE_READ_KEY, else $ALPHATRACE_API_KEY (the route needs scope `read` or `admin`).

The agent never waits longer than `timeout_ms` (default 200 ms) for an answer: the request
runs on a small pool of threads and the caller stops waiting at the deadline (a late answer
still fills the cache, for what is left of `cache_s` counted from when it was asked: a late
"not killed" never outlives a kill by more than `cache_s`). When the server cannot be reached,
or refuses, the policy's `sizing.fail` decides: `closed` (the default: a kill switch must not
fail open) sizes 0, `last_known` reuses the last answer this process had for the agent (0
without one). Either way it is logged, at most once a minute. A failure is remembered for `cache_s` too, so a dead
server costs one timeout per agent per `cache_s`, not one per call.

Settings: the `sizing:` section of the `policy=` given to `size()`, else the server's policy
(each answer carries it), else the defaults.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from alphatrace.errors import GovernanceError
from alphatrace.governance.policy import GovernancePolicy, SizingSection
from alphatrace.governance.sizing import check_inputs, killed_message, sized
from alphatrace.policy import Policy
from alphatrace.sdk.sinks import _RateLimited

ENV_READ_KEY = "ALPHATRACE_READ_KEY"
WORKERS = 4


@dataclass(frozen=True)
class Answer:
    """What the server said about an agent (or what a failure means for it)."""

    multiplier: float
    killed: bool
    reason: str | None
    seq: int | None
    ok: bool = True  # False: the server could not be reached (the fail policy was applied)


CLOSED = Answer(0.0, False, None, None, ok=False)


class RemoteSizer:
    """The process's client of one server's sizing route."""

    def __init__(self, url: str, api_key: str | None, settings: SizingSection | None = None
                 ) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"collector URL must be http(s)://host[:port], got {url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port, self._base = parts.hostname, parts.port, parts.path or ""
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.pinned = settings is not None  # given by the caller: the server's does not replace it
        self.settings = settings or SizingSection()
        self._cache: dict[str, tuple[float, Answer]] = {}  # agent → (valid until, answer)
        self._last_good: dict[str, Answer] = {}
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="alphatrace-size")
        self._local = threading.local()
        self._warn = _RateLimited()
        self.requests = 0
        self.failures = 0

    # -- the call ----------------------------------------------------------------------------
    def answer(self, agent: str) -> Answer:
        hit = self._cache.get(agent)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return self._ask(agent)

    def size(self, agent: str, base_size: float, score: float, raise_on_kill: bool = True
             ) -> float:
        check_inputs(base_size, score)
        hit = self._cache.get(agent)
        a = hit[1] if hit is not None and hit[0] > time.monotonic() else self._ask(agent)
        if a.killed and raise_on_kill:
            raise GovernanceError(killed_message(agent, a.reason))
        return sized(base_size, score, a.multiplier, a.killed)

    def _ask(self, agent: str) -> Answer:
        timeout = self.settings.timeout_ms / 1000.0
        fut = self._pool.submit(self._fetch, agent, timeout)
        try:
            return fut.result(timeout=timeout)
        except FutureTimeout:
            return self._failed(agent, f"no answer within {self.settings.timeout_ms:g} ms")

    # -- on a pool thread --------------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        self._local.conn = None

    def _fetch(self, agent: str, timeout: float) -> Answer:
        self.requests += 1
        asked = time.monotonic()  # the answer is the server's state from then on, not older
        path = f"{self._base}/v1/agents/{quote(agent, safe='')}/sizing"
        for attempt in (1, 2):
            reused = getattr(self._local, "conn", None) is not None
            try:
                conn = self._connection(timeout)
                conn.request("GET", path, headers=self._headers)
                resp = conn.getresponse()
                body = resp.read()
                break
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                # A kept-alive connection the server has since closed fails before any answer:
                # once, on a fresh connection (a timeout is no such case: it is not retried).
                stale = isinstance(e, http.client.RemoteDisconnected | ConnectionResetError
                                   | BrokenPipeError)
                if not (reused and stale and attempt == 1):
                    return self._failed(agent, f"{type(e).__name__}: {e}")
        if resp.status != 200:
            return self._failed(agent, f"HTTP {resp.status}: {body[:200]!r}")
        try:
            doc = json.loads(body)
            a = Answer(float(doc["multiplier"]), bool(doc["killed"]), doc.get("reason"),
                       doc.get("seq"))
            server = SizingSection.model_validate(doc.get("policy") or {})
        except (ValueError, KeyError, TypeError) as e:
            return self._failed(agent, f"unreadable answer: {e}")
        if not self.pinned:
            self.settings = server
        self._last_good[agent] = a
        self._cache[agent] = (asked + self.settings.cache_s, a)
        return a

    def _failed(self, agent: str, why: str) -> Answer:
        """The fail policy's answer, remembered for cache_s."""
        self.failures += 1
        fail = self.settings.fail
        a = self._last_good.get(agent, CLOSED) if fail == "last_known" else CLOSED
        self._warn.warn(f"size:{fail}", "alphatrace.size: sizing server %s:%s unavailable (%s); "
                        "fail: %s -> %s", self._host, self._port, why, fail,
                        "size 0" if a is CLOSED else "last known answer")
        self._cache[agent] = (time.monotonic() + self.settings.cache_s,
                              Answer(a.multiplier, a.killed, a.reason, a.seq, ok=False)
                              if a is not CLOSED else a)
        return self._cache[agent][1]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_SIZER: RemoteSizer | None = None
_SIZER_KEY: tuple[str, str | None, Any] | None = None
_LOCK = threading.Lock()


def _server() -> tuple[str | None, str | None]:
    from alphatrace.sdk import emitter

    cfg = emitter.config()
    return cfg.url, os.environ.get(ENV_READ_KEY) or cfg.api_key


_LOADED: dict[str, SizingSection] = {}


def _settings_of(policy: str | Path | Policy | GovernancePolicy | None) -> SizingSection | None:
    """The `sizing:` section of the caller's policy (a file is read once per process)."""
    if policy is None:
        return None
    if isinstance(policy, GovernancePolicy):
        return policy.sizing
    from alphatrace.governance.policy import load_governance

    if isinstance(policy, Policy):
        return load_governance(policy).sizing
    key = str(Path(policy).resolve())
    if key not in _LOADED:
        _LOADED[key] = load_governance(policy).sizing
    return _LOADED[key]


def sizer(url: str, api_key: str | None, settings: SizingSection | None = None) -> RemoteSizer:
    """The process's sizer for (url, key, settings): made once, reused by every call."""
    global _SIZER, _SIZER_KEY
    key = (url, api_key, settings)
    s = _SIZER
    if s is not None and key == _SIZER_KEY:
        return s
    with _LOCK:
        if _SIZER is None or key != _SIZER_KEY:
            if _SIZER is not None:
                _SIZER.close()
            _SIZER, _SIZER_KEY = RemoteSizer(url, api_key, settings), key
        return _SIZER


def reset() -> None:
    """Forget the process's sizer (its cache and connections): tests, and after configure()."""
    global _SIZER, _SIZER_KEY
    with _LOCK:
        if _SIZER is not None:
            _SIZER.close()
        _SIZER, _SIZER_KEY = None, None


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's pool threads: it makes its own sizer."""
    global _SIZER, _SIZER_KEY, _LOCK
    _SIZER, _SIZER_KEY, _LOCK = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def size(agent: str, base_size: float, score: float, db: Any = None,
         policy: str | Path | Policy | GovernancePolicy | None = None, *,
         raise_on_kill: bool = True) -> float:
    """base_size × |score| × the agent's confidence multiplier, now.

    From the server when one is configured and `db` is None (see the module docstring), else
    from the store (`db`, or the default store). A killed agent, or one of a killed strategy
    class, raises GovernanceError, or gets 0.0 with `raise_on_kill=False`. A kill stops new
    size only: positions already open stay the agent's to close."""
    if db is None:
        url, key = _server()
        if url:
            return sizer(url, key, _settings_of(policy)).size(agent, base_size, score,
                                                              raise_on_kill)
    from alphatrace.governance import sizing as local

    return local.size(agent, base_size, score, db, policy, raise_on_kill=raise_on_kill)


__all__ = ["Answer", "RemoteSizer", "reset", "size", "sizer"]
