"""The sizing state the server answers from: per agent, read once per change, held in memory.

Why memory: a meta-agent asks for a size before every signal, thousands of times a second
across agents; recomputing confidence per request would cost milliseconds and read the store
under the collector. A request reads one immutable `Snapshot`: replacing the reference is
atomic, so a reader never sees half of an update.

Two sides, refreshed apart (governance/sizing.py `combine`s them):
- the decision log's (`Lifecycle`): read by the `after_round` hook (on the after-round thread,
  server/after_rounds.py) as soon as the decision head moved (one aggregate query), so a kill is in the very next answer;
- the ledger's (`LedgerFacts`: confidence multipliers, knowledge times, strategy classes):
  a confidence computation over every agent, redone when a reconcile, the ledger or the
  exclusions changed (`_LEDGER`). With a `reader` it runs on a thread of its own, on its own
  read cursor, so the hooks never wait for it; changes that arrive meanwhile are covered by one
  more pass. That thread takes at most `LEDGER_DUTY` of a core: after each pass it rests
  (1/duty − 1) times as long as the pass took. A pass reads every realized run (~360 ms of
  CPU at 1M runs), and under steady ingest the ledger changes every round, so passes back to
  back would take a whole core from the writer and the pipeline; rested, the multipliers lag
  the ledger by at most ~1/duty passes (under a second and a half at 1M runs, 20 ms on a small
  store), which the SDK's 1 s answer cache is of the order of. Kills do not wait for it: the
  lifecycle side is read on the hook's thread as soon as the head moves.

Both are read at startup, before the server takes requests. The state also tells waiting
decision streams (server/stream_routes.py) that the head moved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import duckdb

from alphatrace.governance import journal
from alphatrace.governance.policy import GovernancePolicy, SizingSection
from alphatrace.governance.sizing import (
    AgentSizing,
    LedgerFacts,
    Lifecycle,
    combine,
    read_ledger_facts,
    read_lifecycle,
    unknown_agent,
)
from alphatrace.server.priority import background_thread
from alphatrace.store import Store
from alphatrace.store.connection import catalog_cached, has_table

log = logging.getLogger("alphatrace.server")

Reader = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

# What must change for a side to be read again: the decision head (every append moves it), and
# for the ledger's side each reconcile (reconcile_log), the ledger's size and newest run, and
# the newest `ledger_changes` seq. The last follows the exclusions, whose number alone stays
# the same when one is lifted and another applied: `exclusions apply` (forensics/exclusions.py)
# records every ledger run whose exclusion it applied or lifted under a new seq, numbered after
# every earlier change (`ledger.changes.record_exclusions`, `next_seq`), and a catch-up's prune
# keeps a row of the newest change (`ledger.changes.prune`), so this maximum moves with every
# exclusion change that can move a multiplier. (An exclusion of a run the ledger
# lacks is not recorded: it changes no confidence.)
_HEAD = (("decision_head", "max(seq), max(hash)"),)
LEDGER_DUTY = 0.25  # the ledger side's thread: at most this share of a core (module docstring)
_LEDGER = (
    ("reconcile_log", "max(seq)"),
    ("ledger", "count(*), max(ts)"),
    ("ledger_changes", "max(seq)"),
)


def version(con: duckdb.DuckDBPyConnection, parts: tuple[tuple[str, str], ...]) -> Hashable:
    """A key that changes whenever the tables of `parts` change (aggregates with stats), in
    one query whatever the number of parts (it runs after every round)."""
    present = [(t, e) for t, e in parts if has_table(con, t)]
    row = con.execute("SELECT * FROM " + ", ".join(
        f"(SELECT {e} FROM {t})" for t, e in present)).fetchall()[0] if present else ()
    return (tuple(t for t, _ in present), tuple(row))


@dataclass(frozen=True)
class Snapshot:
    """Every agent's sizing state at one decision head."""

    seq: int                         # the decision head it reflects (0: no decision yet)
    agents: dict[str, AgentSizing]
    sizing: SizingSection            # the policy's sizing settings, told to the SDK
    built_at: dt.datetime            # wall clock (UTC) when it was put together
    # Encoded sizing answers per agent (server/sizing_routes.py `parts`): valid as long as the
    # snapshot, so they go with it.
    encoded: dict[str, tuple[bytes, bytes]] = field(default_factory=dict, compare=False,
                                                    repr=False)

    def agent(self, name: str) -> AgentSizing:
        return self.agents.get(name) or unknown_agent(name)


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event


