"""Where the pages' numbers come from: a read connection, the policy, and the shared results
that are expensive enough to compute once per data version (confidence paths, the cluster
search, the audit re-computation).

The same `Source` serves the live dashboard (a read cursor per request thread, heavy work on a
background worker, a request waits a bounded time) and `alphatrace report` (one read-only
connection, waits for everything), so both show the same documents.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb
import pyarrow as pa

from alphatrace.forensics.api import Forensics
from alphatrace.governance import audit, confidence
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.policy import Policy
from alphatrace.server.dashboard.memo import Memo, Pending
from alphatrace.server.serialize import value
from alphatrace.store import Store, table_names

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
T = TypeVar("T")
# Entries kept per kind: few of the heavy results, many page documents.
Pages = Sequence[tuple[tuple[Any, ...], Callable[[], Any]]]
HEAVY_LIMITS = {"forensics": 8, "verify": 4, "multipliers": 16, "confidence": 2}
PolicyArg = str | Path | Policy | None

# (table, SQL over it): together they change whenever anything a page shows can change. The
# ledger is only rewritten by a reconcile (logged) or grows, so its size, newest time and the last
# reconcile tell; the governance tables are small enough to hash whole.
_VERSION_PARTS = (
    ("ledger", ("count(*)", "max(ts)")),
    ("reconcile_log", ("max(seq)",)),
    ("run_exclusions", ("count(*)", "sum(hash(run_exclusions))")),  # a swap keeps the count
    ("decisions", ("count(*)", "max(seq)", "sum(hash(decisions))")),
    ("lifecycle", ("count(*)", "sum(hash(lifecycle))")),
    ("decision_head", ("sum(hash(decision_head))",)),
    ("governance_policies", ("sum(hash(governance_policies))",)),
)


_PLAIN = frozenset({int, str, bool, type(None)})


def jsonable(o: Any) -> Any:
    """Plain JSON values: fixed-width UTC timestamps, non-finite floats as null."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        # Chart series are long lists of plain numbers: those need no call per element.
        return [v if type(v) in _PLAIN or (type(v) is float and math.isfinite(v)) else jsonable(v)
                for v in o]
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dt.datetime | dt.date | Decimal):
        return value(o)
    if hasattr(o, "item") and not isinstance(o, str | bytes):  # numpy scalars
        return jsonable(o.item())
    return o


def epoch_ms(ts: dt.datetime | None) -> int | None:
    """Chart x values: integer milliseconds since the epoch (naive timestamps are UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return int(ts.timestamp() * 1000)


def _forensics(con: duckdb.DuckDBPyConnection) -> Forensics:
    """The forensics area on a page's read connection (nothing opened or migrated)."""
    return Forensics(Store(read_only=True, con=con))


