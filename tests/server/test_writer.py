"""The single writer: merged rounds, results split back per request, backpressure, isolation."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from alphatrace.server import writer as writer_mod
from alphatrace.server.writer import Busy, Writer
from alphatrace.store.connection import one


def events(tag: str, n: int, bad_at: int | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "telemetry", "run_id": f"{tag}-{i}", "agent": tag, "event_id": f"{tag}:{i}"}
        for i in range(n)
    ]
    if bad_at is not None:
        out[bad_at]["tokens_in"] = -1
    return out


def until(cond: Any, timeout: float = 60.0) -> None:
    """Wait for `cond()` (a liveness check: the timeout only ends a test that would hang)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_requests_waiting_together_share_one_round(tmp_path: Path) -> None:
    w = Writer(tmp_path / "db.duckdb", linger_s=0.2)
    sizes = [3, 1, 4, 1, 5, 9, 2, 6]
    futs = [w.submit_events(events(f"R{k}", n, bad_at=0 if k == 2 else None))
            for k, n in enumerate(sizes)]
    w.start()  # everything is already queued: one round takes it all
    res = [f.result(30) for f in futs]
    assert w.stats.rounds == 1 and w.stats.requests == 8 and w.stats.events == sum(sizes)
    for k, (n, r) in enumerate(zip(sizes, res, strict=True)):
        assert [x.index for x in r] == list(range(n))
        ok = [x for x in r if x.status == "accepted"]
        assert [x.event_id for x in ok] == [f"R{k}:{i}" for i in range(n) if not (k == 2 and i == 0)]
    assert res[2][0].status == "rejected" and res[2][0].field == "tokens_in"
    w.stop()


def test_backpressure(tmp_path: Path) -> None:
    w = Writer(tmp_path / "db.duckdb", max_pending_events=10)
    w.submit_events(events("A", 8))
    with pytest.raises(Busy):
        w.submit_events(events("B", 8))
    w.submit_events(events("C", 2))  # still fits
    w.start()
    w.stop()
    assert w.pending_events == 0
    from alphatrace.store import Store

    with Store(tmp_path / "db.duckdb", read_only=True) as s:
        assert one(s.con, "SELECT count(*) FROM telemetry")[0] == 10


def test_a_failing_request_does_not_fail_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = writer_mod.ingest_typed

    def picky(store: Any, evs: list[Any], source: str = "") -> Any:
        if any(e.get("poison") for e in evs):
            raise RuntimeError("poisoned")
        return real(store, evs, source=source)

    monkeypatch.setattr(writer_mod, "ingest_typed", picky)
    w = Writer(tmp_path / "db.duckdb", linger_s=0.2)
    good = w.submit_events(events("G", 2))
    bad = w.submit_events([{"poison": True}])
    also = w.submit_events(events("H", 1))
    w.start()
    assert [x.status for x in good.result(30)] == ["accepted", "accepted"]
    assert [x.status for x in also.result(30)] == ["accepted"]
    with pytest.raises(RuntimeError, match="poisoned"):
        bad.result(30)
    w.stop()


def test_calls_run_in_order_with_ingest(tmp_path: Path) -> None:
    w = Writer(tmp_path / "db.duckdb")
    w.start()
    w.submit_events(events("A", 3))
    n = w.submit_call(lambda s: one(s.con, "SELECT count(*) FROM telemetry")[0])
    assert n.result(30) == 3
    with w.reader() as con:
        assert one(con, "SELECT count(*) FROM telemetry")[0] == 3
    w.stop()


def test_stop_interrupts_a_long_read_and_closes_the_store(tmp_path: Path) -> None:
    """A background read still running at shutdown (the dashboard's minute-long search) is
    interrupted: the store closes at once instead of DuckDB refusing because a cursor is busy."""
    import threading
    import time

    import duckdb

    w = Writer(tmp_path / "db.duckdb")
    w.start()
    calls: list[str] = []
    w.before_close(lambda: calls.append("before"))
    started, failed = threading.Event(), []

    def long_read() -> None:
        with w.reader() as cur:
            started.set()
            try:
                cur.execute("SELECT count(*) FROM range(10000000000000) t(i) WHERE i % 7 = 3")
            except duckdb.Error as e:
                failed.append(type(e).__name__)

    t = threading.Thread(target=long_read)
    t.start()
    assert started.wait(10)
    time.sleep(0.2)  # the query is running
    t0 = time.monotonic()
    w.stop()
    t.join(10)
    assert time.monotonic() - t0 < 5 and not t.is_alive()
    assert calls == ["before"] and failed == ["InterruptException"]
    duckdb.connect(str(tmp_path / "db.duckdb")).close()  # closed: the file opens again


