"""Where SDK events go: a spool folder, the HTTP collector, or a store opened in-process.

Every sink runs on the SDK's background thread and must never raise into the agent: a failure is
logged (rate-limited) and the events go to the fallback spool instead of being dropped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from alphatrace.sdk.encode import encode_many, prepare
from alphatrace.sdk.spool import SpoolWriter

log = logging.getLogger("alphatrace.sdk")


class _RateLimited:
    """Log a recurring problem once a minute, not once per batch."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}

    def warn(self, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e18) >= self.every_s:
            self._last[key] = now
            log.warning(msg, *args)


class Sink(Protocol):
    def write(self, events: list[dict[str, Any]]) -> None: ...
    def tick(self, now: float) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def salvage(self) -> list[str]: ...
    def abandon(self) -> None: ...


class SpoolSink:
    """JSON Lines files in a folder, one file per process (see `alphatrace.sdk.spool`)."""

    def __init__(self, writer: SpoolWriter) -> None:
        self.writer = writer
        self._warn = _RateLimited()
        self.lost = 0  # events the disk refused: logged, counted, the only loss possible

    def write_lines(self, lines: list[str]) -> None:
        try:
            self.writer.write_lines(lines)
        except OSError as e:
            self.lost += len(lines)
            self._warn.warn("spool", "alphatrace: cannot write spool %s: %s", self.writer.directory, e)

    def write(self, events: list[dict[str, Any]]) -> None:
        self.write_lines(encode_many(events))

    def tick(self, now: float) -> None:
        try:
            self.writer.tick(now)
        except OSError as e:
            self._warn.warn("rotate", "alphatrace: cannot rotate spool file: %s", e)

    def flush(self) -> None:
        try:
            self.writer.rotate()
        except OSError as e:
            self._warn.warn("rotate", "alphatrace: cannot rotate spool file: %s", e)

    def close(self) -> None:
        self.flush()

    def salvage(self) -> list[str]:
        return []

    def abandon(self) -> None:
        self.writer.abandon()


