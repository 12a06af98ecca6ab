"""The live pipeline as a writer hook, in process: when it runs, what it records, coalescing,
failures and retries. (The real server: tests/server/test_pipeline_server.py.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from alphatrace.api import Database
from alphatrace.governance.api import Gates
from alphatrace.ledger.reconcile import reconcile
from alphatrace.server import pipeline as pipeline_mod
from alphatrace.server.after_rounds import Rounds
from alphatrace.server.metrics import PipelineMetrics
from alphatrace.server.pipeline import Pipeline, PipelineConfig, data_mark
from alphatrace.store import Store
from alphatrace.store.connection import table_names
from alphatrace.store.ingest import ingest_events
from tests.policies import SEED
from tests.server.test_metrics_endpoint import scrape

T0 = dt.datetime(2024, 1, 1)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def bars(store: Store, hours: int = 200) -> None:
    """BTCUSDT 1h bars rising 1% an hour: LONG wins about 90 bps an hour, SHORT loses 110."""
    store.con.executemany(
        "INSERT INTO bars (symbol, interval_s, ts, open) VALUES ('BTCUSDT', 3600, ?, ?)",
        [(T0 + dt.timedelta(hours=h), 100.0 * 1.01 ** h) for h in range(hours)])


def run_events(agent: str, i: int, direction: str) -> list[dict[str, Any]]:
    ts = (T0 + dt.timedelta(hours=i, minutes=1)).isoformat() + "Z"
    rid = f"{agent}-{i}"
    return [{"type": "alpha", "event_id": f"{rid}:a", "run_id": rid, "agent": agent, "ts": ts,
             "symbol": "BTC", "direction": direction, "horizon": "1h"},
            {"type": "telemetry", "event_id": f"{rid}:t", "run_id": rid, "agent": agent,
             "ts": ts, "latency_ms": 100.0}]


@pytest.fixture
def config() -> PipelineConfig:
    return PipelineConfig.load(SEED)


@pytest.fixture
def seeded(store: Store) -> Iterator[Store]:
    bars(store)
    yield store


def states(store: Store) -> dict[tuple[str, str], str]:
    from alphatrace.governance.journal import lifecycle_states

    return dict(lifecycle_states(store.con))


def test_a_pass_reconciles_then_kills_a_losing_agent(seeded: Store, config: PipelineConfig
                                                     ) -> None:
    live = Pipeline(config)
    first_kill = None
    for i in range(6):
        ingest_events(seeded, run_events("Loser", i, "SHORT"))
        live(seeded)
        assert live.last is not None and live.last.error is None
        if first_kill is None and any(d["action"] == "kill" for d in live.last.decisions):
            first_kill = i
    assert live.passes == 6
    assert seeded.con.execute("SELECT count(*) FROM ledger WHERE status = 'realized'"
                              ).fetchall() == [(6,)]
    # realized runs of about -110 bps each: the 5th makes last_5_runs_pnl < -100 (min_runs 5)
    assert first_kill == 4
    assert states(seeded) == {("agent", "Loser"): "killed"}
    assert live.last.reconcile is not None and live.last.reconcile["rebuilt"] == 1
    assert live.last.reconcile["changes"] == 1  # the new run, realized: the catch-up runs


def test_the_pass_at_start_reads_the_known_runs_the_next_round_needs(
        seeded: Store, config: PipelineConfig) -> None:
    ingest_events(seeded, run_events("A", 0, "LONG"))
    reconcile(seeded, config.reconcile)  # a batch reconcile before the server starts
    live = Pipeline(config)
    live.run(seeded)  # the pass at start: nothing new to reconcile
    assert live.runs.reads == 1
    ingest_events(seeded, run_events("A", 1, "LONG"))
    live(seeded)  # the first round's pass finds the set current: no read of the ledger
    assert live.last is not None and live.last.error is None
    assert live.last.reconcile is not None and live.last.reconcile["rebuilt"] == 1
    assert live.runs.reads == 1


def test_no_new_data_no_pass(seeded: Store, config: PipelineConfig) -> None:
    live = Pipeline(config)
    ingest_events(seeded, run_events("A", 0, "LONG"))
    live(seeded)
    live(seeded)  # a round that wrote nothing the pipeline reads (a key change, say)
    assert live.passes == 1
    seeded.con.execute("INSERT INTO bars (symbol, interval_s, ts, open) "
                       "VALUES ('BTCUSDT', 3600, ?, 1)", [T0 + dt.timedelta(hours=500)])
    live(seeded)  # market data is new data
    assert live.passes == 2


def test_one_pass_covers_the_rounds_it_is_given(seeded: Store, config: PipelineConfig
                                                ) -> None:
    """Run by the after-round thread, a call covers every round committed since the last
    one: the pass record counts them, and its lag runs from the oldest one's commit."""
    clock = Clock()
    live = Pipeline(config, rounds=lambda: Rounds(4, 1_000.0), clock=clock)
    for i in range(4):
        ingest_events(seeded, run_events("A", i, "LONG"))
    clock.t += 0.03
    live(seeded)
    assert live.passes == 1
    assert live.last is not None and live.last.rounds == 4
    assert live.last.lag_ms == pytest.approx(30.0)  # from the first round's commit
    assert seeded.con.execute("SELECT count(*) FROM ledger").fetchall() == [(4,)]