def test_after_round_hooks_see_each_committed_round_in_order(tmp_path: Path) -> None:
    """Hooks run after a round (on the after-round thread), in registration order, with the
    round's rows already visible; a hook that raises neither fails ingest nor stops the next
    hook. (`sync()` after each round: hook runs coalesce the rounds committed meanwhile.)"""
    w = Writer(tmp_path / "db.duckdb")
    seen: list[tuple[str, int]] = []

    def count(tag: str) -> Any:
        def hook(store: Any) -> None:
            seen.append((tag, int(one(store.con, "SELECT count(*) FROM telemetry")[0])))
        return hook

    def broken(store: Any) -> None:
        raise RuntimeError("hook failure")

    w.after_round(count("first"))
    w.after_round(broken)
    w.after_round(count("second"))
    w.start()
    res = w.submit_events(events("A", 3)).result(30)
    assert [r.status for r in res] == ["accepted"] * 3
    w.sync().result(30)
    w.submit_events(events("B", 2)).result(30)
    w.stop()
    assert seen[:2] == [("first", 3), ("second", 3)]
    assert seen[-2:] == [("first", 5), ("second", 5)]


def test_sync_resolves_after_the_hooks_of_its_round(tmp_path: Path) -> None:
    """`sync()` is a round whose answer waits for its hooks: a hook that takes a while has
    finished (and seen the store) when the future resolves."""
    import threading

    w = Writer(tmp_path / "db.duckdb")
    release = threading.Event()
    seen: list[int] = []

    def slow_hook(store: Any) -> None:
        release.wait(30)
        seen.append(1)

    w.after_round(slow_hook)
    w.start()
    fut = w.sync()
    assert not fut.done()  # the hook is still waiting
    release.set()
    assert fut.result(30) is None and seen == [1]
    w.stop()


def test_a_running_hook_does_not_hold_back_ingest(tmp_path: Path) -> None:
    """While an after-round hook (the live pipeline's pass) runs, ingest rounds still commit
    and answer; the next hook run covers every round committed meanwhile, and `sync()`
    resolves only after a run that saw its round."""
    import threading

    w = Writer(tmp_path / "db.duckdb")
    entered, release = threading.Event(), threading.Event()
    runs: list[tuple[int, int]] = []  # (telemetry rows seen, rounds covered)

    def blocking(store: Any) -> None:
        n = int(one(store.con, "SELECT count(*) FROM telemetry")[0])
        runs.append((n, w.after_rounds.covering().count))
        if len(runs) == 1:
            entered.set()
            release.wait(30)

    w.after_round(blocking)
    w.start()
    w.submit_events(events("A", 3)).result(30)
    assert entered.wait(30)  # the first run is blocked in the hook
    res = w.submit_events(events("B", 2)).result(30)  # committed and answered meanwhile
    res += w.submit_events(events("C", 1)).result(30)
    assert [r.status for r in res] == ["accepted"] * 3 and not release.is_set()
    assert int(one(w.store.con, "SELECT count(*) FROM telemetry")[0]) == 6
    fut = w.sync()
    assert not fut.done() and len(runs) == 1
    release.set()
    assert fut.result(30) is None
    assert runs[0] == (3, 1)
    assert runs[1][0] == 6 and runs[1][1] >= 2  # the rounds of B and C, in one run
    w.stop()


def test_after_a_run_the_hooks_rest_as_long_as_it_took(tmp_path: Path) -> None:
    """Rounds that keep coming would start a run as soon as the last one ended: the thread
    rests `REST` x the run's time first, so the hooks take at most half the time under
    sustained ingest. Only lower bounds on time are asserted (a slower machine only makes a
    run and its rest longer): each run starts at least REST x the previous run's time after
    it ended (without the rest, microseconds after)."""
    import threading
    import time

    from alphatrace.server.after_rounds import REST

    assert REST >= 1.0
    w = Writer(tmp_path / "db.duckdb")
    marks: list[tuple[float, float]] = []  # (start, end) of each run of the hook
    entered, release = threading.Event(), threading.Event()

    def hook(store: Any) -> None:
        t0 = time.monotonic()
        if not marks:
            entered.set()
            release.wait(30)
        time.sleep(0.05)
        marks.append((t0, time.monotonic()))

    w.after_round(hook)
    w.start()
    w.submit_events(events("A", 1)).result(30)
    assert entered.wait(30)
    for i in range(3):  # rounds waiting when each run ends: the next run is due at once
        w.submit_events(events(f"B{i}", 1)).result(30)
    release.set()
    # Waited for by polling, not `sync()`: a write call may decide, so it would end the rest.
    until(lambda: len(marks) >= 2)
    w.submit_events(events("C", 1)).result(30)
    until(lambda: len(marks) >= 3)
    w.stop()
    for (s0, e0), (s1, _) in itertools.pairwise(marks):
        assert s1 - e0 >= REST * (e0 - s0)


