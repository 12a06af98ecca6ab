"""Parsing request bodies in worker processes, away from the server's GIL.

Why: under `alphatrace serve` one process holds the event loop, the writer, the live pipeline
and the parsing of every request body, and all of them take turns on one GIL. Mapping an OTLP
export is pure Python (about 25 µs a span: 13 ms for a 512-span export), so at 10,000 spans/s
it alone held the GIL about a quarter of the time, and every other thread (the writer between
its DuckDB calls, the loop answering a sizing request) queued behind it. In a worker process it
runs on the other core and the server only unpickles the result (bench/RESULTS.md, lead's
section of 2026-12-03 09:10–12:10).

`Parsers.run(fn, *args)` runs a module-level function in a worker process and returns its
result (its exception, an `HTTPException` included, is raised here). With no workers (the
default of `create_app`, so tests and embedded apps stay one process), it runs on a thread as
before. A worker that dies (killed, out of memory) breaks the pool: the request is parsed on a
thread instead, the pool is started again, and no request fails because of it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger("alphatrace.server")
T = TypeVar("T")

# The cyclic GC thresholds of a worker (as `alphatrace serve` sets its own, cli/server.py
# `GC_THRESHOLDS`): a worker makes and frees a dict per span, none of them in cycles.
WORKER_GC_THRESHOLDS = (50_000, 20, 100)
PARENT_CHECK_S = 1.0


def default_workers() -> int:
    """Workers `alphatrace serve` starts: one per core beyond the one the server's own
    threads use, at most 4 (a 2-core machine: 1)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _init_worker(preload: tuple[str, ...]) -> None:
    gc.set_threshold(*WORKER_GC_THRESHOLDS)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                     name="alphatrace-parent-watch").start()
    for module in preload:
        importlib.import_module(module)


def _exit_with_parent(parent: int) -> None:
    """End this worker once its server is gone. A server killed outright (SIGKILL, out of
    memory) cannot stop its workers, and they would not notice: each holds both ends of its
    task queue's pipe, so reading it never ends. Checked once a second: an orphan is adopted
    by another process, so its parent pid changes."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _ready() -> int:
    return os.getpid()


class Parsers:
    """Worker processes for request parsing; see the module docstring."""

    def __init__(self, workers: int = 0, preload: tuple[str, ...] = ()) -> None:
        """`preload`: modules a worker imports when it starts (those of the functions it will
        run), so the first request does not wait for the imports."""
        self.workers = workers
        self.preload = preload
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    def start(self) -> None:
        """Start the workers and wait until each has imported what it runs (spawned processes
        start empty: the first request must not pay for that)."""
        if self.workers <= 0:
            return
        with self._lock:
            self._pool = self._new_pool()
        pool = self._pool
        for f in [pool.submit(_ready) for _ in range(self.workers)]:
            f.result(timeout=120)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads (writer, DuckDB's) whose locks a fork copies
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.preload,))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        pool = self._pool
        if pool is None:
            return await asyncio.to_thread(fn, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            log.warning("a parsing worker died; parsing on a thread while the pool restarts")
            self._restart(pool)
            return await asyncio.to_thread(fn, *args)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return  # another request restarted it already
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self.restarts += 1

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
