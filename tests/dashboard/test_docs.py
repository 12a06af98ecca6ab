"""The documents behind the pages, on a ledger small enough to compute every number by hand
(tests/dashboard/util.py describes it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.errors import InputError, NotFoundError
from alphatrace.server.dashboard import agent as agent_doc
from alphatrace.server.dashboard import decisions as decisions_doc
from alphatrace.server.dashboard import forensics as forensics_doc
from alphatrace.server.dashboard import overview as overview_doc
from alphatrace.server.dashboard import run as run_doc
from alphatrace.server.dashboard.params import RunFilter, sort_key
from alphatrace.store import Store
from tests.dashboard.util import EVIL_AGENT, EVIL_RUN, KILL_POLICY, T0, evaluate, make_store, source


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Store]:
    s = make_store(tmp_path / "small.duckdb")
    yield s
    s.close()


def ms(hours: float) -> int:
    return int((T0 + dt.timedelta(hours=hours)).replace(tzinfo=dt.UTC).timestamp() * 1000)


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_overview_numbers_by_hand(small: Store) -> None:
    doc = overview_doc.overview(source(small.con), small.con, RunFilter(), sort_key(None, None))
    a, b = by_name(doc["agents"])["A"], by_name(doc["agents"])["B"]
    # A: pnl 10, −30, −5, 20 bps at $1/bps, $0.50 cost each.
    assert (a["runs"], a["realized_runs"], a["hit_rate"]) == (4, 4, 0.5)
    assert a["mean_net_bps"] == pytest.approx((9.5 - 30.5 - 5.5 + 19.5) / 4)
    assert a["total_pnl_usd"] == pytest.approx(-5.0)
    assert a["total_cost_usd"] == pytest.approx(2.0)
    assert a["net_usd"] == pytest.approx(-7.0)
    # Confidence: 1 · 0.85 (−30 < −20) · 0.95 (−5 < 0) · 1.
    assert a["multiplier"] == pytest.approx(0.85 * 0.95)
    assert a["strategies"] == ["S1"] and a["state"] == "candidate" and a["last_decision"] is None
    # B: two −50 runs and an open one (no pnl, cost counted: in net_usd too, −100 − 3 · $1).
    assert (b["runs"], b["realized_runs"], b["hit_rate"]) == (3, 2, 0.0)
    assert b["total_cost_usd"] == pytest.approx(3.0) and b["net_usd"] == pytest.approx(-103.0)
    assert b["multiplier"] == pytest.approx(0.85 ** 2)
    # Default order: net_usd, highest first.
    assert [r["name"] for r in doc["agents"]] == [EVIL_AGENT, "A", "B"]
    assert [r["name"] for r in doc["strategies"]][1:] == ["S1", "S2"]
    assert by_name(doc["strategies"])["S2"]["agents"] == ["B"]
    assert doc["range"]["first"] == "2025-03-01T08:00:00.000000Z"


def test_overview_sizes_a_10k_signal_as_a_meta_agent_would(small: Store, tmp_path: Path
                                                             ) -> None:
    doc = overview_doc.overview(source(small.con), small.con, RunFilter(), sort_key(None, None))
    a, b = by_name(doc["agents"])["A"], by_name(doc["agents"])["B"]
    assert a["sizing_multiplier"] == pytest.approx(0.85 * 0.95)
    assert a["signal_size_usd"] == pytest.approx(10_000 * 0.85 * 0.95)
    assert b["signal_size_usd"] == pytest.approx(10_000 * 0.85 ** 2)
    assert by_name(doc["strategies"])["S1"]["signal_size_usd"] is None
    # B (−50, −50) and its strategy S2 are killed: nothing, though its confidence is 0.7225.
    evaluate(small, KILL_POLICY, tmp_path)
    doc = overview_doc.overview(source(small.con), small.con, RunFilter(),
                                sort_key("signal_size_usd", "desc"))
    b = by_name(doc["agents"])["B"]
    assert b["state"] == "killed" and b["multiplier"] == pytest.approx(0.85 ** 2)
    assert (b["sizing_multiplier"], b["signal_size_usd"]) == (0.0, 0.0)
    assert doc["agents"][-1]["name"] == "B"  # sorted by size, largest first


def test_overview_filters_and_sort(small: Store) -> None:
    src = source(small.con)
    since = overview_doc.overview(src, small.con, RunFilter.parse(None, "2025-03-01T10:00:00", None),
                                  sort_key("runs", "asc"))
    a = by_name(since["agents"])["A"]
    assert (a["runs"], a["net_usd"]) == (2, pytest.approx(-5.5 + 19.5))
    assert by_name(since["agents"])["B"]["hit_rate"] is None  # only its open run is left
    # until is exclusive; confidence is as of just before it.
    until = overview_doc.overview(src, small.con, RunFilter.parse(None, None, "2025-03-01T09:30:00"),
                                  sort_key(None, None))
    assert set(by_name(until["agents"])) == {"A", "B"}
    assert by_name(until["agents"])["A"]["net_usd"] == pytest.approx(9.5 - 30.5)
    assert by_name(until["agents"])["A"]["multiplier"] == pytest.approx(0.85)
    # A bare date as until means the end of that day.
    day = RunFilter.parse(None, "2025-03-01", "2025-03-01")
    assert day.until == dt.datetime(2025, 3, 2)
    strat = overview_doc.overview(src, small.con, RunFilter.parse("S1", None, None),
                                  sort_key(None, None))
    assert [r["name"] for r in strat["agents"]] == ["A"]
    assert [r["name"] for r in strat["strategies"]] == ["S1"]
    by_runs = overview_doc.overview(src, small.con, RunFilter(), sort_key("runs", "asc"))
    assert [r["name"] for r in by_runs["agents"]] == [EVIL_AGENT, "B", "A"]


@pytest.mark.parametrize(("args", "message"), [
    (("S1", "yesterday-ish", None), "since"),
    ((None, None, "nope"), "until"),
    ((None, "2025-03-02", "2025-03-01"), "must be after"),
])
def test_bad_filters_are_one_line_errors(args: tuple[Any, Any, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        RunFilter.parse(*args)


def test_bad_sort() -> None:
    with pytest.raises(InputError, match="sort"):
        sort_key("drop table", None)
    with pytest.raises(InputError, match="order"):
        sort_key("runs", "sideways")


def test_agent_series_every_run_when_few(small: Store) -> None:
    doc = agent_doc.agent(source(small.con), small.con, "A", 10)
    s = doc["series"]
    assert s["run_id"] == ["a1", "a2", "a3", "a4"]
    assert s["t"] == [ms(0), ms(1), ms(2), ms(3)]
    assert s["cum_pnl_bps"] == pytest.approx([10, -20, -25, -5])
    assert s["cum_pnl_usd"] == pytest.approx([10, -20, -25, -5])
    assert s["cum_net_usd"] == pytest.approx([9.5, -21, -26.5, -7])
    assert s["mean_latency_ms"] == pytest.approx([100, 200, 300, 400])
    assert s["tokens_per_run"] == pytest.approx([11, 22, 33, 44])
    assert s["cost_per_run"] == pytest.approx([0.5] * 4)
    assert doc["confidence"]["multiplier"] == pytest.approx([1.0, 0.85, 0.85 * 0.95, 0.85 * 0.95])
    assert doc["summary"]["runs"] == 4 and doc["summary"]["max_losing_streak"] == 2
    assert [r["run_id"] for r in doc["runs"]["recent"]] == ["a4", "a3", "a2", "a1"]
    assert [r["run_id"] for r in doc["runs"]["worst"]][:2] == ["a2", "a3"]
    assert doc["changepoints_status"] == "ready" and doc["changepoints"] == []


def test_agent_series_buckets(small: Store) -> None:
    small.con.register("rows_a", agent_doc.agent_rows(small.con, "A"))
    s = agent_doc.run_series(small.con, "rows_a", 2)  # runs 1-2 and 3-4
    assert s["n"] == [2, 2] and s["run_id"] == ["a2", "a4"] and s["t"] == [ms(1), ms(3)]
    assert s["cum_pnl_bps"] == pytest.approx([-20, -5])
    assert s["cum_net_usd"] == pytest.approx([-21, -7])
    assert s["mean_latency_ms"] == pytest.approx([150, 350])
    assert s["tokens_per_run"] == pytest.approx([16.5, 38.5])


@given(st.integers(min_value=0, max_value=400), st.integers(min_value=1, max_value=60))
def test_bucket_last_matches_a_plain_grouping(n: int, points: int) -> None:
    got = agent_doc.bucket_last(n, points).tolist()
    last: dict[int, int] = {}
    for i in range(n):
        last[i * points // n] = i
    assert got == sorted(last.values())
    assert len(got) == min(n, points)


def test_agent_marks_and_decisions(small: Store, tmp_path: Path) -> None:
    evaluate(small, KILL_POLICY, tmp_path)
    doc = agent_doc.agent(source(small.con), small.con, "B", 100)
    assert doc["summary"]["state"] == "killed"
    assert doc["marks"] == [{"t": ms(4), "action": "kill", "rule": "kill_losses", "seq": 3,
                             "as_of": "2025-03-01T12:00:00.000000Z"}]
    assert [(d["action"], d["runs"]) for d in doc["decisions"]] == [("kill", 2)]
    assert agent_doc.agent(source(small.con), small.con, "A", 100)["marks"] == []  # hold


def test_unknown_agent(small: Store) -> None:
    with pytest.raises(NotFoundError, match="no agent"):
        agent_doc.agent(source(small.con), small.con, "nobody", 100)


def test_run_document(small: Store) -> None:
    doc = run_doc.run(source(small.con), small.con, "a1")
    assert [e["event_id"] for e in doc["events"]] == ["a1-t", "a1-a"]
    wf = {w["step"]: w["usd"] for w in doc["explain"]["waterfall"]}
    # gross 20 bps, fees −10, no funding, $0.50 inference on $10,000: net $9.50.
    assert wf["gross_move"] == pytest.approx(20) and wf["fees"] == pytest.approx(-10)
    assert wf["inference_cost"] == pytest.approx(-0.5) and wf["net"] == pytest.approx(9.5)
    assert doc["agent"] == "A" and doc["ledger"]["run_id"] == "a1"
    only_events = run_doc.run(source(small.con), small.con, "e1")
    assert only_events["explain"] is None and "no ledger row" in only_events["note"]
    with pytest.raises(NotFoundError):
        run_doc.run(source(small.con), small.con, "a1' OR '1'='1")


def test_decisions_verdicts(small: Store, tmp_path: Path) -> None:
    evaluate(small, KILL_POLICY, tmp_path)
    doc = decisions_doc.decisions(source(small.con), small.con, 200, 0)
    assert doc["verify"] == {"ok": True, "records": 6, "head": doc["verify"]["head"], "problems": 0}
    assert [r["seq"] for r in doc["records"]] == [6, 5, 4, 3, 2, 1]
    assert {r["status"] for r in doc["records"]} == {"ok"}
    small.con.execute("UPDATE decisions SET action = 'promote' WHERE seq = 3")
    tampered = decisions_doc.decisions(source(small.con), small.con, 2, 2)
    assert tampered["verify"]["ok"] is False
    assert [(r["seq"], r["status"]) for r in tampered["records"]] == [(4, "ok"), (3, "edited")]
    assert tampered["total"] == 6


def test_forensics_sample_and_membership(small: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    src = source(small.con)
    fake = {"runs": 7, "target": "realized_pnl_bps", "search": {}, "findings": ["f"],
            "changepoints": [],
            "clusters": [{"predicates": [{"feature": "latency_ms", "op": ">", "value": 500,
                                          "text": "latency_ms > 500"}],
                          "sentence": "s", "runs": 2, "share": 2 / 7, "mean_in_bps": -50,
                          "mean_out_bps": 0, "loss_share": 0.7, "q": 0.01, "p": 0.001,
                          "score": 1.0, "run_ids": ["b1", "b2", "gone"]}]}
    monkeypatch.setattr(src, "forensics", lambda *a, **k: fake)
    doc = forensics_doc.forensics(src, small.con, None, None, None, None, None, 100)
    sc = doc["scatter"]
    # Every realized run (b3 is open), in (ts, run_id) order.
    assert sc["run_id"] == ["a1", "b1", "a2", "b2", "a3", "a4", EVIL_RUN]
    assert sc["of_runs"] == 7 and sc["points"] == 7
    assert sc["values"]["latency_ms"] == [100, 1000, 200, 1000, 300, 400, 50]
    c = doc["clusters"][0]
    assert c["members"] == [1, 3] and c["examples"] == ["b1", "b2"] and "run_ids" not in c
    assert (sc["x"], sc["y"], doc["selected"]) == ("latency_ms", "cost_usd", 1)
    capped = forensics_doc.forensics(src, small.con, None, None, "tokens_in", None, None, 3)
    ids = capped["scatter"]["run_id"]
    assert len(ids) == 3 and set(ids) <= set(sc["run_id"])
    assert ids == [r for r in sc["run_id"] if r in ids]  # still in time order
    assert capped["scatter"]["x"] == "tokens_in" and capped["scatter"]["y"] == "latency_ms"
    with pytest.raises(InputError, match="cluster 2"):
        forensics_doc.forensics(src, small.con, None, None, None, None, 2, 100)


def test_forensics_population_honours_filters(small: Store) -> None:
    total, cols = forensics_doc.sample(small.con, "B", None, 100)
    assert total == 2 and cols["run_id"] == ["b1", "b2"]
    total, _ = forensics_doc.sample(small.con, None, "S1", 100)
    assert total == 4


@pytest.mark.slow
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
                          st.text(alphabet="ab1_", min_size=1, max_size=3),
                          st.one_of(st.none(), st.sampled_from([-2.0, -1.0, 0.0, 3.5]))),
                max_size=30, unique_by=lambda r: r[1]),
       st.integers(min_value=1, max_value=12))
def test_agent_rows_and_picked_runs_match_sql_order(
        runs: list[tuple[int | None, str, float | None]], k: int) -> None:
    """Whatever the ties and NULLs, the page's runs come in the order a plain Python sort
    gives (timestamp, NULLs last, then run_id), and its recent and worst lists are the ones
    SQL's ORDER BY ... LIMIT picks."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE ledger (agent VARCHAR, run_id VARCHAR, ts TIMESTAMP, "
                "realized_pnl_bps DOUBLE, pnl_usd DOUBLE, net_usd DOUBLE, net_bps DOUBLE, "
                "latency_ms DOUBLE, tokens_in BIGINT, tokens_out BIGINT, cost_usd DOUBLE, "
                "errors INTEGER, symbols VARCHAR, direction VARCHAR, status VARCHAR)")
    for minute, run_id, net in runs:
        ts = None if minute is None else T0 + dt.timedelta(minutes=minute)
        con.execute("INSERT INTO ledger (agent, run_id, ts, net_usd) VALUES ('A', ?, ?, ?)",
                    [run_id, ts, net])
    rows = agent_doc.agent_rows(con, "A")
    ids = rows.column("run_id").to_pylist()
    assert ids == [r for _, r, _ in sorted(runs, key=lambda x: (x[0] is None, x[0] or 0, x[1]))]

    def sql(order: str) -> list[str]:
        return [r[0] for r in con.execute(
            f"SELECT run_id FROM ledger ORDER BY {order} LIMIT {k}").fetchall()]

    assert [ids[i] for i in agent_doc.recent_positions(rows, k)] == \
        sql("ts DESC NULLS LAST, run_id DESC")
    assert [ids[i] for i in agent_doc.worst_positions(rows, k)] == \
        sql("net_usd ASC NULLS LAST, ts, run_id")
    picked = agent_doc.runs_at(con, "A", rows, {"worst": agent_doc.worst_positions(rows, k)})
    assert [r["run_id"] for r in picked["worst"]] == sql("net_usd ASC NULLS LAST, ts, run_id")