def test_a_stop_does_not_wait_for_the_rest(tmp_path: Path) -> None:
    """A stop during the rest ends it: the hooks run for the rounds still reported and the
    thread ends (with a rest of hours, it would still be resting when `stop` gave up)."""
    w = Writer(tmp_path / "db.duckdb")
    seen: list[int] = []
    w.after_rounds.rest = 1e6  # any run's rest outlasts the test

    def hook(store: Any) -> None:
        seen.append(int(one(store.con, "SELECT count(*) FROM telemetry")[0]))

    w.after_round(hook)
    w.start()
    w.submit_events(events("A", 2)).result(30)
    w.submit_events(events("B", 3)).result(30)  # committed while the first run rests
    w.stop()
    assert not w.after_rounds._thread.is_alive()
    assert seen[-1] == 5


def test_a_round_that_may_decide_ends_the_rest(tmp_path: Path) -> None:
    """A kill must not wait out the rest: with a rest that outlasts the test, a round carrying
    a PnL event starts the next run of the hooks at once, and that run covers the telemetry
    round that was resting (without `urgent`, the wait below would time out)."""
    import threading

    w = Writer(tmp_path / "db.duckdb")
    w.after_rounds.rest = 1e6
    seen: list[tuple[int, int]] = []
    ran = threading.Semaphore(0)

    def hook(store: Any) -> None:
        seen.append((int(one(store.con, "SELECT count(*) FROM telemetry")[0]),
                     int(one(store.con, "SELECT count(*) FROM pnl")[0])))
        ran.release()

    w.after_round(hook)
    w.start()
    w.submit_events(events("A", 2)).result(30)
    assert ran.acquire(timeout=60)  # the first run; its rest begins
    w.submit_events(events("B", 3)).result(30)  # telemetry: rests
    w.submit_events([{"type": "pnl", "run_id": "A-0", "realized_pnl_bps": -12.5,
                      "event_id": "pnl:A-0"}]).result(30)
    assert ran.acquire(timeout=60)
    assert seen[-1] == (5, 1)
    w.stop()


def test_a_round_that_may_decide_does_not_linger(tmp_path: Path) -> None:
    """The writer waits for more requests only on the stream that makes the load: with a linger
    that outlasts the test and more requests expected than come, a telemetry request waits
    for company, a PnL request goes at once (without it, its result below would time out)."""
    w = Writer(tmp_path / "db.duckdb", linger_s=1e6)
    w.start()
    w._last_round_jobs = 8  # eight clients were in the last round: wait for them
    pnl = w.submit_events([{"type": "pnl", "run_id": "A-0", "realized_pnl_bps": -12.5,
                            "event_id": "pnl:A-0"}])
    assert [r.status for r in pnl.result(30)] == ["accepted"]
    w._last_round_jobs = 8
    tel = w.submit_events(events("A", 2))
    until(lambda: w._q.empty())  # taken: the writer is lingering with it
    assert not tel.done()
    also = w.submit_events([{"type": "pnl", "run_id": "A-1", "realized_pnl_bps": 3.0,
                             "event_id": "pnl:A-1"}])  # joins that round and ends its wait
    assert [r.status for r in tel.result(30)] == ["accepted", "accepted"]
    assert [r.status for r in also.result(30)] == ["accepted"]
    assert w.stats.rounds == 2 and w.stats.requests == 3
    w.stop()


NOW = "2026-06-01T12:00:00Z"


