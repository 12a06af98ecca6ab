"""Spans held until their trace can be attributed: keyed by trace id, bounded in time and memory.

Exporters send a trace's spans as they end, children first: the LLM calls that carry tokens
and cost usually arrive one or more requests before the root span that says whose run it is.
So a span of a trace whose root has not arrived is held here, and the trace is decided
(`otlp_runs.trace_attribution`, over every span held for it) and its spans released:

- when its root span arrives (a span without a parent: the trace's work is done);
- when it has waited `wait_s` since its first span arrived (a root that never comes, e.g. it
  belongs to a service that exports elsewhere): then the fallbacks decide what the spans did
  not say;
- early, oldest trace first, when the spans held pass `max_spans` or their estimated size
  `max_bytes`: memory stays bounded whatever the traffic;
- at shutdown (`drain`), so nothing accepted is lost on a clean stop.

A decided trace is remembered (the last `remember` traces): a span of it arriving later gets
the same run, agent and strategy at once. A span re-sent while held is kept once (its event id
is the same, so the store would count it once anyway).

The exporter is answered success for a held span, so the hold says what to persist
(`HoldWrites`, written by `otlp_held` in the round that answers the request): the spans it
newly holds, and the traces it released (their rows go in the transaction that stores their
events). A collector killed with spans held reads them back at start (`restore`) and decides
their traces as it would have. Memory stays bounded by `max_spans` and `max_bytes`.
Thread-safe: the HTTP routes, the gRPC thread and the timer all call in.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from alphatrace.server.otlp_runs import Attribution, SpanTags, attribute, trace_attribution

WAIT_S = 30.0  # OTel's batch exporter sends every 5 s: a root ends and arrives soon after
MAX_SPANS = 100_000
MAX_BYTES = 128 * 2**20
REMEMBER = 100_000  # decided traces kept for their late spans (a few hundred bytes each)
SPAN_OVERHEAD = 1_500  # bytes per held span beyond its text (tests/server/test_otlp_hold.py)
T = TypeVar("T")


@dataclass(slots=True)  # not frozen: one per span, on the event loop; a frozen init costs 5x
class Ready:
    """An event whose trace is decided: to be written. `mine`: it came in the call that
    released it (its status belongs in that request's answer)."""

    event: dict[str, Any]
    line: int  # 1-based position of the span in the request that carried it
    mine: bool
    trace: str | None = None  # its trace id when it comes out of the hold (rows to delete)


@dataclass
class HoldWrites:
    """What a call changed that the store must keep: the spans newly held (event before
    attribution, tags), when, and the traces whose held spans are released (`otlp_held`)."""

    held: list[tuple[dict[str, Any], SpanTags]] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    at: float = 0.0  # epoch seconds

    @staticmethod
    def dropping(ready: list[Ready]) -> HoldWrites:
        """The traces of `ready` that came out of the hold."""
        return HoldWrites(drop=sorted({r.trace for r in ready if r.trace is not None}))


@dataclass(slots=True)
class _Held:
    event: dict[str, Any]
    tags: SpanTags
    line: int
    batch: int
    size: int


class _Trace:
    __slots__ = ("since", "spans")

    def __init__(self, since: float) -> None:
        self.since = since
        self.spans: dict[str, _Held] = {}


def estimate(event: dict[str, Any]) -> int:
    """Bytes a held span costs, estimated from its text (tests check it is not an under-count
    for small spans, the worst case per byte)."""
    return SPAN_OVERHEAD + sum(len(v) for v in event.values() if isinstance(v, str))


@dataclass
class HoldStats:
    spans: int = 0  # held now
    bytes: int = 0  # estimated size of those
    traces: int = 0  # traces with held spans now
    by_root: int = 0  # traces released since start, per reason
    by_wait: int = 0
    by_memory: int = 0
    by_shutdown: int = 0


class TraceHold:
    def __init__(self, *, wait_s: float = WAIT_S, max_spans: int = MAX_SPANS,
                 max_bytes: int = MAX_BYTES, remember: int = REMEMBER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if wait_s < 0 or max_spans < 0 or max_bytes < 0 or remember < 0:
            raise ValueError("wait_s, max_spans, max_bytes and remember must be >= 0")
        self.wait_s, self.max_spans, self.max_bytes = wait_s, max_spans, max_bytes
        self.remember = remember
        self._clock = clock
        self._lock = threading.Lock()
        self._held: OrderedDict[str, _Trace] = OrderedDict()  # oldest first
        self._done: OrderedDict[str, Attribution] = OrderedDict()  # least recently used first
        self._unwritten: list[Ready] = []  # released, then refused by a busy writer
        self._batch = 0
        self._closed = False
        self.stats = HoldStats()

    def admit(self, spans: list[tuple[dict[str, Any], SpanTags, int]],
              traces: dict[str, Attribution] | None = None) -> list[Ready]:
        """Take one request's spans (event, tags, line); what can be written now: its spans
        whose trace is decided, plus earlier-held spans released by it (their root came, they
        waited long enough, or memory is full).

        `traces` (`Mapped.traces`): each trace's attribution with this request's spans as
        the whole trace, the events already attributed so. A trace whose root is in the
        request and that has nothing held is then decided at once: its events go as they are
        (the common case, whole traces per request, costs no copy)."""
        with self._lock:
            return self._admit(spans, traces)[0]

    def admit_submit(self, spans: list[tuple[dict[str, Any], SpanTags, int]],
                     traces: dict[str, Attribution] | None,
                     submit: Callable[[list[Ready], HoldWrites], T]) -> T:
        """`admit`, then `submit(ready, writes)` (hand both to the writer) before any other
        call can change the hold, so the store sees holds and releases in the hold's order.
        If `submit` raises (a busy writer), the request's spans are not held (the client
        re-sends them) and earlier spans it released are handed out again by `due`."""
        with self._lock:
            ready, added = self._admit(spans, traces)
            held = [(tid, h) for tid, h in added
                    if tid in self._held and self._held[tid].spans.get(h.tags.span_id) is h]
            writes = HoldWrites([(h.event, h.tags) for _, h in held],
                                HoldWrites.dropping(ready).drop, time.time())
            try:
                return submit(ready, writes)
            except BaseException:
                self._unwritten += [Ready(r.event, r.line, False, r.trace)
                                    for r in ready if not r.mine]
                for tid, h in held:
                    self._forget(tid, h)
                raise

    def restore(self, spans: list[tuple[dict[str, Any], SpanTags, float]]) -> None:
        """Hold again spans a stopped collector held (event, tags, epoch seconds it first held
        them: `otlp_held.load`), oldest first, each trace waiting what it had left; traces past
        their wait or over the memory bounds are handed out by `due`."""
        with self._lock:
            now, wall = self._clock(), time.time()
            for event, tags, at in sorted(spans, key=lambda s: s[2]):
                trace = self._held.get(tags.trace_id)
                if trace is None:
                    trace = self._held[tags.trace_id] = _Trace(now - max(0.0, wall - at))
                if tags.span_id in trace.spans:
                    continue
                held = _Held(event, tags, 0, -1, estimate(event))  # no request's
                trace.spans[tags.span_id] = held
                self.stats.spans += 1
                self.stats.bytes += held.size
            while self._held and (self.stats.spans > self.max_spans
                                  or self.stats.bytes > self.max_bytes):
                self._unwritten += self._release(next(iter(self._held)), 0)
                self.stats.by_memory += 1
            self.stats.traces = len(self._held)

    def _forget(self, tid: str, held: _Held) -> None:
        trace = self._held[tid]
        del trace.spans[held.tags.span_id]
        self.stats.spans -= 1
        self.stats.bytes -= held.size
        if not trace.spans:
            del self._held[tid]
        self.stats.traces = len(self._held)

    def _admit(self, spans: list[tuple[dict[str, Any], SpanTags, int]],
               traces: dict[str, Attribution] | None
               ) -> tuple[list[Ready], list[tuple[str, _Held]]]:
        """`admit` under the lock: (ready, the spans it added to the hold)."""
        added: list[tuple[str, _Held]] = []
        self._batch += 1
        batch, now = self._batch, self._clock()
        out: list[Ready] = []
        roots: list[str] = []
        whole = ({t.trace_id for _, t, _ in spans if t.root} - self._held.keys()
                 if traces is not None and not self._closed else set())
        for event, tags, line in spans:
            tid = tags.trace_id
            known = self._done.get(tid)
            if known is not None:
                self._done.move_to_end(tid)
                out.append(Ready(attribute(event, tags, known), line, True))
                continue
            if tid in whole:
                out.append(Ready(event, line, True))
                continue
            trace = self._held.get(tid)
            if trace is None:
                trace = self._held[tid] = _Trace(now)
            if tags.span_id in trace.spans:
                continue  # re-sent while held
            held = _Held(event, tags, line, batch, estimate(event))
            trace.spans[tags.span_id] = held
            added.append((tid, held))
            self.stats.spans += 1
            self.stats.bytes += held.size
            if tags.root or self._closed:
                roots.append(tid)
        if traces is not None:
            for tid in whole:
                self._remember(tid, traces[tid])
            self.stats.by_root += len(whole)
        for tid in roots:
            if tid in self._held:
                out += self._release(tid, batch)
                self.stats.by_root += 1
        out += self._due(now, batch)
        while self._held and (self.stats.spans > self.max_spans
                              or self.stats.bytes > self.max_bytes):
            out += self._release(next(iter(self._held)), batch)
            self.stats.by_memory += 1
        self.stats.traces = len(self._held)
        return out, added

    def put_back(self, ready: list[Ready]) -> None:
        """Released spans the writer could not take (busy): `due` hands them out again. The
        request that released them answers for its own spans (the client re-sends those)."""
        with self._lock:
            self._unwritten += [Ready(r.event, r.line, False, r.trace) for r in ready]

    def due(self) -> list[Ready]:
        """Spans put back, and held spans of the traces that waited `wait_s`, decided by what
        arrived."""
        with self._lock:
            out, self._unwritten = self._unwritten, []
            out += self._due(self._clock(), 0)
            self.stats.traces = len(self._held)
            return out

    def drain(self) -> list[Ready]:
        """Every held span, decided by what arrived; later calls to `admit` hold nothing."""
        with self._lock:
            self._closed = True
            out, self._unwritten = self._unwritten, []
            while self._held:
                out += self._release(next(iter(self._held)), 0)
                self.stats.by_shutdown += 1
            self.stats.traces = 0
            return out

    def next_due(self) -> float | None:
        """Seconds until the oldest held trace has waited `wait_s`, 0 with spans put back
        (None: nothing held)."""
        with self._lock:
            if self._unwritten:
                return 0.0
            if not self._held:
                return None
            oldest = next(iter(self._held.values()))
            return max(0.0, oldest.since + self.wait_s - self._clock())

    def _due(self, now: float, batch: int) -> list[Ready]:
        out: list[Ready] = []
        while self._held:
            tid, trace = next(iter(self._held.items()))
            if now - trace.since < self.wait_s:
                break
            out += self._release(tid, batch)
            self.stats.by_wait += 1
        return out

    def _remember(self, tid: str, decided: Attribution) -> None:
        if self.remember:
            self._done[tid] = decided
            while len(self._done) > self.remember:
                self._done.popitem(last=False)

    def _release(self, tid: str, batch: int) -> list[Ready]:
        trace = self._held.pop(tid)
        held = list(trace.spans.values())
        decided = trace_attribution(tid, (h.tags for h in held))
        self._remember(tid, decided)
        self.stats.spans -= len(held)
        self.stats.bytes -= sum(h.size for h in held)
        return [Ready(attribute(h.event, h.tags, decided), h.line, h.batch == batch, tid)
                for h in held]
