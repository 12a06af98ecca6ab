"""The collector's operational metrics, in a registry of its own (one per app).

Why a registry per app and not prometheus-client's global one: several apps live in one process
(tests, an embedding program), and each must report only its own traffic.

Two kinds of numbers:
- counted as they happen, by the writer (`IngestObserver`): the per-event statuses of every
  ingest call and of what the collector quarantines itself, and each ingest round's duration;
- read from the store at scrape time (`StoreCollector`): open legs, decisions by action, and
  notifications (attempts per target and outcome, finished deliveries per target and status,
  the pending count: the notify outbox's own tables, so they agree with `alphatrace notify
  log` and survive a restart), on the scraping thread's own read cursor, and only when their
  tables exist; and the pipeline lag (`pipeline_lag_s`);
- sizing requests and their latency, counted by the sizing route (`SizingMetrics`);
- each live pipeline pass, observed by the pipeline as it ends (`PipelineMetrics`): how long
  its steps took and how long the data it covered waited to be acted on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import duckdb
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alphatrace.notify import outbox
from alphatrace.store.ingest import EventResult

if TYPE_CHECKING:
    from alphatrace.server.pipeline import PassRecord

# Ingest rounds take from a millisecond (one small request) to seconds (a checkpoint, 50,000
# events): buckets cover that range.
ROUND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A sizing answer is a dict lookup (tens of microseconds); the target is p99 ≤ 5 ms end to end.
SIZING_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
# A pass takes milliseconds (nothing new) to minutes (the first catch-up of a large store);
# the targets are p50 ≤ 250 ms and p99 ≤ 1 s from evidence to decision.
PASS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
FOLLOW_KIND = "all"  # the spool pickup reports per-file totals, not per kind
UNKNOWN_KIND = "unknown"  # a rejected event whose `type` was missing or not a known kind

Reader = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


def source_label(source: str) -> str:
    """The writer's source (`<http>`, `<otlp>`) as a label value (`http`, `otlp`)."""
    return source.strip("<>") or "unknown"


