"""The collector's single writer: one thread owns the store and batches every write.

Why: DuckDB allows one writer, and an ingest call has a fixed cost (one validation query, one
transaction) that dwarfs the per-event cost, so the writer merges whatever requests are waiting
into one ingest call (`typed_ingest.ingest_typed`: events as typed columns, no validation query
to plan for the events it clears) and hands each request back its own slice of the per-event
results. After taking a first request it waits up to `linger_s` for as many requests as the
previous round had plus those that queued meanwhile (concurrent clients send together), never
longer, and not at all once the round holds a request that may complete evidence (`_gather`).
Requests never share a failure: if a merged call raises, each request is retried on its own.

Reads do not go through this thread: each reading thread gets its own cursor on the same
database (DuckDB MVCC), so a long read never delays ingest and vice versa. Nor does what follows
a round (the live pipeline's pass, the sizing state, notifications): the after-round hooks run
on a thread of their own (server/after_rounds.py), so a round never waits for a pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

from alphatrace.parse import parse_duration, parse_time
from alphatrace.server.after_rounds import AfterRounds
from alphatrace.server.priority import background_thread
from alphatrace.store import Store
from alphatrace.store.ingest import EventResult
from alphatrace.store.typed_ingest import ingest_typed

log = logging.getLogger("alphatrace.server")
T = TypeVar("T")


class Busy(Exception):
    """More events are waiting than the writer accepts; the client should retry later."""


# An entry other than the default one for one kind of request (the OTLP spans'): it stores the
# merged events of a round's requests, with each request's side writes (`side`), in one
# transaction, and answers a status per event, as `ingest_typed` does.
Entry = Callable[[Store, list[Any], str, list[Any]], list[EventResult]]


class IngestObserver(Protocol):
    """What the writer reports as it goes (the app's metrics; see server/metrics.py)."""

    def results(self, source: str, results: list[EventResult]) -> None: ...
    def rejected(self, source: str, kinds: list[str | None]) -> None: ...
    def follow(self, accepted: int, duplicates: int, quarantined: int) -> None: ...
    def round(self, seconds: float) -> None: ...


class _Unobserved:
    def results(self, source: str, results: list[EventResult]) -> None:
        pass

    def rejected(self, source: str, kinds: list[str | None]) -> None:
        pass

    def follow(self, accepted: int, duplicates: int, quarantined: int) -> None:
        pass

    def round(self, seconds: float) -> None:
        pass


@dataclass
class _EventJob:
    events: list[Any]
    future: Future[list[EventResult]]
    source: str
    entry: Entry | None = None  # None: `ingest_typed`
    side: Any = None  # for `entry`: this request's other writes


@dataclass
class _CallJob:
    fn: Callable[[Store], Any]
    future: Future[Any]
    after_hooks: bool = False  # resolve the future only once the round's hooks have run


def may_decide(jobs: list[_EventJob | _CallJob], now: dt.datetime | None = None,
               horizon_s: float = 0.0) -> bool:
    """Whether a round may complete evidence for a decision, so the live pass should not wait
    out its rest (server/after_rounds.py): any write call (a market import, a CLI command run
    beside the server, `sync`), and any event of the JSON path that `_may_complete`, a signal
    without a horizon taken to have `horizon_s` (the policy's shortest). The rest
    is for the stream that makes the load: telemetry (OTLP spans come only as telemetry) and
    live signals, whose exit no bar can price before the clock reaches it."""
    at = now or dt.datetime.now(dt.UTC)
    for j in jobs:
        if isinstance(j, _CallJob):
            return True
        if j.entry is None and any(type(e) is dict and _may_complete(e, at, horizon_s)
                                   for e in j.events):
            return True
    return False


def _may_complete(event: dict[str, Any], now: dt.datetime, horizon_s: float) -> bool:
    """A PnL event, or one without a `type` (it may be PnL), may complete a run; a signal only
    once its exit (ts + its horizon, else + `horizon_s`) is not after `now`: a replay or a late
    signal is priced by bars already stored. An unreadable time counts as may (the pass
    quarantines or prices it; the rest would only delay that)."""
    kind = event.get("type")
    if kind == "telemetry":
        return False
    if kind != "alpha":
        return True
    try:
        exit_at = parse_time(event["ts"], now=now)
        h = event.get("horizon")
        exit_at += parse_duration(h) if h is not None else dt.timedelta(seconds=horizon_s)
    except (KeyError, ValueError, TypeError, OverflowError):
        return True
    return exit_at <= now


@dataclass
class WriterStats:
    rounds: int = 0
    events: int = 0
    requests: int = 0
    last_round_ms: float = 0.0
    checkpoints: int = 0
    follow: dict[str, int] = field(default_factory=dict)
    market: dict[str, int] = field(default_factory=dict)


def _closed(cur: duckdb.DuckDBPyConnection) -> bool:
    try:
        cur.close()
    except duckdb.Error:
        return False
    return True


class Writer:
    def __init__(
        self,
        db_path: str | os.PathLike[str] | None,
        *,
        max_batch_events: int = 50_000,
        max_pending_events: int = 500_000,
        linger_s: float = 0.05,
        follow_dirs: list[Path] | None = None,
        market_dirs: list[Path] | None = None,
        follow_poll_s: float = 1.0,
        checkpoint_threshold: str | None = "16MB",
        idle_checkpoint_s: float = 2.0,
        observer: IngestObserver | None = None,
    ) -> None:
        self.store = Store(db_path)
        if checkpoint_threshold and self.store.path is not None:
            # An automatic checkpoint runs in the commit that passes this much WAL and stalls
            # that round (DuckDB 2.0.1 holds every insert while it checkpoints). With the
            # store's small row groups its cost is what changed (store/connection.py), so
            # small ones often: 16 MB, ~60-120 ms at 10,000 spans/s every ~3 s, where 256 MB
            # stalled 0.6-1 s (bench/RESULTS.md, 2026-12-05). The commit that passes it may be
            # a live pass's, and the round then waits for that checkpoint: under JSON ingest at
            # ~28,000 events/s ~1 in 20 pass commits did, taking 0.1-0.6 s. Checkpointing only
            # between passes instead cost the OTLP split-trace p99 40-50 ms (same place,
            # "checkpoints between passes"). The writer also checkpoints once traffic pauses.
            self.store.con.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
        self.idle_checkpoint_s = idle_checkpoint_s
        # a signal without a horizon is taken to have this one (`may_decide`); 0 until the
        # live pipeline's policy says (server/app.py): every past signal may then decide
        self.signal_horizon_s = 0.0
        self._dirty = False
        self._last_write = 0.0
        self.max_batch_events = max_batch_events
        self.max_pending_events = max_pending_events
        self.linger_s = linger_s
        self.follow_dirs = follow_dirs or []
        self.market_dirs = market_dirs or []  # market files a recorder drops (market/follow.py)
        self.follow_poll_s = follow_poll_s
        self._q: queue.Queue[_EventJob | _CallJob | None] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread = background_thread(self._loop, "alphatrace-writer")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursor_lock = threading.Lock()
        self._last_follow = 0.0
        self._last_round_jobs = 1
        self._before_close: list[Callable[[], None]] = []
        self.after_rounds = AfterRounds(self.store)
        self._cursors.append(self.after_rounds.store.con)
        self._settle: list[tuple[Future[Any], Any]] = []  # results held until the hooks ran
        self.stats = WriterStats()
        self.observer: IngestObserver = observer or _Unobserved()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.after_rounds.start()
        self._thread.start()

    def before_close(self, fn: Callable[[], None]) -> None:
        """Call `fn` when the server stops, before the store closes (the dashboard drops the
        background work it has queued)."""
        self._before_close.append(fn)

    def after_round(self, fn: Callable[[Store], None]) -> None:
        """Call `fn(store)` after rounds (events, a write call, a spool pickup), in
        registration order: the live pipeline first (server/app.py registers it), then
        whatever reads what it derived. They run on the after-round thread with a store view
        of its own (server/after_rounds.py), once for all the rounds that committed while
        the previous run was busy; ingest never waits for them. A hook that raises is logged
        and the next one still runs; ingest never fails because of a hook."""
        self.after_rounds.add(fn)

    def _hooks(self, urgent: bool = True) -> None:
        """This round is done: the hooks run for it, and results held for them follow.
        `urgent` (`may_decide`): a rest of the after-round thread ends for it."""
        settle, self._settle = self._settle, []
        self.after_rounds.committed(settle, urgent)

    @contextmanager
    def derived(self) -> Iterator[None]:
        """Hold for a write of derived state made beside the live pipeline (a `reconcile`,
        `gates evaluate`, `revive` for a remote caller or the CLI): it waits for a pass in
        progress and no pass starts until it ends."""
        with self.after_rounds.lock:
            yield

    def stop(self, timeout: float = 30.0) -> None:
        """Finish every queued request, then close the store.

        Reads still running then (a background search over the whole ledger takes a minute)
        are interrupted: DuckDB refuses to close a connection one of its cursors is busy on,
        and a server asked to stop should not wait a minute for a page nobody will see."""
        self._q.put(None)
        self._thread.join(timeout)
        self.after_rounds.stop(timeout)  # the hooks for the last rounds run first
        for fn in self._before_close:
            fn()
        deadline = time.monotonic() + timeout
        while True:
            with self._cursor_lock:
                for c in self._cursors:
                    with suppress(duckdb.Error):
                        c.interrupt()
                self._cursors = [c for c in self._cursors if not _closed(c)]
            try:
                self.store.close()
                return
            except duckdb.Error:  # a cursor busy until its thread sees the interrupt
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    # -- submitting ------------------------------------------------------------------------
    @property
    def pending_events(self) -> int:
        return self._pending

    def submit_events(self, events: list[Any], source: str = "<http>", entry: Entry | None = None,
                      side: Any = None) -> Future[list[EventResult]]:
        """Queue events for the next round (Busy when too many wait). `entry` (with the
        request's `side` writes): how they go into the store, default the JSON path."""
        n = len(events)
        with self._pending_lock:
            if self._pending and self._pending + n > self.max_pending_events:
                raise Busy(f"{self._pending} events waiting")
            self._pending += n
        fut: Future[list[EventResult]] = Future()
        self._q.put(_EventJob(events, fut, source, entry, side))
        return fut

    def submit_call(self, fn: Callable[[Store], T]) -> Future[T]:
        """Run a write (e.g. key management) on the writer thread, in order with ingest."""
        fut: Future[T] = Future()
        self._q.put(_CallJob(fn, fut))
        return fut

    def sync(self) -> Future[None]:
        """A round that writes nothing, resolved once a run of the after-round hooks that
        started after it has ended: a write made beside the writer (a CLI command the server
        runs on its own connection) is then seen by the live pipeline and what reads it, and
        an answer given after this reflects them."""
        fut: Future[None] = Future()
        self._q.put(_CallJob(lambda _store: None, fut, after_hooks=True))
        return fut

    # -- reading ---------------------------------------------------------------------------
    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's read cursor (created on first use)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.store.cursor()
            self._local.cursor = cur
            with self._cursor_lock:
                self._cursors.append(cur)
        yield cur

    # -- the thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            timeout = self.idle_checkpoint_s if self._dirty else None
            if self.following:
                timeout = min(timeout or self.follow_poll_s, self.follow_poll_s)
            try:
                job = self._q.get(timeout=timeout)
            except queue.Empty:
                if self.following and self._follow_pass():
                    self._hooks()
                idle = time.monotonic() - self._last_write
                if self._dirty and idle >= self.idle_checkpoint_s and self._q.empty():
                    self._checkpoint()
                continue
            if job is None:
                self._drain_rest()
                return
            jobs, urgent, stop = self._gather(job)
            self._run(jobs)
            if self.following and time.monotonic() - self._last_follow >= self.follow_poll_s:
                urgent = self._follow_pass() or urgent
            self._hooks(urgent)
            if stop:
                self._drain_rest()
                return

    def _gather(self, first: _EventJob | _CallJob
                ) -> tuple[list[_EventJob | _CallJob], bool, bool]:
        """The first job plus what arrives within the linger window (up to the batch size),
        whether the round `may_decide`, and whether the writer was told to stop. A round that
        may decide lingers no more: it takes what is queued and goes, because a kill waits for
        its commit (the linger only saves fixed costs on the stream that makes the load)."""
        jobs: list[_EventJob | _CallJob] = [first]
        urgent = may_decide(jobs, horizon_s=self.signal_horizon_s)
        if isinstance(first, _CallJob):
            return jobs, urgent, False
        n = len(first.events)
        # Clients in flight ≈ last round's requests + those that queued up meanwhile; waiting a
        # moment for all of them merges two half-size rounds (two fixed costs) into one.
        want = min(64, self._last_round_jobs + self._q.qsize())
        deadline = time.monotonic() + self.linger_s
        while n < self.max_batch_events:
            try:
                j = self._q.get_nowait()
            except queue.Empty:
                if urgent or len(jobs) >= want:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    j = self._q.get(timeout=left)
                except queue.Empty:
                    break
            if j is None:
                return jobs, urgent, True
            jobs.append(j)
            urgent = urgent or may_decide([j], horizon_s=self.signal_horizon_s)
            if isinstance(j, _CallJob):
                break
            n += len(j.events)
        self._last_round_jobs = max(1, sum(isinstance(j, _EventJob) for j in jobs))
        return jobs, urgent, False

    def _drain_rest(self) -> None:
        ran = False
        while True:
            try:
                j = self._q.get_nowait()
            except queue.Empty:
                break
            if j is not None:
                self._run([j])
                ran = True
        if ran:
            self._hooks()

    def _run(self, jobs: list[_EventJob | _CallJob]) -> None:
        batch = [j for j in jobs if isinstance(j, _EventJob)]
        if batch:
            t0 = time.perf_counter()
            n = sum(len(j.events) for j in batch)
            self._dirty, self._last_write = True, time.monotonic()
            try:
                for how in dict.fromkeys((j.source, j.entry) for j in batch):
                    self._ingest([j for j in batch if (j.source, j.entry) == how])
            finally:
                with self._pending_lock:
                    self._pending -= n
                self.stats.rounds += 1
                self.stats.requests += len(batch)
                self.stats.events += n
                elapsed = time.perf_counter() - t0
                self.stats.last_round_ms = elapsed * 1000.0
                self.observer.round(elapsed)
        for j in jobs:
            if isinstance(j, _CallJob):
                self._dirty, self._last_write = True, time.monotonic()
                try:
                    result = j.fn(self.store)
                except BaseException as e:  # handed to the request, which answers for it
                    j.future.set_exception(e)
                    continue
                if j.after_hooks:
                    self._settle.append((j.future, result))
                else:
                    j.future.set_result(result)

    def _ingest(self, batch: list[_EventJob]) -> None:
        events: list[Any] = []
        for j in batch:
            events.extend(j.events)
        entry = batch[0].entry
        try:
            if entry is None:
                _, results = ingest_typed(self.store, events, source=batch[0].source)
            else:
                results = entry(self.store, events, batch[0].source, [j.side for j in batch])
        except Exception as e:
            if len(batch) > 1:
                log.exception("merged ingest failed; retrying %d requests one by one", len(batch))
                for j in batch:
                    self._ingest([j])
            else:
                batch[0].future.set_exception(e)
            return
        self.observer.results(batch[0].source, results)
        offset = 0
        for j in batch:
            n = len(j.events)
            part = results[offset : offset + n]
            for r in part:
                r.index -= offset
            offset += n
            j.future.set_result(part)

    def _checkpoint(self) -> None:
        """Checkpoint once the hooks have written what follows the last round (a checkpoint
        does not wait for open transactions, but one made during a pass leaves the pass's
        writes in the WAL): while they run, the next idle moment tries again."""
        if self.after_rounds.busy:
            self._last_write = time.monotonic()
            return
        self._dirty = False
        if self.store.path is None:
            return
        try:
            self.store.con.execute("CHECKPOINT")
            self.stats.checkpoints += 1
        except Exception:  # the next idle moment will do
            log.debug("idle checkpoint skipped", exc_info=True)

    @property
    def following(self) -> bool:
        return bool(self.follow_dirs or self.market_dirs)

    def _follow_pass(self) -> bool:
        """Pick up spool files and market files once; whether any were taken."""
        self._last_follow = time.monotonic()
        market = self._market_pass() if self.market_dirs else False
        spool = self._spool_pass() if self.follow_dirs else False
        return market or spool

    def _market_pass(self) -> bool:
        from alphatrace.market.follow import pickup_market

        try:
            r = pickup_market(self.store, self.market_dirs)
        except Exception:
            log.exception("market file pickup failed")
            return False
        if r.files or r.failed:
            self._dirty, self._last_write = True, time.monotonic()
        for k, v in r.to_dict().items():
            self.stats.market[k] = self.stats.market.get(k, 0) + v
        return bool(r.files)

    def _spool_pass(self) -> bool:
        from alphatrace.sdk.follow import pickup_once

        try:
            r = pickup_once(self.store, self.follow_dirs)
        except Exception:
            log.exception("spool pickup failed")
            return False
        if r.files:
            self._dirty, self._last_write = True, time.monotonic()
        for k, v in r.to_dict().items():
            self.stats.follow[k] = self.stats.follow.get(k, 0) + v
        self.observer.follow(r.accepted, r.duplicates, r.quarantined)
        return bool(r.files)
