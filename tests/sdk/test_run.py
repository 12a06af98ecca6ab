"""The run API: event plan, ids, latency, errors, decorator and asyncio use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import alphatrace
from alphatrace.sdk import current_run, flush, run
from alphatrace.sdk.encode import prepare
from alphatrace.sdk.ids import uuid7_time_ms
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.sdk.conftest import ListSink


def by_run(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e["run_id"], []).append(e)
    return out


def test_readme_example_event_plan(captured: ListSink) -> None:
    t_before = time.time()
    with alphatrace.run(agent="CryptoFundingRateAgent", strategy="FUNDING") as r:
        time.sleep(0.03)
        r.usage(model="gpt-4o", tokens_in=1830, tokens_out=421)
        r.alpha(symbol="BTC", direction="SHORT", score=-1.42, regime="MEAN_REVERT")
    t_after = time.time()
    assert alphatrace.flush()
    usage, alpha, end = captured.events
    rid = r.run_id
    for e in (usage, alpha, end):
        assert (e["run_id"], e["agent"], e["strategy"]) == (rid, "CryptoFundingRateAgent", "FUNDING")
        assert t_before <= e["ts"] <= t_after
    assert [e["type"] for e in captured.events] == ["telemetry", "alpha", "telemetry"]
    assert [e["event_id"] for e in captured.events] == [f"{rid}:1", f"{rid}:2", f"{rid}:end"]
    # Usage: tokens and cost (1830·2.5e-6 + 421·1e-5), no latency (the run's is on the end event).
    assert (usage["model"], usage["tokens_in"], usage["tokens_out"]) == ("gpt-4o", 1830, 421)
    assert usage["cost_usd"] == pytest.approx(0.008785)
    assert usage["price_version"] == "2025.06"
    assert "latency_ms" not in usage and "errors" not in usage
    assert (alpha["symbol"], alpha["direction"], alpha["score_final"], alpha["regime"]) == (
        "BTC", "SHORT", -1.42, "MEAN_REVERT")
    # End: wall latency, start/end times, zero errors; ts is the run start.
    assert end["errors"] == 0 and end["ts"] == end["start_ts"] == r.start
    assert 30.0 <= end["latency_ms"] <= (t_after - t_before) * 1000 + 1
    assert end["end_ts"] - end["start_ts"] == pytest.approx(end["latency_ms"] / 1000, abs=0.005)


def test_run_ids_are_time_ordered_uuid7(captured: ListSink) -> None:
    ids = []
    for _ in range(50):
        with run(agent="A") as r:
            ids.append(r.run_id)
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)
    assert abs(uuid7_time_ms(ids[0]) - time.time() * 1000) < 5_000


def test_exception_counts_as_error_and_is_reraised(captured: ListSink) -> None:
    with pytest.raises(ValueError, match="boom"), run(agent="A") as r:
        r.error("handled timeout")
        raise ValueError("boom")
    flush()
    end = captured.events[-1]
    assert end["event_id"] == f"{r.run_id}:end"
    assert end["errors"] == 2 and end["error_type"] == "handled timeout"


def test_usage_given_cost_unknown_model_and_extra_attrs(captured: ListSink) -> None:
    with run(agent="A", strategy="S", prompt_version="v3") as r:
        r.usage("gpt-4o", 100, 10, cost_usd=0.5)
        r.usage("gpt-x", 100, 10, cached_tokens=20, reasoning_tokens=7, temperature=0.2)
        r.usage("o3", 1000, 500, reasoning_tokens=400)
    flush()
    given, unknown, o3, end = captured.events
    assert given["cost_usd"] == 0.5 and "price_version" not in given
    assert unknown["cost_usd"] is None and "cost_usd" not in prepare(unknown)
    assert (unknown["cached_tokens"], unknown["reasoning_tokens"], unknown["temperature"]) == (20, 7, 0.2)
    # o3 at 2 / 8 USD per 1M: reasoning tokens are inside tokens_out, billed once.
    assert o3["cost_usd"] == pytest.approx(1000 * 2e-6 + 500 * 8e-6)
    assert end["prompt_version"] == "v3"


def test_call_times_one_llm_call(captured: ListSink) -> None:
    with run(agent="A") as r:
        with r.call("gpt-4o-mini") as c:
            time.sleep(0.02)
            c.usage(tokens_in=1000, tokens_out=100)
        with pytest.raises(TimeoutError), r.call("gpt-4o-mini"):
            raise TimeoutError
    flush()
    first, failed, end = captured.events
    assert first["call_latency_ms"] >= 20 and "latency_ms" not in first
    assert first["cost_usd"] == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
    assert failed["tokens_in"] == 0 and failed["model"] == "gpt-4o-mini"
    assert end["errors"] == 1 and end["error_type"] == "TimeoutError"


def test_decorator_sync_and_nesting(captured: ListSink) -> None:
    @run(agent="Deco", strategy="S")
    def step(x: int) -> int:
        cur = current_run()
        assert cur is not None
        cur.alpha("ETH", "LONG", x)
        with run(agent="Inner") as inner:
            assert current_run() is inner
        assert current_run() is cur
        return x * 2

    assert step(2) == 4 and step(3) == 6
    assert current_run() is None
    flush()
    runs = by_run(captured.events)
    assert len(runs) == 4
    outer = [evs for evs in runs.values() if evs[0]["agent"] == "Deco"]
    inner = [evs for evs in runs.values() if evs[0]["agent"] == "Inner"]
    assert [e["score_final"] for evs in outer for e in evs if e["type"] == "alpha"] == [2, 3]
    assert {evs[-1]["parent_run_id"] for evs in inner} == {evs[0]["run_id"] for evs in outer}


def test_asyncio_tasks_keep_their_own_run(captured: ListSink) -> None:
    @run(agent="Async")
    async def agent(sym: str) -> str:
        await asyncio.sleep(0.01)
        cur = current_run()
        assert cur is not None
        cur.alpha(sym, "LONG")
        await asyncio.sleep(0.01)
        return cur.run_id

    async def main() -> list[str]:
        ids = list(await asyncio.gather(agent("BTC"), agent("ETH"), agent("SOL")))
        async with run(agent="Ctx") as r:
            await asyncio.sleep(0)
            r.alpha("XRP", "SHORT")
        with pytest.raises(KeyError):
            async with run(agent="Ctx"):
                raise KeyError("x")
        return ids

    ids = asyncio.run(main())
    flush()
    runs = by_run(captured.events)
    assert {runs[i][0]["symbol"] for i in ids} == {"BTC", "ETH", "SOL"}
    assert all(len(runs[i]) == 2 for i in ids)
    ctx = [evs for evs in runs.values() if evs[0]["agent"] == "Ctx"]
    assert [evs[-1]["errors"] for evs in ctx] == [0, 1]


def test_event_plan_keeps_store_sums_right(captured: ListSink) -> None:
    """Stored as events, a run's telemetry sums to its tokens and cost and to one wall latency."""
    with run(agent="A", strategy="S") as r:
        r.usage("gpt-4o", 1000, 100)
        r.usage("gpt-4o", 2000, 200, latency_ms=40.0)
        time.sleep(0.01)
    flush()
    s = Store(":memory:")
    rep, res = ingest_events(s, [prepare(e) for e in captured.events])
    assert rep.accepted == 3 and {x.status for x in res} == {"accepted"}
    tin, tout, cost, lat, n_lat, err = s.con.execute(
        "SELECT sum(tokens_in), sum(tokens_out), sum(cost_usd), sum(latency_ms), "
        "count(latency_ms), sum(errors) FROM telemetry WHERE run_id = ?", [r.run_id]
    ).fetchall()[0]
    assert (tin, tout, err, n_lat) == (3000, 300, 0, 1)
    assert cost == pytest.approx(3000 * 2.5e-6 + 300 * 1e-5)
    assert lat == pytest.approx(captured.events[-1]["latency_ms"]) and lat >= 10
    s.close()


def test_threads_sharing_a_run_get_distinct_event_ids(captured: ListSink) -> None:
    import threading

    with run(agent="A") as r:
        def work() -> None:
            for _ in range(500):
                r.usage("gpt-4o", 1, 1)

        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    flush()
    ids = [e["event_id"] for e in captured.events]
    assert len(ids) == 2001 and len(set(ids)) == 2001
