"""The SDK's in-process queue and the background thread that drains it to a sink.

Why this shape: the agent's hot path only appends a dict to a deque (atomic under the GIL, no
lock, no syscall), so emitting costs microseconds and never touches disk or network. A daemon
thread wakes every `poll_s`, hands what is queued to the sink, and lets the sink do its own
time-based work (HTTP batching, spool rotation). The queue is bounded: past `max_queue` the
event is written straight to the overflow spool instead of being dropped. `flush()` waits until
everything queued before the call has reached the sink; an atexit hook flushes, and whatever a
stuck sink still holds at exit is spilled to the spool.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from alphatrace.sdk.encode import encode_many
from alphatrace.sdk.prices import PriceTable, resolve_table
from alphatrace.sdk.sinks import HttpSink, Sink, SpoolSink, StoreSink, default_spool_dir
from alphatrace.sdk.spool import SpoolWriter

log = logging.getLogger("alphatrace.sdk")

DRAIN_CHUNK = 4096


@dataclass(frozen=True)
class Config:
    """How the SDK delivers events. Defaults come from the environment (see docs/collector.md)."""

    sink: str = "auto"  # auto | spool | http | store
    url: str | None = None
    api_key: str | None = None
    spool_dir: Path = field(default_factory=default_spool_dir)
    db: Any = None
    batch_size: int = 512
    flush_interval_s: float = 5.0
    max_queue: int = 100_000
    poll_s: float = 0.1
    timeout_s: float = 10.0
    retries: int = 4
    spool_max_bytes: int = 16 * 1024 * 1024
    spool_max_age_s: float = 30.0
    exit_timeout_s: float = 10.0

    @staticmethod
    def from_env() -> Config:
        return Config(
            sink=os.environ.get("ALPHATRACE_SINK", "auto"),
            url=os.environ.get("ALPHATRACE_URL") or None,
            api_key=os.environ.get("ALPHATRACE_API_KEY") or None,
        )

    def kind(self) -> str:
        if self.sink != "auto":
            return self.sink
        if self.url:
            return "http"
        if self.db is not None:
            return "store"
        return "spool"


def spool_sink(cfg: Config) -> SpoolSink:
    return SpoolSink(
        SpoolWriter(cfg.spool_dir, max_bytes=cfg.spool_max_bytes, max_age_s=cfg.spool_max_age_s)
    )


def build_sink(cfg: Config, spool: SpoolSink) -> Sink:
    """The configured sink; `spool` is its fallback (and is the sink itself for "spool")."""
    kind = cfg.kind()
    if kind == "http":
        if not cfg.url:
            raise ValueError("sink 'http' needs url= or $ALPHATRACE_URL")
        return HttpSink(
            cfg.url, cfg.api_key, spool, batch_size=cfg.batch_size,
            interval_s=cfg.flush_interval_s, timeout_s=cfg.timeout_s, retries=cfg.retries,
        )
    if kind == "store":
        return StoreSink(cfg.db, spool)
    if kind == "spool":
        return spool
    raise ValueError(f"unknown sink {kind!r} (expected auto, spool, http or store)")


class Emitter:
    """One queue, one background thread, one sink."""

    def __init__(self, sink: Sink, overflow: SpoolSink, *, max_queue: int = 100_000,
                 poll_s: float = 0.1) -> None:
        self.sink = sink
        self.overflow = overflow
        self.max_queue = max_queue
        self.poll_s = poll_s
        self._q: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self.overflowed = 0

    # -- hot path --------------------------------------------------------------------------
    def put(self, ev: dict[str, Any]) -> None:
        if self._thread is None:
            self._start()
        if self._closing or len(self._q) >= self.max_queue:
            self._spill_one(ev)
            return
        self._q.append(ev)

    def _spill_one(self, ev: dict[str, Any]) -> None:
        self.overflowed += 1
        try:
            self.overflow.write_lines(encode_many([ev]))
        except Exception:  # never raise into the agent
            log.exception("alphatrace: overflow spool failed")

    # -- background ------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closing:
                t = threading.Thread(target=self._loop, name="alphatrace-sdk", daemon=True)
                t.start()
                self._thread = t

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.poll_s)
            self._wake.clear()
            with self._lock:
                waiters, self._waiters = self._waiters, []
                closing = self._closing
            self._drain()
            self._safe(self.sink.tick, time.monotonic())
            if waiters or closing:
                self._safe(self.sink.flush)
                if self.overflow is not self.sink:
                    self._safe(self.overflow.flush)
                for w in waiters:
                    w.set()
            if closing:
                self._safe(self.sink.close)
                return

    def _drain(self) -> None:
        q = self._q
        while q:
            batch: list[dict[str, Any]] = []
            try:
                while len(batch) < DRAIN_CHUNK:
                    batch.append(q.popleft())
            except IndexError:
                pass
            self._safe(self.sink.write, batch)

    @staticmethod
    def _safe(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("alphatrace: sink failed")

    # -- control ---------------------------------------------------------------------------
    def pending(self) -> int:
        return len(self._q)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until everything queued so far reached the sink. False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return not self._q
        done = threading.Event()
        with self._lock:
            self._waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, close the sink and stop the thread; spill leftovers if the sink is stuck."""
        with self._lock:
            self._closing = True
            t = self._thread
        if t is None:
            self._safe(self.sink.close)
            return True
        self._wake.set()
        t.join(timeout)
        if not t.is_alive():
            return True
        left = self.sink.salvage()
        q = self._q
        rest = []
        while q:
            try:
                rest.append(q.popleft())
            except IndexError:
                break
        lines = left + encode_many(rest)
        if lines:
            log.warning("alphatrace: sink still busy at exit; %d event(s) spooled to %s",
                        len(lines), self.overflow.writer.directory)
            self.overflow.write_lines(lines)
        self._safe(self.overflow.flush)
        return False

    def abandon(self) -> None:
        """After fork: the parent's queue, thread and files are not ours."""
        self._q = deque()
        self._thread = None
        self._lock = threading.Lock()
        self._waiters = []
        self._safe(self.sink.abandon)
        self._safe(self.overflow.abandon)


