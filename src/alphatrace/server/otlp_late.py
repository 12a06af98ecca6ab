"""Held spans that no request releases: written when their wait is over, and at shutdown.

A request releases what it can (its roots, traces past their wait, memory over the cap), but
when no OTLP traffic comes, nothing would; this thread wakes when the oldest held trace is due
and writes it. `start()` first holds again what a collector that was killed still held
(`otlp_held.load`), so those traces are decided as they would have been. `close()` (the app calls it when the front ends have stopped, before the writer
stops) writes every span still held, decided by what arrived, so a clean stop loses none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from alphatrace.server.otlp_export import write_ready
from alphatrace.server.otlp_held import load
from alphatrace.server.trace_hold import Ready, TraceHold
from alphatrace.server.writer import Busy, Writer
from alphatrace.store import Store

log = logging.getLogger("alphatrace.server")
IDLE_S = 1.0  # how often to look when nothing is held
RETRY_S = 0.5  # a busy writer: try again after


class LateWriter:
    def __init__(self, writer: Writer, hold: TraceHold) -> None:
        self.writer, self.hold = writer, hold
        self._stop = threading.Event()
        self._leftover: list[Ready] = []  # the timer's, when the stop came while it retried
        self._thread = threading.Thread(target=self._run, name="alphatrace-trace-hold",
                                        daemon=True)

    def start(self) -> None:
        """Hold again the spans held in the store (the writer is running), then start the
        timer (again, if an app's lifespan is entered a second time)."""
        try:
            # Read on a cursor, not as a writer round: a round would run the after-round hooks
            # (the pipeline) before any request arrived.
            with self.writer.reader() as cur:
                self.hold.restore(load(Store(con=cur)))
        except Exception:
            log.exception("the held OTLP spans in the store could not be read back")
        if self._thread.ident is not None:
            self._thread = threading.Thread(target=self._run, name="alphatrace-trace-hold",
                                            daemon=True)
        self._stop.clear()
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the timer, then write every held span (decided by what arrived). Callable from
        a running event loop (the app's shutdown): the write runs on a thread of its own."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        ready = self._leftover + self.hold.drain()
        done: list[bool] = []
        writing = threading.Thread(target=lambda: done.append(
            self._write(ready, lambda: time.monotonic() > deadline)), name="alphatrace-drain")
        writing.start()
        writing.join(timeout + 5)
        if not done or not done[0]:
            log.error("%d held spans not written at shutdown: the writer stayed busy", len(ready))

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.hold.next_due()
            if self._stop.wait(IDLE_S if wait is None else min(max(wait, 0.01), IDLE_S)):
                return
            ready = self.hold.due()
            if not self._write(ready, self._stop.is_set):
                self._leftover = ready  # close() writes them
                return

    def _write(self, ready: list[Ready], give_up: Callable[[], bool]) -> bool:
        """Write `ready`, retrying while the writer is busy until `give_up()`; whether done
        (a failure other than busy is logged and counts as done: retrying would not help)."""
        while ready:
            try:
                asyncio.run(write_ready(self.writer, ready))
                return True
            except Busy:
                if give_up():
                    return False
                time.sleep(RETRY_S)
            except Exception:
                log.exception("%d held spans could not be written", len(ready))
                return True
        return True