@dataclass
class Source:
    connect: Connect
    policy: PolicyArg = None
    wait_s: float | None = 3.0        # how long a page waits for a heavy result it shows
    side_wait_s: float | None = 0.0   # ... and for one it only annotates (change points)
    memo: Memo = field(default_factory=lambda: Memo(HEAVY_LIMITS))
    _tables: frozenset[str] | None = None

    _governance: GovernancePolicy | None = None

    @property
    def governance(self) -> GovernancePolicy:
        if self._governance is None:
            self._governance = load_governance(self.policy)
        return self._governance

    def cached(self, key: tuple[Any, ...], fn: Callable[[], T]) -> T:
        """A document (or part of one) kept for its key, which must include the data version."""
        return self.memo.get(key, fn)

    def tables(self, con: duckdb.DuckDBPyConnection) -> frozenset[str]:
        if self._tables is None:
            self._tables = table_names(con)
        return self._tables

    def has(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        return table in self.tables(con)

    def version(self, con: duckdb.DuckDBPyConnection) -> Hashable:
        """A key that changes whenever the ledger, exclusions or decision log change."""
        out: list[Any] = []
        for table, exprs in _VERSION_PARTS:  # one query each: as scalar subqueries of one
            if self.has(con, table):         # SELECT they lose DuckDB's statistics shortcuts
                out.extend(con.execute(f"SELECT {', '.join(exprs)} FROM {table}").fetchall()[0])
        return tuple(out)

    # -- shared results ------------------------------------------------------------------
    def confidence_all(self, con: duckdb.DuckDBPyConnection, version: Hashable) -> confidence.Confidence:
        """Every agent's confidence path today, computed once per data version: the
        multipliers of the overview and each agent page's path are read from it."""
        return self.memo.get(("confidence", version),
                             lambda: confidence.compute(con, self.governance, None))

    def _multipliers(self, con: duckdb.DuckDBPyConnection, version: Hashable,
                     as_of: dt.datetime | None) -> dict[str, dict[str, Any]]:
        if not self.has(con, "ledger"):
            return {}
        gp = self.governance
        conf = (self.confidence_all(con, version) if as_of is None
                else confidence.compute(con, gp, None, as_of))
        summ = conf.summary(gp.confidence.warn_below)
        return {r["agent"]: r for r in summ.to_pylist()}

    def multipliers(self, con: duckdb.DuckDBPyConnection, version: Hashable,
                    as_of: dt.datetime | None) -> dict[str, dict[str, Any]]:
        """Per agent: confidence multiplier after its last eligible run (as of `as_of`)."""
        return self.memo.get(("multipliers", version, as_of),
                             lambda: self._multipliers(con, version, as_of))

    def confidence_path(self, con: duckdb.DuckDBPyConnection, version: Hashable,
                        agent: str) -> pa.Table:
        """One agent's (run_id, ts, pnl, factor, multiplier_after) in (ts, run_id) order."""
        if not self.has(con, "ledger"):
            return confidence.HISTORY_SCHEMA.empty_table()
        return self.confidence_all(con, version).agent_history(agent)

    def forensics(self, version: Hashable, agent: str | None = None,
                  strategy: str | None = None, *, wait_s: float | Literal[True] | None = True
                  ) -> dict[str, Any]:
        """The cluster search and change points; raises Pending while it runs."""
        policy = self.policy

        def compute() -> dict[str, Any]:
            with self.connect() as con:
                return _forensics(con).forensics(agent=agent, strategy=strategy, policy=policy)

        return self.memo.background(("forensics", version, agent, strategy), compute,
                                    self._wait(wait_s))

    def verify(self, version: Hashable, *, wait_s: float | Literal[True] | None = True) -> dict[str, Any]:
        """`audit verify` with re-computation; raises Pending while it runs."""

        def compute() -> dict[str, Any]:
            with self.connect() as con:
                if not self.has(con, "decisions"):
                    return {"ok": True, "records": 0, "head": None, "problems": []}
                return audit.verify(con, recompute=True)

        return self.memo.background(("verify", version), compute, self._wait(wait_s))

    def _wait(self, wait_s: float | Literal[True] | None) -> float | None:
        """True: the source's default wait; a number: that many seconds; None: no limit."""
        return self.wait_s if wait_s is True else wait_s

    def explain(self, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
        return _forensics(con).explain(run_id, policy=self.policy)

    def warm(self, version: Hashable, first: Pages = (), later: Pages = ()) -> None:
        """Queue this version's heavy results on the background worker without waiting, in
        order: the multipliers, the `first` pages, the audit, the `later` pages, the search.
        Pages may read the multipliers: the single worker runs jobs in order, so a job never
        waits on one queued behind it."""

        def multipliers() -> dict[str, dict[str, Any]]:
            with self.connect() as con:
                return self._multipliers(con, version, None)

        starts: list[Callable[[], Any]] = [
            partial(self.memo.background, ("multipliers", version, None), multipliers, 0.0)]
        starts += [partial(self.memo.background, key, fn, 0.0) for key, fn in first]
        starts.append(partial(self.verify, version, wait_s=0.0))
        starts += [partial(self.memo.background, key, fn, 0.0) for key, fn in later]
        starts.append(partial(self.forensics, version, wait_s=0.0))
        for start in starts:
            try:
                start()
            except Pending:
                pass
            except Exception:  # kept in the memo; the page that asks shows the message
                pass


__all__ = ["Pending", "Source", "epoch_ms", "jsonable"]
