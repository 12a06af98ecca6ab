"""Sending what the outbox holds: one pass (`deliver_pending`, what `alphatrace notify send`
runs) and the server's background thread (`Dispatcher`) that runs passes when woken.

Targets are served side by side (a thread each, up to `workers`), each target's deliveries in
order; a target's first failure ends its turn, and the dispatcher leaves that target alone
until the failed delivery's next try, so a receiver that is down gets one probe per backoff
step rather than every queued delivery each time. Results are written by the thread that
runs the pass, on its own cursor, each in a short transaction: no transaction is open while a
request waits, and neither the server's writer thread nor its live pipeline ever waits on a
receiver.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx

from alphatrace.notify import callbacks, delivery, outbox
from alphatrace.notify.outbox import Attempt, Delivery
from alphatrace.server.priority import background_thread
from alphatrace.store import Store

log = logging.getLogger("alphatrace.notify")

_locks_guard = threading.Lock()
_pass_locks: dict[Path | None, threading.Lock] = {}


def _pass_lock(path: Path | None) -> threading.Lock:
    """One pass at a time per store file in this process: `notify send` run by the server for
    the CLI and the server's own dispatcher never send the same delivery side by side."""
    key = path.resolve() if path is not None else None
    with _locks_guard:
        return _pass_locks.setdefault(key, threading.Lock())


@dataclass
class PassReport:
    attempted: int = 0
    delivered: int = 0
    failed: int = 0  # still pending, to be retried
    expired: int = 0
    targets: dict[str, str] = field(default_factory=dict)  # target -> last error of this pass

    def to_dict(self) -> dict[str, object]:
        return {"attempted": self.attempted, "delivered": self.delivered,
                "failed": self.failed, "expired": self.expired, "errors": self.targets}


def deliver_pending(con: duckdb.DuckDBPyConnection, http: httpx.Client, path: Path | None, *,
                    blocked: dict[str, dt.datetime] | None = None, limit: int = 500,
                    workers: int = 4, environ: Mapping[str, str] | None = None) -> PassReport:
    """One pass over the due deliveries (at most `limit`). `blocked` (target -> time) is the
    caller's memory of targets that failed; this pass skips them until that time, and
    updates it."""
    report = PassReport()
    with _pass_lock(path):
        at = outbox.now()
        by_target: dict[str, list[Delivery]] = {}
        for d in outbox.due(con, at, limit):
            if blocked is not None and blocked.get(d.target, at) > at:
                continue
            by_target.setdefault(d.target, []).append(d)
        if not by_target:
            return report
        results: queue.Queue[tuple[Delivery, Attempt] | None] = queue.Queue()

        def turn(ds: list[Delivery]) -> None:
            try:
                for d in ds:
                    a = delivery.send(http, d, environ)
                    results.put((d, a))
                    if not a.ok:
                        break
            finally:
                results.put(None)

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(by_target))),
                                thread_name_prefix="alphatrace-notify-send") as pool:
            for ds in by_target.values():
                pool.submit(turn, ds)
            left = len(by_target)
            while left:
                item = results.get()
                if item is None:
                    left -= 1
                    continue
                d, a = item
                status, nxt = outbox.record(con, d, a)
                report.attempted += 1
                if status == "delivered":
                    report.delivered += 1
                    if blocked is not None:
                        blocked.pop(d.target, None)
                    continue
                report.targets[d.target] = a.error or f"HTTP {a.status_code}"
                if status == "expired":
                    report.expired += 1
                else:
                    report.failed += 1
                    if blocked is not None and nxt is not None:
                        blocked[d.target] = nxt
    return report


class Dispatcher:
    """The server's sender: a daemon thread that runs a pass when woken (a decision appended
    in this process, an `after_round` of the writer) and when the next retry is due, with a
    cursor of its own on the server's store."""

    def __init__(self, store: Store, *, poll_s: float = 2.0, http: httpx.Client | None = None,
                 workers: int = 4) -> None:
        self.path = store.path
        self.cursor = store.cursor()
        self.poll_s = poll_s
        self.http = http if http is not None else delivery.client()
        self.workers = workers
        self.blocked: dict[str, dt.datetime] = {}
        self.passes = 0
        self.delivered = 0
        self.failed = 0
        self.expired = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = background_thread(self._loop, "alphatrace-notify")
        self._unlisten: Callable[[], None] | None = None

    def start(self) -> None:
        self._unlisten = callbacks.on_file(self.path, lambda records: self.wake())
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def after_round(self, store: Store) -> None:
        """The writer's after-round hook: wake, never wait (the pipeline must not)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (a request in flight may take up to the client's timeout) and
        close the cursor; pending deliveries stay in the store for the next start."""
        if self._unlisten is not None:
            self._unlisten()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            try:
                self.cursor.close()
            except duckdb.Error:
                log.debug("notify cursor close failed", exc_info=True)
        self.http.close()

    def run_once(self) -> PassReport:
        r = deliver_pending(self.cursor, self.http, self.path, blocked=self.blocked,
                            workers=self.workers)
        self.passes += 1
        self.delivered += r.delivered
        self.failed += r.failed
        self.expired += r.expired
        return r

    def _wait_s(self) -> float:
        nxt = outbox.next_due(self.cursor)
        if nxt is None:
            return self.poll_s
        later = [t for t in self.blocked.values() if t > outbox.now()]
        if later and nxt < min(later):  # what is due now belongs to blocked targets
            nxt = min(later)
        return max(0.0, min(self.poll_s, (nxt - outbox.now()).total_seconds()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.poll_s
            try:
                self.run_once()
                wait = self._wait_s()
            except Exception:
                log.exception("notification pass failed")
            if self._stop.is_set():
                return
            self._wake.wait(wait)
