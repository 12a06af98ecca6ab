"""The after-round hooks' thread: what follows the writer's rounds runs here, beside ingest.

Why a thread of its own: the first hook, the live pipeline (server/pipeline.py), takes
100–200 ms a pass at a million runs; run by the writer, it held every ingest round back that
long. Here the hooks run on a thread and a DuckDB cursor of their own (same database, their
own transactions: DuckDB MVCC), so ingest rounds keep committing while a pass runs. A pass
writes only derived tables (legs, the ledger and its bookkeeping, reconcile_log, decisions,
gate progress, the notify outbox), which ingest never writes, so their transactions do not
conflict.

The writer reports each round it finished (`committed`); the thread runs every hook once for
all the rounds reported before that run started, in registration order. One run thus covers
the rounds that committed while the previous run was busy (coalescing needs no timer). A hook
that raises is logged and the next one still runs.

After a run that took d seconds the thread rests `rest` × d before the next one (`REST`: as
long as the run took). Under sustained ingest a run is due again as soon as one ends, so
without the rest the hooks took a whole core of a small machine, in CPU taken from the
rounds themselves: on 2 cores, OTLP requests at 10,500 spans/s waited p99 0.3–0.4 s for their
round against 0.2–0.27 s with the rest, and the server spent 15–20% less CPU a span
(bench/bench_otlp.py; bench/RESULTS.md, session of 2026-12-03, lead). A round that comes after
the rest is over starts a run at once.

A round that may carry evidence ends the rest at once (`committed(urgent=True)`; the writer
decides which rounds, `writer.may_decide`): a PnL event, bars, a replayed signal or a CLI
write can complete a losing run, and a kill must not wait a rest (evidence that lands during a
run then waits for that run and the next: about 2 × d at worst, not 3 × d). The rounds that
rest are the stream that makes the load: telemetry and live signals.

`lock` is held while the hooks run. Anything else that writes derived state in this process
(`reconcile`, `gates evaluate`, `revive`, `exclusions apply` run for a remote caller or the
CLI) holds it too, so it never runs beside a pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from alphatrace.server.priority import background_thread
from alphatrace.store import Store

log = logging.getLogger("alphatrace.server")

Hook = Callable[[Store], None]
REST = 1.0  # rest after a run, as a multiple of the run's time (module docstring)


@dataclass(frozen=True)
class Rounds:
    """Writer rounds one hook run covers: how many, and when the oldest was reported
    (`time.time()` seconds; None for none)."""

    count: int
    since: float | None


class AfterRounds:
    """The hooks, the thread that runs them and its store view (a cursor of `store`)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 rest: float = REST) -> None:
        self.store = Store(store.path, con=store.cursor())
        self.clock = clock
        self.rest = rest
        self.lock = threading.RLock()
        self.runs = 0
        self._hooks: list[Hook] = []
        self._cv = threading.Condition()
        self._waiting = 0
        self._urgent = False
        self._since: float | None = None
        self._settle: list[tuple[Future[Any], Any]] = []
        self._covering = Rounds(0, None)
        self._busy = False
        self._stopping = False
        self._thread = background_thread(self._loop, "alphatrace-after-round")

    def add(self, fn: Hook) -> None:
        self._hooks.append(fn)

    def start(self) -> None:
        self._thread.start()

    def committed(self, settle: Iterable[tuple[Future[Any], Any]] = (), urgent: bool = False) -> None:
        """A round finished: the hooks run (again) for it. Each (future, result) of `settle`
        is resolved once a run that started after this call has finished. `urgent`: the
        round may complete evidence, so a rest in progress ends now (module docstring)."""
        with self._cv:
            self._waiting += 1
            self._urgent = self._urgent or urgent
            if self._since is None:
                self._since = self.clock()
            self._settle.extend(settle)
            self._cv.notify_all()

    def covering(self) -> Rounds:
        """The rounds of the run in progress (for the pipeline's pass record and lag)."""
        return self._covering

    @property
    def busy(self) -> bool:
        """Whether a run is in progress or rounds wait for one."""
        return self._busy or self._waiting > 0

    def idle(self, timeout: float = 60.0) -> bool:
        """Wait until no run is in progress or due (tests, benchmarks)."""
        with self._cv:
            return self._cv.wait_for(lambda: not self.busy, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Run the hooks for the rounds still reported, then end the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._waiting > 0 or self._stopping)
                if self._waiting == 0:
                    return
                self._covering = Rounds(self._waiting, self._since)
                self._waiting, self._since, self._urgent = 0, None, False
                settle, self._settle = self._settle, []
                self._busy = True
            started = time.monotonic()
            try:
                with self.lock:
                    self._run()
            finally:
                for fut, result in settle:
                    if not fut.done():
                        fut.set_result(result)
                took = time.monotonic() - started
                with self._cv:
                    self.runs += 1
                    self._busy = False
                    self._cv.notify_all()
                    if self.rest > 0:  # a stop or a round with evidence ends the rest
                        self._cv.wait_for(lambda: self._stopping or self._urgent,
                                          self.rest * took)

    def _run(self) -> None:
        for fn in self._hooks:
            try:
                fn(self.store)
            except Exception:
                log.exception("after-round hook %r failed", fn)
