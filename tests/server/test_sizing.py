"""GET /v1/agents/{agent}/sizing (issue #20 item 1), in process: answered from the live state,
which follows every writer round; killed agents and agents of a killed strategy get 0 and why.

Expected multipliers are the seed's factors by hand: a run under −20 bps ×0.85, under 0 ×0.95.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.api import Database
from alphatrace.governance import journal
from alphatrace.governance.gates import Decision
from alphatrace.governance.policy import load_governance
from alphatrace.governance.sizing import KILL_STOPS, agent_sizings, sized
from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.server.live_state import LiveState
from alphatrace.server.sizing_routes import Sizing
from alphatrace.store import Store
from tests.policies import SEED
from tests.rows import insert, series


def evidence(agent: str, pnls: list[float], strategy: str = "S1", prefix: str | None = None
             ) -> list[dict[str, Any]]:
    """A telemetry and an external pnl event per run, an hour apart."""
    p = prefix or agent.lower()
    out: list[dict[str, Any]] = []
    for i, v in enumerate(pnls):
        rid = f"{p}{i:03d}"
        out.append({"type": "telemetry", "run_id": rid, "agent": agent, "strategy": strategy,
                    "ts": f"2025-03-01T{i:02d}:00:00Z", "latency_ms": 10})
        out.append({"type": "pnl", "run_id": rid, "agent": agent,
                    "ts": f"2025-03-01T{i:02d}:30:00Z", "realized_pnl_bps": v})
    return out


class Collector:
    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post(self, events: list[dict[str, Any]]) -> None:
        r = self.client.post("/v1/events", json=events, headers=self.auth("ingest"))
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text

    def write(self, fn: Any) -> Any:
        """A write on the writer thread, then `sync`: a run of the after-round hooks (the
        sizing state's refresh) that started after the write has ended once it returns."""
        writer = self.client.app.state.writer  # type: ignore[attr-defined]
        out = writer.submit_call(fn).result(60)
        writer.sync().result(60)
        assert self.client.app.state.live.settle()  # type: ignore[attr-defined]
        return out

    def reconcile_and_evaluate(self) -> None:
        self.write(lambda s: (Database(s).reconcile(), Database(s).gates.evaluate(SEED, once=True)))

    def sizing(self, agent: str, **q: Any) -> dict[str, Any]:
        r = self.client.get(f"/v1/agents/{agent}/sizing", params=q, headers=self.auth("read"))
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        assert Sizing.model_validate(doc).model_dump() == doc  # the documented shape, exactly
        return doc


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        keys = {s: create_key(store, f"k-{s}", s)["key"] for s in ("ingest", "read", "admin")}
    app = create_app(db, linger_s=0.001, warn_without_keys=False)
    with TestClient(app) as client:
        yield Collector(client, keys)


def test_size_is_base_times_abs_score_times_the_multiplier(collector: Collector) -> None:
    collector.post(evidence("A", [-30.0, -10.0, 5.0]))
    collector.reconcile_and_evaluate()
    doc = collector.sizing("A", base_size=10_000, score=-1.5)
    m = 0.85 * 0.95 * 1.0
    assert doc["multiplier"] == pytest.approx(m)
    assert doc["size"] == pytest.approx(10_000 * 1.5 * m)
    assert (doc["state"], doc["killed"], doc["reason"]) == ("candidate", False, None)
    # knowledge time: the newest run's PnL event came at 02:30 (its telemetry at 02:00)
    assert doc["known_ts"] == "2025-03-01T02:30:00.000000Z"
    assert doc["kill_stops"] == KILL_STOPS and "open" in doc["kill_stops"]
    assert doc["policy"] == {"fail": "closed", "cache_s": 1.0, "timeout_ms": 200.0}
    # Without base_size: the state alone (what the SDK caches).
    bare = collector.sizing("A")
    assert bare["size"] is None and bare["multiplier"] == pytest.approx(m)
    assert bare["score"] == 1.0
    # An agent the store has never seen: a candidate at 1.0, as local sizing answers.
    new = collector.sizing("Nobody", base_size=100, score=2)
    assert (new["size"], new["multiplier"], new["state"], new["decision_seq"]) == (
        200.0, 1.0, "candidate", None)
    assert new["seq"] == doc["seq"] > 0  # the head both answers reflect


def test_a_kill_is_answered_at_once_with_size_zero_and_the_reason(collector: Collector) -> None:
    collector.post(evidence("K", [-50.0] * 6))
    before = collector.sizing("K", base_size=10_000, score=1)
    assert before["size"] > 0 and before["seq"] == 0  # events stored, nothing derived yet
    collector.reconcile_and_evaluate()
    doc = collector.sizing("K", base_size=10_000, score=1)
    assert (doc["state"], doc["killed"], doc["size"], doc["stopped_by"]) == (
        "killed", True, 0.0, "agent")
    assert "kill_drawdown" in doc["reason"] and f"seq {doc['decision_seq']}" in doc["reason"]
    with collector.client.app.state.writer.reader() as con:  # type: ignore[attr-defined]
        head = journal.head(con)
    assert head is not None and doc["seq"] == head[0] == 2  # agent K and strategy S1


def test_an_agent_of_a_killed_strategy_gets_nothing_before_the_cascade(collector: Collector
                                                                      ) -> None:
    collector.post(evidence("A", [5.0, 6.0], strategy="S2"))
    collector.reconcile_and_evaluate()

    def kill_strategy(store: Store) -> None:  # a strategy kill with no agent record yet
        d = Decision(subject="S2", scope="strategy", action="kill", rule="manual", fired=[],
                     blocked=False, state="killed", cascade_from=None, reason="test kill",
                     policy_hash="p", as_of=None, metrics={}, run_ids=[])
        journal.append(store, [d], None, actor="test")

    collector.write(kill_strategy)
    doc = collector.sizing("A", base_size=100, score=1)
    assert (doc["state"], doc["killed"], doc["stopped_by"], doc["strategy"], doc["size"]) == (
        "candidate", True, "strategy", "S2", 0.0)
    assert "test kill" in doc["reason"]


def test_bad_numbers_and_keys_are_refused(collector: Collector) -> None:
    c = collector.client
    for q, field in (({"base_size": -1, "score": 1}, "base_size"),
                     ({"base_size": 1, "score": "inf"}, "score"),
                     ({"base_size": "nan"}, "base_size"), ({"base_size": "x"}, "base_size")):
        r = c.get("/v1/agents/A/sizing", params=q, headers=collector.auth("read"))
        assert r.status_code == 422, (q, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", field]
    # Any agent name, quoted as the SDK sends it (a slash included).
    r = c.get("/v1/agents/a%2Fb%20c/sizing", headers=collector.auth("read"))
    assert r.status_code == 200 and r.json()["agent"] == "a/b c"
    # base_size alone: a signal at score 1.
    assert collector.sizing("A", base_size=250)["size"] == 250.0
    assert c.get("/v1/agents/A/sizing").status_code == 401
    assert c.get("/v1/agents/A/sizing", headers=collector.auth("ingest")).status_code == 403
    assert c.get("/v1/agents/A/sizing", headers=collector.auth("admin")).status_code == 200


def test_sizing_requests_are_counted_in_metrics(collector: Collector) -> None:
    for _ in range(3):
        collector.sizing("A")
    from prometheus_client.parser import text_string_to_metric_families

    text = collector.client.get("/metrics", headers=collector.auth("read")).text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    count = [s.value for s in fams["alphatrace_sizing_seconds"].samples
             if s.name.endswith("_count")]
    assert count == [3.0]
    assert "alphatrace_pipeline_lag_seconds" in fams


def test_state_is_not_read_again_when_nothing_it_reads_changed(collector: Collector) -> None:
    live = collector.client.app.state.live  # type: ignore[attr-defined]
    n = live.refreshes
    collector.write(lambda s: None)
    collector.post([{"type": "telemetry", "run_id": "x", "agent": "X", "latency_ms": 1}])
    assert live.settle() and live.refreshes == n  # events alone (no reconcile, no decision) change nothing
    collector.reconcile_and_evaluate()
    assert live.refreshes == n + 1


# ------------------------------------------------------------ the state, against the store

@settings(max_examples=25)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=12),
       st.floats(0, 1e6), st.floats(-5, 5))