def test_a_pass_does_not_hold_back_ingest(tmp_path: Path, config: PipelineConfig,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector app: while a pass blocks inside reconcile (on its own cursor and
    transaction), an ingest request is stored and answered; the next pass covers it, and a
    `sync()` resolves only after that pass."""
    import threading

    from fastapi.testclient import TestClient

    from alphatrace.server.app import create_app
    from alphatrace.server.keys import create_key

    entered, release = threading.Event(), threading.Event()

    def blocking(store: Store, cfg: Any, **_kw: Any) -> Any:
        if not entered.is_set() and store.con.execute("SELECT count(*) FROM alpha"
                                                      ).fetchall() != [(0,)]:
            entered.set()  # the first pass with events blocks here
            release.wait(30)
        return reconcile(store, cfg)

    db = tmp_path / "db.duckdb"
    with Store(db) as s:
        bars(s)
        key = create_key(s, "k", "ingest")["key"]
    monkeypatch.setattr(pipeline_mod, "reconcile", blocking)
    app = create_app(db, pipeline=config, warn_without_keys=False)
    hdr = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        writer = app.state.writer
        writer.sync().result(30)  # the catch-up pass at start (no events yet) has run
        assert client.post("/v1/events", json=run_events("A", 0, "LONG"),
                           headers=hdr).status_code == 200
        assert entered.wait(30)  # the pass for A-0 is blocked inside reconcile
        res = client.post("/v1/events", json=run_events("B", 0, "LONG"), headers=hdr)
        assert res.status_code == 200 and res.json()["accepted"] == 2
        assert not release.is_set()
        with writer.reader() as cur:
            assert cur.execute("SELECT count(*) FROM alpha").fetchall() == [(2,)]
            assert cur.execute("SELECT count(*) FROM ledger").fetchall() == [(0,)]
        fut = writer.sync()
        release.set()
        fut.result(30)
        with writer.reader() as cur:
            assert cur.execute("SELECT run_id FROM ledger ORDER BY run_id").fetchall() == [
                ("A-0",), ("B-0",)]
        pipe = app.state.pipeline
        assert pipe.last_error is None and pipe.health()["caught_up"]


def test_a_failed_step_is_reported_and_retried(seeded: Store, config: PipelineConfig,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    live = Pipeline(config)
    calls = []

    def broken(store: Store, cfg: Any, **_kw: Any) -> Any:
        calls.append(1)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline_mod, "reconcile", broken)
    ingest_events(seeded, run_events("A", 0, "LONG"))
    live(seeded)  # never raises
    assert live.last_error == "RuntimeError: disk on fire"
    health = live.health()
    assert health["last_error"] == "RuntimeError: disk on fire" and not health["caught_up"]
    monkeypatch.setattr(pipeline_mod, "reconcile", reconcile)
    live(seeded)  # no new data, but the failed pass is retried
    assert live.passes == 2 and live.failures == 1 and live.last_error is None
    assert live.health()["caught_up"] and len(calls) == 1
    assert seeded.con.execute("SELECT count(*) FROM ledger").fetchall() == [(1,)]


def test_live_passes_equal_one_batch_evaluation(config: PipelineConfig) -> None:
    """Monotone agents (always losing, always winning): the lifecycle does not depend on when
    the gates were evaluated, so passes after every run and one batch pass agree."""
    events = [e for i in range(8) for e in
              run_events("Loser", i, "SHORT") + run_events("Winner", i, "LONG")]
    with Store(":memory:") as live_store, Store(":memory:") as batch:
        bars(live_store)
        bars(batch)
        live = Pipeline(config)
        for k in range(0, len(events), 3):
            ingest_events(live_store, events[k:k + 3])
            live(live_store)
        ingest_events(batch, events)
        reconcile(batch, config.reconcile)
        Gates(batch).evaluate(config.governance)
        ledger = "SELECT * FROM ledger ORDER BY run_id"
        assert live_store.con.execute(ledger).fetchall() == batch.con.execute(ledger).fetchall()
        assert states(live_store) == states(batch) == {
            ("agent", "Loser"): "killed", ("agent", "Winner"): "promoted"}


def test_data_mark_sees_a_late_file_with_an_older_id(store: Store) -> None:
    ingest_events(store, [{"type": "telemetry", "run_id": "r", "agent": "A"}])
    before = data_mark(store.con)
    store.con.execute("INSERT INTO ingested_files (file_id, path) VALUES (0, 'late')")
    after = data_mark(store.con)
    assert before[0] == after[0] and before != after


def test_each_pass_is_reported_to_metrics(seeded: Store, config: PipelineConfig,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`/metrics` sees every pass: step durations (a failed step's too), the catch-up time of
    the passes that succeeded (commit of the oldest covered round → end of the pass: 2 s, then
    5 s for the retry, by the clock), and the failures."""
    reg = CollectorRegistry()
    clock = Clock()
    waited = [2.0]
    live = Pipeline(config, clock=clock, observe=PipelineMetrics(reg).observe,
                    rounds=lambda: Rounds(1, clock.t - waited[0]))
    ingest_events(seeded, run_events("A", 0, "LONG"))
    live(seeded)  # ok, covering a round committed 2 s before
    monkeypatch.setattr(pipeline_mod, "reconcile", lambda s, c, **kw: 1 / 0)
    ingest_events(seeded, run_events("A", 1, "LONG"))
    clock.t += 10.0
    live(seeded)  # fails in reconcile
    monkeypatch.setattr(pipeline_mod, "reconcile", reconcile)
    clock.t += 3.0  # the retry covers the round committed 2 s before the failed pass
    waited[0] = 0.0
    live(seeded)
    got = scrape(generate_latest(reg).decode())
    count = "alphatrace_pipeline_pass_seconds_count"
    assert got[(count, (("stage", "total"),))] == 3
    assert got[(count, (("stage", "reconcile"),))] == 3  # the failed step is timed too
    assert got[(count, (("stage", "gates"),))] == 2
    assert got[("alphatrace_pipeline_pass_failures_total", ())] == 1
    assert got[("alphatrace_pipeline_catch_up_seconds_count", ())] == 2
    assert got[("alphatrace_pipeline_catch_up_seconds_sum", ())] == 2.0 + 5.0
    assert got[("alphatrace_pipeline_catch_up_seconds_bucket", (("le", "2.5"),))] == 1
    assert got[("alphatrace_pipeline_catch_up_seconds_bucket", (("le", "5.0"),))] == 2
    assert live.passes == 3 and live.failures == 1


def _schema(store: Store) -> list[tuple[str, str, str]]:
    """Every store table's columns, as DuckDB's catalog lists them (not the cached read)."""
    return [(str(t), str(c), str(ty)) for t, c, ty in store.con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND database_name = current_database() "
        "ORDER BY table_name, column_index").fetchall()]


