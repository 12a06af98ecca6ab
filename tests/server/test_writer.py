"""The single writer: merged rounds, results split back per request, backpressure, isolation."""

from __future__ import annotations

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
    real = writer_mod.ingest_events

    def picky(store: Any, evs: list[Any], source: str = "", kind: Any = None) -> Any:
        if any(e.get("poison") for e in evs):
            raise RuntimeError("poisoned")
        return real(store, evs, source=source)

    monkeypatch.setattr(writer_mod, "ingest_events", picky)
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
    """Hooks run on the writer thread after a round, in registration order, with the round's
    rows already visible; a hook that raises neither fails ingest nor stops the next hook."""
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
