"""Results keyed by the store's data version, computed once however many requests ask.

Why: the heavy documents (every agent's confidence path, the loss-cluster search, the audit
re-computation) only change when the ledger or the decision log does, while pages are read
far more often than the store changes. A key names the data version, so a stale entry can
never be served: a new version is a new key, and old keys fall out of a bounded LRU. Keys are
tuples whose first item names their kind; each kind has its own LRU, so browsing many agent
pages never evicts the one cluster search that took a minute.

Concurrent callers of the same key share one Future; background entries run on one worker
thread, so two heavy searches never compete for the machine's cores with each other.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

T = TypeVar("T")


class Pending(Exception):
    """A background result is not ready yet (the caller shows 'computing')."""


class Memo:
    def __init__(self, limits: dict[str, int] | None = None, default_limit: int = 256) -> None:
        self.limits = limits or {}
        self.default_limit = default_limit
        self._lock = threading.Lock()
        self._kinds: dict[Hashable, OrderedDict[Hashable, Future[Any]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._claimed: weakref.WeakSet[Future[Any]] = weakref.WeakSet()

    def _slot(self, key: Hashable) -> tuple[Future[Any], bool]:
        """(future, created): the key's future, creating an unresolved one if absent."""
        kind = key[0] if isinstance(key, tuple) and key else key
        with self._lock:
            entries = self._kinds.setdefault(kind, OrderedDict())
            fut = entries.get(key)
            if fut is not None:
                entries.move_to_end(key)
                return fut, False
            fut = Future()
            entries[key] = fut
            limit = self.limits.get(str(kind), self.default_limit)
            while len(entries) > limit:
                old_key, old = next(iter(entries.items()))
                if not old.done():  # never evict work in progress
                    break
                del entries[old_key]
            return fut, True

    def get(self, key: Hashable, fn: Callable[[], T]) -> T:
        """The cached value, computing it in this thread unless another thread already is (a
        job still queued on the background worker is taken over, not waited for)."""
        fut, _ = self._slot(key)
        if not fut.done():
            self._run(fut, fn)
        result: T = fut.result()
        return result

    def background(self, key: Hashable, fn: Callable[[], T], wait_s: float | None) -> T:
        """The value, computed on the background worker; waits at most `wait_s` seconds
        (None: until done), then raises Pending."""
        fut, created = self._slot(key)
        if created:
            self._executor().submit(self._run, fut, fn)
        try:
            result: T = fut.result(timeout=wait_s)
        except FutureTimeout:
            raise Pending() from None
        return result

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alphatrace-dash")
            return self._pool

    def drop(self, kind: str) -> None:
        """Forget every entry of one kind (e.g. to measure a document uncached)."""
        with self._lock:
            self._kinds.pop(kind, None)

    def clear(self) -> None:
        with self._lock:
            self._kinds.clear()

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, fut: Future[Any], fn: Callable[[], Any]) -> None:
        """Compute into `fut` unless another thread has claimed it (claimed under the lock, so
        a page and the background worker never both compute one key)."""
        with self._lock:
            if fut in self._claimed:
                return
            self._claimed.add(fut)
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn())
        except BaseException as e:  # the caller re-raises it from fut.result()
            fut.set_exception(e)