def test_agent_page_says_when_confidence_collapsed(small: Store, tmp_path: Path) -> None:
    """B's two losses under a ×0.001 rule leave 1e-6 = 0.0001 %: the page shows "< 0.01 %" and
    one line naming recovery and floor; A under the default policy (80.75 %) gets no line."""
    import contextlib

    from alphatrace.server.dashboard import views
    from alphatrace.server.dashboard.links import Links
    from alphatrace.server.dashboard.source import Source

    harsh = tmp_path / "harsh.yaml"
    harsh.write_text('confidence:\n  rules:\n    - {when: "pnl < 0", factor: 0.001}\n')

    @contextlib.contextmanager
    def connect() -> Iterator[Any]:
        yield small.con

    src = Source(connect, policy=harsh, wait_s=None, side_wait_s=None)
    doc = agent_doc.agent(src, small.con, "B", 100)
    assert doc["summary"]["multiplier"] == pytest.approx(1e-6)
    note = doc["summary"]["confidence_note"]
    assert note.startswith("B under 1 %") and "recovery" in note and "floor" in note
    page = str(views.agent_page(doc, Links()))
    assert "&lt; 0.01 %" in page and note.split(":")[0] in page
    calm = agent_doc.agent(source(small.con), small.con, "A", 100)
    assert calm["summary"]["confidence_note"] is None
    assert "80.8 %" in str(views.agent_page(calm, Links()))