def test_the_catalog_a_pipeline_keeps_stays_the_stores(seeded: Store, config: PipelineConfig
                                                        ) -> None:
    """`Pipeline.catalog` is read once for every pass, on the grounds that a store's tables
    change only by its migrations, at open. Passes, then every kind of write between them
    (a kill, a revive, an alias, exclusions, a batch reconcile and evaluation), and the store's
    tables and columns are still those read after open, which the kept catalog holds."""
    before = _schema(seeded)
    live = Pipeline(config)
    db = Database(seeded)
    for i in range(6):
        ingest_events(seeded, run_events("Loser", i, "SHORT"))
        live(seeded)
        assert live.last is not None and live.last.error is None
    assert states(seeded) == {("agent", "Loser"): "killed"}
    db.revive("Loser", "checked by hand", scope="agent")
    db.alias("BTC", "BTCUSDT")
    db.apply_exclusions(SEED)
    reconcile(seeded, config.reconcile)
    Gates(seeded).evaluate(config.governance)
    ingest_events(seeded, run_events("Loser", 6, "SHORT"))
    live(seeded)
    assert live.last is not None and live.last.error is None
    assert _schema(seeded) == before
    kept = live.catalog(seeded.con)
    assert kept.tables == table_names(seeded.con)  # read again, now
    assert kept.columns  # the passes asked for some columns
    for table, cols in kept.columns.items():
        assert cols == [c for t, c, _ in before if t == table], table


def test_the_server_imports_what_the_first_catch_up_would_import() -> None:
    """The first round after a start would otherwise pay pyarrow's lazy Acero import (~20 ms)
    inside its decision's latency: loading the pipeline loads it."""
    import subprocess
    import sys
    code = ("import sys; import alphatrace.server.pipeline; "
            "print('pyarrow.acero' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"