class HttpSink:
    """Batches to `POST {url}/v1/events`: flush at `batch_size` events or `interval_s` seconds.

    Connection errors, 408, 429 and 5xx are retried with exponential backoff and jitter; a batch
    that still fails, or one the server refuses for good (401/403/404: a configuration problem),
    goes to the fallback spool. After a failed batch the sink stays "down" for `cooldown_s` and
    spools directly, so a dead collector costs the agent nothing.
    """

    RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __init__(
        self,
        url: str,
        api_key: str | None,
        fallback: SpoolSink,
        *,
        batch_size: int = 512,
        interval_s: float = 5.0,
        timeout_s: float = 10.0,
        retries: int = 4,
        backoff_s: float = 0.25,
        cooldown_s: float = 30.0,
    ) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"collector URL must be http(s)://host[:port], got {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "") + "/v1/events"
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.fallback = fallback
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.cooldown_s = cooldown_s
        self._pending: list[str] = []
        self._inflight: list[str] = []
        self._first_at = 0.0
        self._down_until = 0.0
        self._conn: http.client.HTTPConnection | None = None
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._warn = _RateLimited()
        self.sent = 0
        self.spilled = 0
        self.rejected = 0

    # -- transport -------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None

    def _post(self, body: bytes) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self._drop_connection()
            raise
        if resp.getheader("connection", "").lower() == "close":
            self._drop_connection()
        return resp.status, data

    # -- batching --------------------------------------------------------------------------
    def write(self, events: list[dict[str, Any]]) -> None:
        lines = encode_many(events)
        with self._lock:
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.extend(lines)
        while len(self._pending) >= self.batch_size:
            self._send_next(self.batch_size)

    def tick(self, now: float) -> None:
        if self._pending and now - self._first_at >= self.interval_s:
            self._send_all()

    def flush(self) -> None:
        self._send_all()
        self.fallback.flush()

    def close(self) -> None:
        self.flush()
        self._drop_connection()

    def _send_all(self) -> None:
        while self._pending:
            self._send_next(self.batch_size)

    def _send_next(self, n: int) -> None:
        with self._lock:
            self._inflight = self._pending[:n]
            del self._pending[:n]
            if self._pending:
                self._first_at = time.monotonic()
        try:
            self._deliver(self._inflight)
        finally:
            with self._lock:
                self._inflight = []

    def _spill(self, lines: list[str]) -> None:
        self.spilled += len(lines)
        self.fallback.write_lines(lines)

    def _deliver(self, lines: list[str]) -> None:
        if not lines:
            return
        if time.monotonic() < self._down_until or self._abort.is_set():
            self._spill(lines)
            return
        body = ("[" + ",".join(lines) + "]").encode("utf-8")
        for attempt in range(self.retries + 1):
            status: int | None
            try:
                status, data = self._post(body)
            except (OSError, http.client.HTTPException) as e:
                status, data = None, str(e).encode()
            if status is not None and 200 <= status < 300:
                self.sent += len(lines)
                self._note_rejections(data)
                return
            if status == 413 and len(lines) > 1:
                half = len(lines) // 2
                self._deliver(lines[:half])
                self._deliver(lines[half:])
                return
            if status is not None and status not in self.RETRYABLE:
                self._warn.warn(
                    f"http{status}", "alphatrace: collector answered %s; events go to the spool %s",
                    status, self.fallback.writer.directory,
                )
                self._spill(lines)
                return
            if attempt < self.retries:
                delay = min(8.0, self.backoff_s * 2**attempt) * (0.5 + random.random())
                if self._abort.wait(delay):
                    break
        self._warn.warn(
            "down", "alphatrace: collector unreachable (%s); spooling to %s",
            status if status is not None else data.decode(errors="replace"),
            self.fallback.writer.directory,
        )
        self._down_until = time.monotonic() + self.cooldown_s
        self._spill(lines)

    def _note_rejections(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
        except ValueError:
            return
        n = int(doc.get("rejected") or 0) if isinstance(doc, dict) else 0
        if n:
            self.rejected += n
            first: dict[str, Any] = next(
                (r for r in doc.get("results", []) if r.get("status") == "rejected"), {})
            self._warn.warn(
                "rejected", "alphatrace: collector rejected %d event(s), e.g. %s: %s",
                n, first.get("field"), first.get("reason"),
            )

    def salvage(self) -> list[str]:
        """Stop retrying; hand back what was not delivered (for a last spill at exit)."""
        self._abort.set()
        with self._lock:
            out = self._inflight + self._pending
            self._inflight, self._pending = [], []
        return out

    def abandon(self) -> None:
        self._conn = None
        self._pending, self._inflight = [], []
        self.fallback.abandon()


class StoreSink:
    """Ingests straight into a store opened in this process (notebooks, single-process jobs).

    The store is opened lazily on the background thread; if it cannot be (another process holds
    the DuckDB lock), events go to the fallback spool.
    """

    def __init__(self, db: Any, fallback: SpoolSink) -> None:
        self._db = db
        self._store: Any = None
        self._owns = False
        self.fallback = fallback
        self._warn = _RateLimited()

    def _open(self) -> Any:
        if self._store is None:
            from alphatrace.store import Store

            if isinstance(self._db, Store):
                self._store = self._db
            else:
                self._store = Store(self._db)
                self._owns = True
        return self._store

    def write(self, events: list[dict[str, Any]]) -> None:
        from alphatrace.store.typed_ingest import ingest_typed

        docs = [prepare(e) for e in events]
        try:
            ingest_typed(self._open(), docs, source="<sdk>")
        except Exception as e:  # locked file, disk full, closed store: spool, never raise
            self._warn.warn("store", "alphatrace: cannot write to the store (%s); spooling", e)
            self.fallback.write(events)

    def tick(self, now: float) -> None:
        self.fallback.tick(now)

    def flush(self) -> None:
        self.fallback.flush()

    def close(self) -> None:
        self.flush()
        if self._owns and self._store is not None:
            self._store.close()
            self._store = None

    def salvage(self) -> list[str]:
        return []

    def abandon(self) -> None:
        self._store = None
        self.fallback.abandon()


def default_spool_dir() -> Path:
    return Path(os.environ.get("ALPHATRACE_SPOOL") or "alphatrace-spool")