# -- the process-wide emitter ----------------------------------------------------------------
_config: Config | None = None
_emitter: Emitter | None = None
_prices: PriceTable | None = None
_global_lock = threading.Lock()


def config() -> Config:
    global _config
    if _config is None:
        _config = Config.from_env()
    return _config


def get_emitter() -> Emitter:
    global _emitter
    em = _emitter
    if em is not None:
        return em
    with _global_lock:
        if _emitter is None:
            cfg = config()
            overflow = spool_sink(cfg)
            try:
                sink: Sink = build_sink(cfg, overflow)
            except Exception as e:  # a bad URL must not break the agent: spool instead
                log.warning("alphatrace: %s; events go to the spool %s", e, cfg.spool_dir)
                sink = overflow
            _emitter = Emitter(sink, overflow, max_queue=cfg.max_queue, poll_s=cfg.poll_s)
        return _emitter


def prices() -> PriceTable:
    global _prices
    if _prices is None:
        _prices = resolve_table(None)
    return _prices


def configure(
    *,
    sink: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    db: Any = None,
    prices: Any = None,
    **options: Any,
) -> Config:
    """Set how events are delivered (and the price table). Flushes the previous sink first.

    `sink`: "auto" (http if a url is set, else store if db is set, else spool), "spool",
    "http" or "store". `prices`: a PriceTable, a YAML path, or {model: {input, output,
    cached_input}} merged over the shipped table. Other options: batch_size, flush_interval_s,
    max_queue, poll_s, timeout_s, retries, spool_max_bytes, spool_max_age_s, exit_timeout_s.
    """
    global _config, _emitter, _prices
    with _global_lock:
        old = _emitter
        _emitter = None
        cfg = config()
        changes: dict[str, Any] = dict(options)
        if sink is not None:
            changes["sink"] = sink
        if url is not None:
            changes["url"] = url
        if api_key is not None:
            changes["api_key"] = api_key
        if spool_dir is not None:
            changes["spool_dir"] = Path(spool_dir)
        if db is not None:
            changes["db"] = db
        _config = replace(cfg, **changes)
        if prices is not None:
            _prices = resolve_table(prices)
    if old is not None:
        old.close(cfg.exit_timeout_s)
    return _config


def flush(timeout: float | None = 10.0) -> bool:
    """Deliver everything emitted so far (closing the spool file). False if it timed out."""
    em = _emitter
    if em is None:
        return True
    return em.flush(timeout)


def shutdown() -> None:
    global _emitter
    em = _emitter
    _emitter = None
    if em is not None:
        em.close(config().exit_timeout_s)


def install(em: Emitter) -> Emitter | None:
    """Use `em` as the process-wide emitter (custom sinks, tests); returns the previous one."""
    global _emitter
    with _global_lock:
        old, _emitter = _emitter, em
    return old


def reset(cfg: Config | None = None) -> None:
    """Forget the emitter and configuration (tests; after fork)."""
    global _emitter, _config, _prices
    _emitter, _config, _prices = None, cfg, None


def _after_fork_in_child() -> None:
    global _emitter, _global_lock
    _global_lock = threading.Lock()
    em = _emitter
    _emitter = None
    if em is not None:
        em.abandon()


atexit.register(shutdown)
os.register_at_fork(after_in_child=_after_fork_in_child)