def test_state_multiplier_is_the_product_of_the_seed_factors(
        pnls: list[float], base: float, score: float) -> None:
    with Store(":memory:") as store:
        insert(store.con, series("A", pnls))
        st_ = agent_sizings(store.con, load_governance())["A"]
    want = math.prod(0.85 if p < -20 else 0.95 if p < 0 else 1.0 for p in pnls)
    assert st_.multiplier == pytest.approx(want, rel=1e-12)
    assert sized(base, score, st_.multiplier, False) == pytest.approx(base * abs(score) * want)
    assert sized(base, score, st_.multiplier, True) == 0.0


def test_a_kill_is_answered_while_the_confidence_pass_is_still_running() -> None:
    with Store(":memory:") as store:
        insert(store.con, series("A", [5.0, -30.0]))
        gate = threading.Event()

        @contextmanager
        def slow_reader() -> Iterator[Any]:
            gate.wait(30)  # the background pass is held here
            cur = store.cursor()
            try:
                yield cur
            finally:
                cur.close()

        live = LiveState(load_governance(), reader=slow_reader)
        live.start(store)  # both sides read now, on this thread
        snap = live.current()
        assert snap is not None and snap.agent("A").multiplier == pytest.approx(0.85)
        # More runs (a confidence pass is due, and held) and a kill of A.
        insert(store.con, series("A", [-30.0], prefix="A2"))
        d = Decision(subject="A", scope="agent", action="kill", rule="manual", fired=(),
                     blocked=False, state="killed", cascade_from=None, reason=None,
                     policy_hash="p", as_of=None, metrics={}, run_ids=[])
        journal.append(store, [d], None, actor="test")
        live.refresh(store)
        snap = live.current()
        assert snap is not None and snap.agent("A").killed and snap.seq == 1
        assert snap.agent("A").multiplier == pytest.approx(0.85)  # the old pass's, for now
        gate.set()
        assert live.settle()
        snap = live.current()
        assert snap is not None and snap.agent("A").multiplier == pytest.approx(0.85 ** 2)
        assert snap.agent("A").killed
        live.stop()


