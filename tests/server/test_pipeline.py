"""The live pipeline as a writer hook, in process: when it runs, what it records, coalescing,
failures and retries. (The real server: tests/server/test_pipeline_server.py.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from alphatrace.governance.api import Gates
from alphatrace.ledger.reconcile import reconcile
from alphatrace.server import pipeline as pipeline_mod
from alphatrace.server.pipeline import Pipeline, PipelineConfig, data_mark
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.policies import SEED

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


def test_queued_rounds_are_coalesced_into_one_pass(seeded: Store, config: PipelineConfig
                                                   ) -> None:
    queued = [3]
    clock = Clock()
    live = Pipeline(config, backlog=lambda: queued[0], max_defer_s=0.25, clock=clock)
    for i in range(4):
        ingest_events(seeded, run_events("A", i, "LONG"))
        live(seeded)
        queued[0] -= 1
        clock.t += 0.01
    assert live.passes == 1 and live.skipped == 3
    assert live.last is not None and live.last.rounds == 4
    assert live.last.lag_ms == pytest.approx(30.0)  # from the first round's commit
    assert seeded.con.execute("SELECT count(*) FROM ledger").fetchall() == [(4,)]


def test_a_steady_stream_still_gets_passes(seeded: Store, config: PipelineConfig) -> None:
    clock = Clock()
    live = Pipeline(config, backlog=lambda: 1, max_defer_s=0.25, clock=clock)
    for i in range(10):
        ingest_events(seeded, run_events("A", i, "LONG"))
        live(seeded)
        clock.t += 0.1
    # rounds at 0.0 .. 0.9 s; a pass once the oldest uncovered round is 0.25 s old: at 0.3
    # (covering 0.0-0.3) and at 0.7 (0.4-0.7); 0.8 and 0.9 wait for the next round
    assert live.passes == 2 and live.skipped == 8


def test_under_a_stream_a_slow_pass_waits_as_long_as_it_took(
        seeded: Store, config: PipelineConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()

    def slow(store: Store, cfg: Any) -> Any:
        clock.t += 0.5  # each pass takes 0.5 s
        return reconcile(store, cfg)

    monkeypatch.setattr(pipeline_mod, "reconcile", slow)
    live = Pipeline(config, backlog=lambda: 1, max_defer_s=0.25, clock=clock)
    for i in range(8):
        ingest_events(seeded, run_events("A", i, "LONG"))
        live(seeded)
        clock.t += 0.125  # exact in binary: no rounding at the limits
    # rounds 0-1 (t = 0, 0.125) wait; round 2 (0.25) passes, until 0.75; rounds 3-6
    # (0.875 .. 1.25) wait up to 0.5 s, as long as that pass took (with 0.25, round 5 would
    # pass); round 7 (1.375) passes, covering rounds 3-7
    assert live.passes == 2 and live.last is not None and live.last.rounds == 5


def test_a_failed_step_is_reported_and_retried(seeded: Store, config: PipelineConfig,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    live = Pipeline(config)
    calls = []

    def broken(store: Store, cfg: Any) -> Any:
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