@pytest.mark.parametrize(("jobs", "decides"), [
    ([("json", [{"type": "telemetry", "run_id": "r"}] * 3)], False),
    # live signals: their exit is ahead of the clock, no bar can price them yet
    ([("json", [{"type": "alpha", "ts": "2026-06-01T11:30:00Z", "horizon": "1h"},
                {"type": "alpha", "ts": 1_780_315_200 + 60, "horizon": 3600}])], False),
    # no horizon: the policy's shortest (90m here) decides
    ([("json", [{"type": "alpha", "ts": "2026-06-01T11:00:00Z"}])], False),
    ([("json", [{"type": "alpha", "ts": "2026-06-01T10:30:00Z"}])], True),
    # a replayed or late signal: bars already stored may price it
    ([("json", [{"type": "alpha", "ts": "2026-06-01T10:00:00Z", "horizon": "2h"}])], True),
    ([("json", [{"type": "alpha", "ts": 1_780_315_200_000 - 3_600_000, "horizon": "30m"}])], True),
    ([("json", [{"type": "alpha", "ts": "not a time", "horizon": "1h"}])], True),
    ([("json", [{"type": "alpha", "horizon": "1h"}])], True),  # no ts: quarantined, say may
    ([("otlp", [{"type": "telemetry", "run_id": "r"}])], False),
    ([("json", ["not an object", 7])], False),  # quarantined: nothing to decide on
    ([("json", [{"type": "telemetry"}, {"type": "alpha", "ts": "2025-01-01", "run_id": "r"}])],
     True),
    ([("json", [{"type": "pnl", "run_id": "r"}])], True),
    ([("json", [{"run_id": "r", "realized_pnl_bps": 1.0}])], True),  # no type: may be PnL
    ([("otlp", [{"type": "telemetry"}]), ("call", None)], True),
])
def test_which_rounds_may_decide(jobs: list[tuple[str, Any]], decides: bool) -> None:
    from concurrent.futures import Future

    def job(how: str, evs: Any) -> Any:
        if how == "call":
            return writer_mod._CallJob(lambda _s: None, Future())
        entry = None if how == "json" else (lambda *_a: [])
        return writer_mod._EventJob(evs, Future(), "<t>", entry)

    from alphatrace.parse import parse_time

    assert writer_mod.may_decide([job(h, e) for h, e in jobs], parse_time(NOW), 5400.0) is decides


def test_the_shortest_horizon_of_a_policy() -> None:
    from alphatrace.ledger.policy import ReconcilePolicy

    assert ReconcilePolicy().shortest_horizon_s() == 8 * 3600
    p = ReconcilePolicy.model_validate(
        {"horizon": "4h", "agents": {"Fast": {"horizon": "90m"}, "Cheap": {"fee_bps": 1}}})
    assert p.shortest_horizon_s() == 5400


def test_the_server_takes_the_signal_horizon_from_its_policy(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from alphatrace.server.app import create_app
    from alphatrace.server.pipeline import PipelineConfig

    app = create_app(tmp_path / "db.duckdb", pipeline=PipelineConfig.load(None),
                     warn_without_keys=False)
    with TestClient(app):
        assert app.state.writer.signal_horizon_s == 8 * 3600  # the shipped policy's 8h


def test_a_derived_write_waits_for_the_running_hooks(tmp_path: Path) -> None:
    """`Writer.derived()` (a CLI `reconcile` or `revive` beside the server) never overlaps a
    hook run: taken while a run blocks, it is granted only after the run ended."""
    import threading

    w = Writer(tmp_path / "db.duckdb")
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def blocking(store: Any) -> None:
        entered.set()
        release.wait(30)
        order.append("hook done")

    def derived_write() -> None:
        with w.derived():
            order.append("derived write")

    w.after_round(blocking)
    w.start()
    w.submit_events(events("A", 1)).result(30)
    assert entered.wait(30)
    t = threading.Thread(target=derived_write)
    t.start()
    release.set()
    t.join(30)
    assert order == ["hook done", "derived write"]
    w.stop()


def test_the_idle_checkpoint_waits_for_the_hooks_then_happens(tmp_path: Path) -> None:
    """No checkpoint while a hook run is in progress (the pass's own writes would stay in the
    WAL); once it ends and ingest is idle, the writer checkpoints."""
    import threading
    import time

    w = Writer(tmp_path / "db.duckdb", idle_checkpoint_s=0.01)
    entered, release = threading.Event(), threading.Event()

    def blocking(store: Any) -> None:
        store.con.execute("CREATE TABLE IF NOT EXISTS derived_here (x INTEGER)")
        store.con.execute("INSERT INTO derived_here VALUES (1)")
        entered.set()
        release.wait(30)

    w.after_round(blocking)
    w.start()
    w.submit_events(events("A", 1)).result(30)
    assert entered.wait(30)
    time.sleep(0.3)  # the writer's idle timer fires many times while the hook blocks
    assert w.stats.checkpoints == 0
    release.set()
    deadline = time.monotonic() + 60
    while w.stats.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.stats.checkpoints >= 1
    w.stop()
