"""The sizing state the server answers from: per agent, read once per change, held in memory.

Why memory: a meta-agent asks for a size before every signal, thousands of times a second
across agents; recomputing confidence per request would cost milliseconds and read the store
under the collector. The state is rebuilt by an `after_round` hook on the writer thread (so
it sees every write as it commits, and nothing writes meanwhile) when the decision head or
the ledger changed, and once at startup. A request reads one immutable `Snapshot`: replacing
the reference is atomic, so a reader never sees half of a rebuild.

It also tells waiting decision streams (server/stream_routes.py) that the head moved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

import duckdb

from alphatrace.governance import journal
from alphatrace.governance.policy import GovernancePolicy, SizingSection
from alphatrace.governance.sizing import AgentSizing, agent_sizings, unknown_agent
from alphatrace.store import Store
from alphatrace.store.connection import has_table

log = logging.getLogger("alphatrace.server")

# What must change for the state to be read again: the decision head (every append moves it),
# each reconcile (reconcile_log), the ledger's size and newest run, and the exclusions.
_VERSION_PARTS = (
    ("decision_head", "max(seq), max(hash)"),
    ("reconcile_log", "max(seq)"),
    ("ledger", "count(*), max(ts)"),
    ("run_exclusions", "count(*)"),
)


def version(con: duckdb.DuckDBPyConnection) -> Hashable:
    """A key that changes whenever what sizing reads changes (cheap: aggregates with stats)."""
    out: list[object] = []
    for table, exprs in _VERSION_PARTS:
        if has_table(con, table):
            out.extend(con.execute(f"SELECT {exprs} FROM {table}").fetchall()[0])
        else:
            out.append(None)
    return tuple(out)


@dataclass(frozen=True)
class Snapshot:
    """Every agent's sizing state at one decision head."""

    seq: int                         # the decision head it reflects (0: no decision yet)
    agents: dict[str, AgentSizing]
    sizing: SizingSection            # the policy's sizing settings, told to the SDK
    built_at: dt.datetime            # wall clock (UTC) when it was read
    version: Hashable = None

    def agent(self, name: str) -> AgentSizing:
        return self.agents.get(name) or unknown_agent(name)


def read_snapshot(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy) -> Snapshot:
    head = journal.head(con)
    v = version(con)
    return Snapshot(seq=head[0] if head else 0, agents=agent_sizings(con, gp),
                    sizing=gp.sizing, built_at=journal.now(), version=v)


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event


@dataclass
class LiveState:
    """The current snapshot, and the hook that keeps it current."""

    policy: GovernancePolicy
    snapshot: Snapshot | None = None
    refreshes: int = 0
    last_error: str | None = None
    _waiters: list[_Waiter] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> Snapshot | None:
        """The newest snapshot; None until a first read succeeded (a caller then refuses to
        size: a kill switch does not fail open)."""
        return self.snapshot

    def refresh(self, store: Store) -> None:
        """The `after_round` hook (and startup): read the state again if its inputs changed."""
        t0 = time.perf_counter()
        con = store.con
        v = version(con)
        old = self.snapshot
        if old is not None and old.version == v:
            return
        try:
            self.snapshot = read_snapshot(con, self.policy)
            self.last_error = None
        except Exception as e:  # keep serving the previous state; the next round retries
            self.last_error = f"{type(e).__name__}: {e}"
            raise
        self.refreshes += 1
        log.debug("live sizing state read in %.1f ms", (time.perf_counter() - t0) * 1000)
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