def test_the_confidence_pass_rests_between_passes_and_still_ends_current() -> None:
    """The ledger side's thread takes at most `duty` of a core: after a pass it rests
    (1/duty − 1) times as long as the pass took, and the changes that came meanwhile are read
    by the next pass (live_state.LEDGER_DUTY)."""
    pnls = [5.0, -30.0, -1.0, 2.0, -25.0, -3.0, 4.0, -40.0]
    with Store(":memory:") as store:
        insert(store.con, series("A", pnls[:1]))

        @contextmanager
        def slow_reader() -> Iterator[Any]:
            time.sleep(0.05)  # a pass as long as over a big ledger
            cur = store.cursor()
            try:
                yield cur
            finally:
                cur.close()

        live = LiveState(load_governance(), reader=slow_reader, duty=0.25)
        live.start(store)
        for i, p in enumerate(pnls[1:]):
            insert(store.con, series("A", [p], prefix=f"A{i}"))
            live.refresh(store)  # a pass is due after every round
            time.sleep(0.02)
        assert live.settle()
        passes = list(live.passes)
        live.stop()
    assert 1 <= len(passes) < len(pnls) - 1  # rounds that came during a rest share a pass
    for (s0, e0), (s1, _) in itertools.pairwise(passes):
        assert s1 - e0 >= 3.0 * (e0 - s0) - 1e-9  # rested (1/0.25 − 1) times the pass
    snap = live.current()
    want = math.prod(0.85 if p < -20 else 0.95 if p < 0 else 1.0 for p in pnls)
    assert snap is not None and snap.agent("A").multiplier == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="duty"):
        LiveState(load_governance(), duty=0.0)
