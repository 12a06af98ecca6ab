"""The pipeline skips its gates step when the round can change no decision
(`governance.quiet`), and a skip is exact: the log and the marks are those of running it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from alphatrace.governance import quiet
from alphatrace.governance.api import Gates, Governance
from alphatrace.policy import Policy
from alphatrace.server.pipeline import Pipeline, PipelineConfig
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.policies import SEED
from tests.server.test_pipeline import T0, bars, run_events

LOG = ("SELECT scope, subject, action, rule, state, as_of, run_ids, metrics FROM decisions "
       "ORDER BY seq")
MARKS = "SELECT * FROM gate_progress ORDER BY ALL"
SEEN = ("SELECT (SELECT list(seq) FROM gate_seen), "
        "(SELECT list(c ORDER BY c.seq, c.run_id) FROM ledger_changes c)")


def telemetry(i: int, run: str | None = None, agent: str = "Ops") -> list[dict[str, Any]]:
    """An OTLP-like round: telemetry alone, for a new run (or `run`), an hour after run i."""
    ts = (T0 + dt.timedelta(hours=i, minutes=30)).isoformat() + "Z"
    return [{"type": "telemetry", "event_id": f"tel-{i}-{run}", "run_id": run or f"T-{i}",
             "agent": agent, "ts": ts, "latency_ms": 50.0, "cost_usd": 0.01}]


def rounds() -> list[tuple[str, list[dict[str, Any]]]]:
    """Runs of a losing and a winning agent, with telemetry-only rounds between them: new
    runs (no signal), and more telemetry for a realized run (its cost, so its net, moves)."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for i in range(7):
        out.append(("runs", run_events("Loser", i, "SHORT") + run_events("Winner", i, "LONG")))
        out.append(("telemetry", telemetry(i)))
        out.append(("telemetry", telemetry(i + 100)))
    out.append(("counted", telemetry(200, run="Winner-3", agent="Winner")))
    out.append(("telemetry", telemetry(201)))
    return out


def _live(config: PipelineConfig, skip: bool, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[list[Any], list[Any], list[bool], list[str], list[Any]]:
    with monkeypatch.context() as m:
        if not skip:  # the oracle: every pass runs its catch-up
            m.setattr(quiet, "skip", lambda *_a: None)
        with Store(":memory:") as store:
            bars(store)
            live = Pipeline(config)
            skipped, kinds = [], []
            for kind, events in rounds():
                ingest_events(store, events)
                live(store)
                assert live.last is not None and live.last.error is None
                skipped.append(live.last.gates_skipped)
                kinds.append(kind)
            return (store.con.execute(LOG).fetchall(), store.con.execute(MARKS).fetchall(),
                    skipped, kinds, store.con.execute(SEEN).fetchall())


def test_rounds_that_change_no_decision_skip_the_gates_exactly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = PipelineConfig.load(SEED)
    log, marks, skipped, kinds, seen = _live(config, True, monkeypatch)
    oracle_log, oracle_marks, never, _, oracle_seen = _live(config, False, monkeypatch)
    assert not any(never)
    assert log == oracle_log and marks == oracle_marks and seen == oracle_seen
    assert {a for _, _, a, *_ in log} >= {"kill", "promote"}
    # skipped: the telemetry-only rounds of new runs; not: new runs, a counted run's change
    assert [k for k, s in zip(kinds, skipped, strict=True) if s] == ["telemetry"] * 15
    assert not any(s for k, s in zip(kinds, skipped, strict=True) if k != "telemetry")


def _caught_up(policy: Policy) -> tuple[Store, PipelineConfig, Pipeline]:
    store = Store(":memory:")
    bars(store)
    config = PipelineConfig.load(policy)
    live = Pipeline(config)
    for i in range(6):
        ingest_events(store, run_events("Loser", i, "SHORT"))
        live(store)
    return store, config, live


def test_a_skip_is_what_running_the_catch_up_gives() -> None:
    store, config, live = _caught_up(SEED)
    with store:
        ingest_events(store, telemetry(50))
        live(store)
        assert live.last is not None and live.last.gates_skipped and live.last.decisions == []
        log, marks = store.con.execute(LOG).fetchall(), store.con.execute(MARKS).fetchall()
        seen = store.con.execute(SEEN).fetchall()
        assert Gates(store).evaluate(config.governance, catch_up=True) == []
        assert store.con.execute(LOG).fetchall() == log
        assert store.con.execute(MARKS).fetchall() == marks
        assert store.con.execute(SEEN).fetchall() == seen


def test_a_revive_or_a_record_written_elsewhere_is_judged() -> None:
    store, config, live = _caught_up(SEED)
    with store:
        assert ("agent", "Loser", "kill") in {
            (sc, s, a) for sc, s, a, *_ in store.con.execute(LOG).fetchall()}
        Governance(store).revive("Loser", "fixed", actor="test")
        ingest_events(store, telemetry(50))
        live(store)  # the log moved: judged (the revived agent at its revive)
        assert live.last is not None and not live.last.gates_skipped
        # its window still loses: killed again at the revive's time
        assert [d["action"] for d in live.last.decisions] == ["kill"]
        # a subject whose newest record is a revive is judged at every catch-up (at the
        # revive's time, as long as it stays the newest): even with nothing else new, no skip
        Governance(store).revive("Loser", "again", actor="test")
        now = quiet.judged(store.con, config.governance)
        assert now is not None and now.revives
        assert quiet.skip(store, config.governance, now) is None


def test_a_duration_window_is_judged_when_the_newest_time_moves() -> None:
    data = {**SEED.data, "gates": {**SEED.data["gates"],
                                   "window": {"runs": 20, "duration": "2h"}}}
    store, _, live = _caught_up(Policy(data, "duration.yaml"))
    with store:
        ingest_events(store, telemetry(2))  # before the newest knowledge time: skipped
        live(store)
        assert live.last is not None and live.last.gates_skipped
        ingest_events(store, telemetry(40))  # the newest time moves: runs may leave
        live(store)
        assert not live.last.gates_skipped
