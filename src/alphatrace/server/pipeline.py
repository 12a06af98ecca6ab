"""The live pipeline: after ingest rounds, the server brings derived state up to date.

`Pipeline` is the first `Writer.after_round` hook (server/app.py registers it). It runs on
the after-round thread (server/after_rounds.py), on a cursor of its own, while the writer
keeps committing ingest rounds: an incremental `reconcile` (legs and the ledger rows of the
runs that changed; one transaction, so it sees one snapshot of the events), then
`Gates(store).evaluate(policy, catch_up=True)`, which appends decision records only for news;
it is skipped when the round can change no decision (`governance.quiet`: e.g. a round of OTLP
telemetry alone), and the record says so (`gates_skipped`).
The same calls as `alphatrace reconcile` and `alphatrace gates evaluate`, so the live path and
the batch tools give the same results. The pipeline keeps the market between passes
(`self.market`, ledger/market_cache.py): a pass reads only the bars and funding that arrived;
and the runs its ledger holds (`self.runs`, ledger/known_runs.py): a pass reads the tables
only for the changed runs the ledger already held; and its store's tables and columns
(`catalog`). Nothing else writes derived state meanwhile (the after-round thread's lock,
`Writer.derived`).

When it runs: after rounds that committed something new — the data mark (newest file id,
number of event and market files, number of bars and funding rows) differs from the one the
last pass saw — or when the last pass failed (it is retried). Coalescing: one pass covers
every round that committed while the previous pass ran (the after-round thread runs the
hooks once for all of them), so under a steady stream passes run back to back, each taking
what arrived during the one before.

A failing step is logged and kept in `last_error` (GET /healthz shows it); ingest never fails
because of the pipeline. Each pass is recorded (`PassRecord`): what changed, how long each
step took, and the pipeline lag — from the commit of the oldest data the pass covers to the
end of the pass. The last one stays in `last` for /healthz and for the hooks registered after
this one (live sizing, the decision stream, notifications).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

# Imported here, at server start, and not by the first round: a catch-up's `Table.group_by`
# (governance/replay.py) imports pyarrow's Acero engine on first use, and with it
# `pyarrow.dataset` and the filesystems (~20 ms, measured in the first pass after a start).
import pyarrow.acero  # noqa: F401

from alphatrace.governance import quiet
from alphatrace.governance.api import Gates
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.ledger import policy as rpolicy
from alphatrace.ledger.known_runs import KnownRuns
from alphatrace.ledger.market_cache import MarketCache
from alphatrace.ledger.reconcile import newest_file_sql, reconcile
from alphatrace.policy import Policy, load_policy
from alphatrace.server.after_rounds import Rounds
from alphatrace.store import Store
from alphatrace.store.connection import Catalog, catalog_cached, has_table, one

log = logging.getLogger("alphatrace.server.pipeline")

Mark = tuple[int, ...]
Clock = Callable[[], float]


def data_mark(con: duckdb.DuckDBPyConnection) -> Mark:
    """What the pipeline compares to tell new data: the newest file id (`newest_file_id`, as
    reconcile records it), the number of event and market files (a file committed late with an
    older id still counts), and the number of bar and funding rows (market data written
    without a file). Each is a count or a max over a small table, or table metadata."""
    parts = [newest_file_sql(con), "(SELECT count(*) FROM ingested_files)"]
    for table in ("market_files", "bars", "funding"):
        if has_table(con, table):
            parts.append(f"(SELECT count(*) FROM {table})")
    return tuple(int(c) for c in one(con, f"SELECT {', '.join(parts)}"))


@dataclass
class PassRecord:
    """One pipeline pass. Times are seconds since the epoch; durations milliseconds."""

    seq: int
    rounds: int                  # writer rounds this pass covers (coalesced)
    newest_file_id: int
    started_at: float
    committed_at: float          # when the oldest round this pass covers was committed
    reconcile_ms: float | None = None
    gates_ms: float | None = None
    total_ms: float = 0.0
    caught_up_at: float | None = None   # derived state up to date (None: the pass failed)
    lag_ms: float | None = None         # caught_up_at - committed_at
    reconcile: dict[str, Any] | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    gates_skipped: bool = False  # the round could change no decision (`governance.quiet`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PipelineConfig:
    """The policy the pipeline runs with: its `reconcile:` and governance sections."""

    reconcile: rpolicy.ReconcileConfig
    governance: GovernancePolicy
    path: str

    @classmethod
    def load(cls, policy: Policy | str | None = None) -> PipelineConfig:
        """From a policy file (None: the shipped policy); a bad file raises PolicyError."""
        doc = policy if isinstance(policy, Policy) else load_policy(policy)
        return cls(rpolicy.load(doc), load_governance(doc), doc.path)


class Pipeline:
    """The `after_round` hook; see the module docstring."""

    def __init__(self, config: PipelineConfig, *, rounds: Callable[[], Rounds] | None = None,
                 clock: Clock = time.time,
                 observe: Callable[[PassRecord], None] | None = None) -> None:
        """`rounds`: the writer rounds the current call covers (`AfterRounds.covering`);
        None: one round, committed when the call is made. `observe`: told of every pass as it
        ends (the app's `/metrics`, `server/metrics.py` `PipelineMetrics`)."""
        self.config = config
        self.rounds = rounds
        self.observe = observe
        self.clock = clock
        self.last: PassRecord | None = None
        self.last_error: str | None = None
        self.market = MarketCache()  # the market between passes (ledger/market_cache.py)
        self.runs = KnownRuns()  # the ledger's runs between passes (ledger/known_runs.py)
        self.passes = 0
        self.failures = 0
        self._seen: Mark | None = None
        self._pending_since: float | None = None  # first round not yet covered by a pass
        self._rounds = 0
        self._retry = False
        self._judged: quiet.Judged | None = None  # what the last catch-up left
        self._catalog: Catalog | None = None  # `catalog`

    def catalog(self, con: duckdb.DuckDBPyConnection) -> Catalog:
        """`con`'s store tables and their columns, read once for every pass on it: a store's
        tables change only by its migrations (store/migrations.py), which run when it opens,
        before a pipeline runs on it. Reading them each pass cost ~2 ms of a 1M-run pass
        (bench/RESULTS.md, "#14's 1M round: fewer reads a pass")."""
        if self._catalog is None or self._catalog.con is not con:
            self._catalog = Catalog(con)
        return self._catalog

    def __call__(self, store: Store) -> None:
        with catalog_cached(store.con, self.catalog(store.con)):
            self._after_round(store)

    def _after_round(self, store: Store) -> None:
        now = self.clock()
        covered = self.rounds() if self.rounds is not None else Rounds(1, now)
        mark = data_mark(store.con)
        if mark != self._seen or self._retry:
            if self._pending_since is None:
                since = covered.since
                self._pending_since = now if since is None else min(now, since)
            self._rounds += covered.count
        if self._pending_since is None:
            return
        self.run(store, mark)

    def run(self, store: Store, mark: Mark | None = None) -> PassRecord:
        """One pass now: reconcile, then gates. Never raises; the record says what happened."""
        started = self.clock()
        committed = self._pending_since if self._pending_since is not None else started
        mark = mark if mark is not None else data_mark(store.con)
        rec = PassRecord(seq=self.passes + 1, rounds=self._rounds, newest_file_id=mark[0],
                         started_at=started, committed_at=committed)
        t0 = time.perf_counter()
        try:
            with catalog_cached(store.con, self.catalog(store.con)):
                report = self._step(rec, "reconcile_ms",
                                    lambda: reconcile(store, self.config.reconcile,
                                                      market=self.market, runs=self.runs))
                rec.reconcile = report.to_dict()
                rec.decisions = self._step(rec, "gates_ms", lambda: self._gates(store, rec))
        except Exception as e:
            self._judged = None
            rec.error = f"{type(e).__name__}: {e}"
            log.exception("live pipeline pass failed; it is retried after the next round")
        rec.total_ms = (time.perf_counter() - t0) * 1000.0
        self.passes += 1
        self.last = rec
        if rec.error is None:
            rec.caught_up_at = self.clock()
            rec.lag_ms = (rec.caught_up_at - committed) * 1000.0
            self._seen, self._pending_since, self._rounds = mark, None, 0
            self._retry = False
            self.last_error = None
        else:
            self.failures += 1
            self.last_error = rec.error
            self._retry = True
        if self.observe is not None:
            try:
                self.observe(rec)
            except Exception:
                log.exception("reporting a pipeline pass failed")
        return rec

    def _gates(self, store: Store, rec: PassRecord) -> list[dict[str, Any]]:
        """The catch-up, unless `quiet.skip` proves it would judge nothing. When this pass's
        reconcile recorded a change some window sees (`ReconcileReport.changes`), there is
        something to judge, which the proof's first read would find."""
        gp, con = self.config.governance, store.con
        news = rec.reconcile is not None and rec.reconcile.get("changes", 0) > 0
        left = None if news else quiet.skip(store, gp, self._judged)
        self._judged = left
        if left is not None:
            rec.gates_skipped = True
            return []
        out = Gates(store).evaluate(gp, catch_up=True)
        self._judged = quiet.judged(con, gp)
        return out

    @staticmethod
    def _step(rec: PassRecord, slot: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            setattr(rec, slot, (time.perf_counter() - t0) * 1000.0)

    def lag_s(self) -> float:
        """How far derived state is behind the committed data, in seconds: growing while a
        pass is due, else the last pass's lag (`/healthz` and the `/metrics` gauge)."""
        last = self.last
        behind = self._pending_since
        return ((self.clock() - behind) if behind is not None
                else ((last.lag_ms or 0.0) / 1000.0 if last is not None else 0.0))

    def health(self) -> dict[str, Any]:
        """The `pipeline` part of GET /healthz (`lag_ms`: `lag_s` in ms)."""
        last = self.last
        behind = self._pending_since
        lag = self.lag_s() * 1000.0
        return {
            "policy": self.config.path,
            "passes": self.passes,
            "failures": self.failures,
            "caught_up": behind is None,
            "lag_ms": lag,
            "last_pass_ms": last.total_ms if last is not None else None,
            "last_reconcile_ms": last.reconcile_ms if last is not None else None,
            "last_gates_ms": last.gates_ms if last is not None else None,
            "last_decisions": len(last.decisions) if last is not None else 0,
            "newest_file_id": last.newest_file_id if last is not None else None,
            "last_error": self.last_error,
        }