@dataclass
class LiveState:
    """The current snapshot, the hook that keeps it current, and its background reader.

    `reader`: a read-cursor factory (the writer's) for the ledger side's thread; None reads
    both sides on the hook's thread."""

    policy: GovernancePolicy
    reader: Reader | None = None
    duty: float = LEDGER_DUTY
    snapshot: Snapshot | None = None
    refreshes: int = 0               # times the ledger side was read
    # (start, end) of the thread's last passes, monotonic seconds: when it may start the next
    passes: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=64))
    last_error: str | None = None
    _life: Lifecycle | None = None
    _facts: LedgerFacts | None = None
    _head_version: Hashable = None
    _ledger_version: Hashable = None
    _waiters: list[_Waiter] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wanted: threading.Condition = field(default_factory=threading.Condition)
    _pending: bool = False
    _busy: bool = False
    _stopped: bool = False
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.duty <= 1.0:
            raise ValueError(f"duty must be in (0, 1], got {self.duty}")

    def current(self) -> Snapshot | None:
        """The newest snapshot; None until both sides were read once (a caller then refuses
        to size: a kill switch does not fail open)."""
        return self.snapshot

    def start(self, store: Store) -> None:
        """Read both sides now (before requests come) and start the ledger side's thread."""
        self.refresh(store, background=False)
        if self.reader is not None and self._thread is None:
            self._thread = background_thread(self._loop, "alphatrace-live-state")
            self._thread.start()

    def stop(self) -> None:
        with self._wanted:
            self._stopped = True
            self._wanted.notify_all()
        if self._thread is not None:
            self._thread.join(30)

    def refresh(self, store: Store, background: bool = True) -> None:
        """The `after_round` hook: the lifecycle now if the head moved; the ledger side now or
        on its thread if what it reads changed."""
        con = store.con
        with catalog_cached(con):
            hv, lv = version(con, _HEAD), version(con, _LEDGER)
        if self._life is None or hv != self._head_version:
            life = read_lifecycle(con)
            self._head_version = hv
            self._publish(life=life)
        if self._facts is None or lv != self._ledger_version:
            self._ledger_version = lv
            if background and self.reader is not None and self._thread is not None:
                with self._wanted:
                    self._pending = True
                    self._wanted.notify_all()
            else:
                self._read_facts(con)

    def settle(self, timeout: float = 60.0) -> bool:
        """Wait until the ledger side has no pass pending or running (tests, benchmarks)."""
        with self._wanted:
            return self._wanted.wait_for(lambda: not (self._pending or self._busy), timeout)

    # -- the ledger side ---------------------------------------------------------------------
    def _read_facts(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            facts = read_ledger_facts(con, self.policy)
        except Exception as e:  # keep serving the previous state; the next change retries
            self.last_error = f"{type(e).__name__}: {e}"
            raise
        self.last_error = None
        self.refreshes += 1
        self._publish(facts=facts)

    def _loop(self) -> None:
        assert self.reader is not None
        while True:
            with self._wanted:
                self._wanted.wait_for(lambda: self._pending or self._stopped)
                while not self._stopped and (wait := self._rested_at() - time.monotonic()) > 0:
                    self._wanted.wait(wait)
                if self._stopped:
                    return
                self._pending, self._busy = False, True
            start = time.monotonic()
            try:
                with self.reader() as cur, catalog_cached(cur):  # reads only
                    self._read_facts(cur)
            except Exception:
                log.exception("reading the sizing state (confidence) failed")
            finally:
                with self._wanted:
                    self.passes.append((start, time.monotonic()))
                    self._busy = False
                    self._wanted.notify_all()

    def _rested_at(self) -> float:
        """When the thread may start its next pass: the last one's end plus (1/duty − 1)
        times its length (`LEDGER_DUTY`)."""
        if not self.passes:
            return 0.0
        start, end = self.passes[-1]
        return end + (end - start) * (1.0 / self.duty - 1.0)

    # -- both sides to one snapshot ------------------------------------------------------------
    def _publish(self, life: Lifecycle | None = None, facts: LedgerFacts | None = None) -> None:
        with self._lock:
            old = self.snapshot
            if life is not None:
                self._life = life
            if facts is not None:
                self._facts = facts
            if self._life is None or self._facts is None:
                return
            self.snapshot = Snapshot(self._life.seq, combine(self._life, self._facts),
                                     self.policy.sizing, journal.now())
        if old is None or old.seq != self.snapshot.seq:
            self._wake()

    # -- decision streams wait here --------------------------------------------------------
    def waiter(self) -> asyncio.Event:
        """An event set (on the caller's loop) the next time the decision head moves."""
        w = _Waiter(asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.append(w)
        return w.event

    def forget(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = [w for w in self._waiters if w.event is not event]

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.loop.is_closed():
                w.loop.call_soon_threadsafe(w.event.set)