class IngestMetrics:
    """The counters the writer feeds (it holds one as its observer)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "alphatrace_events", "Events answered by the collector, per source, kind and status "
            "(accepted, duplicate, rejected = quarantined).",
            ["source", "kind", "status"], registry=registry)
        self.rounds = Histogram(
            "alphatrace_ingest_round_seconds", "Duration of the writer's ingest rounds (one "
            "round stores every request waiting at once).",
            buckets=ROUND_BUCKETS, registry=registry)

    def results(self, source: str, results: Iterable[EventResult]) -> None:
        """Count the statuses an ingest call answered."""
        counts: dict[tuple[str, str], int] = {}
        for r in results:
            key = (r.kind or UNKNOWN_KIND, r.status)
            counts[key] = counts.get(key, 0) + 1
        src = source_label(source)
        for (kind, status), n in counts.items():
            self.events.labels(src, kind, status).inc(n)

    def rejected(self, source: str, kinds: Iterable[str | None]) -> None:
        """Count events the collector quarantined itself (never reached ingest's answer)."""
        self.results(source, [EventResult(0, "rejected", kind=k) for k in kinds])

    def follow(self, accepted: int, duplicates: int, quarantined: int) -> None:
        """Count one spool pickup pass (totals only: kind `all`)."""
        for status, n in (("accepted", accepted), ("duplicate", duplicates),
                          ("rejected", quarantined)):
            if n:
                self.events.labels("follow", FOLLOW_KIND, status).inc(n)

    def round(self, seconds: float) -> None:
        self.rounds.observe(seconds)


class SizingMetrics:
    """Requests to GET /v1/agents/{agent}/sizing and the time the route spends on each."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "alphatrace_sizing_seconds", "Time the sizing route spends on a request (answered "
            "from memory; excludes the HTTP transport).",
            buckets=SIZING_BUCKETS, registry=registry)

    def observe(self, seconds: float) -> None:
        self.latency.observe(seconds)


def store_lag_s(con: duckdb.DuckDBPyConnection) -> float:
    """Seconds the oldest committed file (an ingest round, a spool file, market data) not yet
    covered by a reconcile has waited; 0 when the newest reconcile covers every file.

    The pipeline's lag read from the store, for when no pipeline reports its own: a file is
    covered when its file_id is at most the newest reconcile's `max_file_id`."""
    tables = existing_tables(con, ("ingested_files", "reconcile_log"))
    if "ingested_files" not in tables:
        return 0.0
    covered = "(SELECT coalesce(arg_max(max_file_id, seq), 0) FROM reconcile_log)" \
        if "reconcile_log" in tables else "0"
    row = con.execute(
        f"SELECT epoch(current_timestamp::TIMESTAMP) - epoch(min(ingested_at)) "
        f"FROM ingested_files WHERE file_id > {covered}").fetchall()
    lag = row[0][0] if row else None
    return max(0.0, float(lag)) if lag is not None else 0.0


def pipeline_lag_s(pipeline: Any, reader: Reader) -> float:
    """The live pipeline's own lag when it reports one (`lag_s`, a number or a method), else
    the lag read from the store (`store_lag_s`)."""
    lag = getattr(pipeline, "lag_s", None)
    if callable(lag):
        lag = lag()
    if isinstance(lag, int | float):
        return float(lag)
    with reader() as con:
        return store_lag_s(con)


NOTIFY_TABLE = "notify_deliveries"  # the notify area's outbox (its migration 0013)


def pending_notifications(reader: Reader) -> int | None:
    """Notification deliveries waiting to be sent (status `pending` in the notify area's
    outbox); None while the store has no such table. /healthz and /metrics report it."""
    with reader() as con:
        if not existing_tables(con, (NOTIFY_TABLE,)):
            return None
        row = con.execute(f"SELECT count(*) FROM {NOTIFY_TABLE} WHERE status = 'pending'"
                          ).fetchall()
    return int(row[0][0]) if row else 0


def existing_tables(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> set[str]:
    wanted = list(names)
    found = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND list_contains(?, table_name)", [wanted]).fetchall()
    return {r[0] for r in found}


class StoreCollector(Collector):
    """Gauges read from the store at scrape time: cheap aggregates on a read cursor."""

    def __init__(self, reader: Reader, pipeline: Callable[[], Any] = lambda: None) -> None:
        self.reader = reader
        self.pipeline = pipeline  # the app's live pipeline, once there is one

    def describe(self) -> list[Any]:
        return []  # read at scrape time only: registering must not touch the store

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self.reader() as con:
            tables = existing_tables(con, ("legs", "decisions"))
            if "legs" in tables:
                legs = GaugeMetricFamily(
                    "alphatrace_open_legs", "Legs whose exit is not yet priced (status open).")
                n = con.execute("SELECT count(*) FROM legs WHERE status = 'open'").fetchone()
                legs.add_metric([], float(n[0] if n else 0))
                yield legs
            if "decisions" in tables:
                # The log is append-only (a hash chain): a counter, read from the table.
                dec = CounterMetricFamily(
                    "alphatrace_decisions", "Decision records in the log, per action.",
                    labels=["action"])
                for action, n in con.execute(
                        "SELECT action, count(*) FROM decisions GROUP BY action ORDER BY action"
                ).fetchall():
                    dec.add_metric([action], float(n))
                yield dec
            yield from notification_families(con)
        lag = GaugeMetricFamily(
            "alphatrace_pipeline_lag_seconds", "Seconds from the oldest committed event not yet "
            "in derived state (ledger, decisions) to now; 0 when up to date.")
        lag.add_metric([], pipeline_lag_s(self.pipeline(), self.reader))
        yield lag
        pending = pending_notifications(self.reader)
        if pending is not None:
            gauge = GaugeMetricFamily("alphatrace_notifications_pending",
                                      "Notification deliveries waiting to be sent.")
            gauge.add_metric([], float(pending))
            yield gauge


def notification_families(con: duckdb.DuckDBPyConnection) -> Iterator[CounterMetricFamily]:
    """Notification counters from the outbox's tables (none while the store has none)."""
    if not existing_tables(con, (NOTIFY_TABLE,)):
        return
    attempts = CounterMetricFamily(
        "alphatrace_notification_attempts", "Notification sends, per target and outcome: "
        "delivered (2xx), http_error (another status), no_response (refused, timed out, or "
        "not sent: a variable the target names is unset). Failures are the last two.",
        labels=["target", "outcome"])
    for (target, outcome), n in outbox.attempts_by_target(con).items():
        attempts.add_metric([target, outcome], float(n))
    yield attempts
    finished = CounterMetricFamily(
        "alphatrace_notification_deliveries", "Notification deliveries that ended, per target "
        "and status: delivered, or expired (retries gave up at the policy's horizon).",
        labels=["target", "status"])
    for (target, status), n in outbox.finished_by_target(con).items():
        finished.add_metric([target, status], float(n))
    yield finished


class PipelineMetrics:
    """The live pipeline's passes (`server/pipeline.py` `Pipeline.run` reports each one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seconds = Histogram(
            "alphatrace_pipeline_pass_seconds", "Duration of live pipeline passes, per step "
            "(reconcile, gates) and whole (total).",
            ["stage"], buckets=PASS_BUCKETS, registry=registry)
        self.catch_up = Histogram(
            "alphatrace_pipeline_catch_up_seconds", "Per pass that succeeded: from the commit "
            "of the oldest round it covers to the end of the pass (ledger, confidence and "
            "decisions current with that data).",
            buckets=PASS_BUCKETS, registry=registry)
        self.failures = Counter(
            "alphatrace_pipeline_pass_failures", "Live pipeline passes that raised (retried "
            "after the next round).", registry=registry)

    def observe(self, rec: PassRecord) -> None:
        for stage, ms in (("reconcile", rec.reconcile_ms), ("gates", rec.gates_ms),
                          ("total", rec.total_ms)):
            if ms is not None:
                self.seconds.labels(stage).observe(ms / 1000.0)
        if rec.error is not None:
            self.failures.inc()
        elif rec.lag_ms is not None:
            self.catch_up.observe(rec.lag_ms / 1000.0)


class CollectorMetrics:
    """One app's registry: the ingest counters, the sizing route's, the pipeline's passes, and
    the store's gauges.
    `pipeline` returns the app's live pipeline (None without one)."""

    def __init__(self, reader: Reader, pipeline: Callable[[], Any] = lambda: None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.ingest = IngestMetrics(self.registry)
        self.sizing = SizingMetrics(self.registry)
        self.pipeline = PipelineMetrics(self.registry)
        self.registry.register(StoreCollector(reader, pipeline))
        # the process's own (CPU, memory, file descriptors; Python's collections per
        # generation: `python_gc_collections_total`), as every Python exporter has them
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
