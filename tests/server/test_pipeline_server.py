"""The live pipeline in a real `alphatrace serve` on loopback: live equals batch over random
batchings, a kill -9 mid-stream loses and double-counts nothing, the flags and /healthz."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.governance import journal
from alphatrace.governance.api import Gates
from alphatrace.ledger.reconcile import reconcile
from alphatrace.server.pipeline import PipelineConfig
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.policies import SEED, SEED_FLAG
from tests.server.conftest import Server, start_server
from tests.server.test_pipeline import T0, bars, run_events

# Agents whose lifecycle does not depend on when the gates were evaluated (a loser is killed
# from its 5th run on, a winner promoted, a flat one stays a candidate; Mixed loses more than
# it wins and is killed by the end in any case), so every batching must end the same.
EVENTS = [e for i in range(7) for e in
          run_events("Loser", i, "SHORT") + run_events("Winner", i, "LONG")
          + run_events("Mixed", i, "LONG" if i % 2 else "SHORT")
          + run_events("Idle", i, "FLAT")]


def final_state(db: Path) -> dict[str, Any]:
    """Ledger rows, confidence multipliers, lifecycle and event counts of a closed store."""
    with at.connect(db) as d:
        con = d.store.con
        return {
            "ledger": con.execute("SELECT * FROM ledger ORDER BY run_id").fetchall(),
            "confidence": d.confidence().select(["agent", "multiplier", "runs", "state"]
                                                ).to_pylist(),
            "events": con.execute("SELECT (SELECT count(*) FROM alpha), "
                                  "(SELECT count(*) FROM telemetry)").fetchall(),
        }


def batch_end(db: Path, events: list[dict[str, Any]],
              markets: list[Callable[[Store], None]]) -> dict[str, Any]:
    """Batch: `ingest` + `reconcile` + `gates evaluate` on a fresh store holding `markets`, all
    at once; the agents end as their story says."""
    cfg = PipelineConfig.load(SEED)
    with Store(db) as store:
        for market in markets:
            market(store)
        ingest_events(store, events)
        reconcile(store, cfg.reconcile)
        Gates(store).evaluate(cfg.governance)
    state = final_state(db)
    assert {(c["agent"], c["state"]) for c in state["confidence"]} == {
        ("Loser", "killed"), ("Winner", "promoted"), ("Mixed", "killed"), ("Idle", "candidate")}
    return state


@pytest.fixture(scope="module")
def batch_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return batch_end(tmp_path_factory.mktemp("batch") / "batch.duckdb", EVENTS, [bars])


def post(srv: Server, events: list[dict[str, Any]]) -> None:
    res = httpx.post(srv.url + "/v1/events", json=events, headers=srv.auth("ingest"),
                     timeout=60)
    assert res.status_code == 200, res.text


def _after_a_pass(url: str) -> dict[str, Any]:
    """The pipeline's health once a pass has ended: an answered request means its round
    committed, and the pass after it runs on its own thread, so it may not have ended yet.
    The wait is bounded only to stop a hung test; the assertion is on what the pass did."""
    deadline = time.monotonic() + 300
    while True:
        health: dict[str, Any] = httpx.get(url + "/healthz").json()["pipeline"]
        if health["passes"] >= 1 or health["last_error"] is not None or \
                time.monotonic() > deadline:
            return health
        time.sleep(0.05)


@pytest.mark.slow
@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, len(EVENTS) - 1), max_size=12, unique=True),
       parallel=st.booleans())
def test_live_equals_batch_in_any_batching(tmp_path_factory: pytest.TempPathFactory,
                                           batch_state: dict[str, Any], cuts: list[int],
                                           parallel: bool) -> None:
    bounds = [0, *sorted(cuts), len(EVENTS)]
    batches = [EVENTS[a:b] for a, b in pairwise(bounds)]
    srv = start_server(tmp_path_factory.mktemp("live"), *SEED_FLAG, prepare=bars)
    try:
        if parallel:  # concurrent requests: rounds merge, passes coalesce
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda b: post(srv, b), batches))
        else:
            for b in batches:
                post(srv, b)
        health = _after_a_pass(srv.url)
        assert health["last_error"] is None and health["passes"] >= 1
    finally:
        srv.stop()  # the writer finishes its queue and the pass after the last round first
    assert final_state(srv.db) == batch_state


def test_runs_that_arrive_after_later_runs_were_judged_count(
        tmp_path: Path, batch_state: dict[str, Any]) -> None:
    """Runs 5 and 6 of every agent arrive first and are judged (2 runs: inconclusive); then
    runs 0-4 arrive, known before the agents' marks. Batch on all of them kills Loser and
    Mixed and promotes Winner; so must the store that saw them in two parts."""
    late = {f"{a}-{i}" for a in ("Loser", "Winner", "Mixed", "Idle") for i in (5, 6)}
    cfg = PipelineConfig.load(SEED)
    db = tmp_path / "late.duckdb"
    seqs = []
    with Store(db) as store:
        bars(store)
        for part in ([e for e in EVENTS if e["run_id"] in late],
                     [e for e in EVENTS if e["run_id"] not in late]):
            ingest_events(store, part)
            reconcile(store, cfg.reconcile)
            Gates(store).evaluate(cfg.governance)
            seqs.append(store.con.execute("SELECT max(seq) FROM decisions").fetchall()[0][0])
    assert final_state(db) == batch_state
    first = seqs[0]
    assert seqs[1] > first  # the second part was judged
    with at.connect(db) as d:
        problems = d.audit_verify()["problems"]
    # The audit re-decides the judgements at the marks as recorded; those made before the
    # late runs came now see more runs known by their as-of, and it says so.
    assert problems and {p["kind"] for p in problems} == {"inputs_changed"}
    assert max(p["seq"] for p in problems) <= first


def test_late_runs_found_by_0022_are_kept_through_the_upgrade_to_0023(
        tmp_path: Path, batch_state: dict[str, Any]) -> None:
    """A store left by 0022's code: its last catch-up saw the files of runs 5 and 6
    (`gate_files`), then runs 0-4 arrived and were reconciled. Migration 0023 carries those
    runs over as changed, so the first catch-up after the upgrade judges them at the marks."""
    late = {f"{a}-{i}" for a in ("Loser", "Winner", "Mixed", "Idle") for i in (5, 6)}
    cfg = PipelineConfig.load(SEED)
    db = tmp_path / "old.duckdb"
    with Store(db) as store:
        bars(store)
        ingest_events(store, [e for e in EVENTS if e["run_id"] in late])
        reconcile(store, cfg.reconcile)
        Gates(store).evaluate(cfg.governance)
        seen = store.con.execute("SELECT max(file_id) FROM ingested_files").fetchall()[0][0]
        ingest_events(store, [e for e in EVENTS if e["run_id"] not in late])
        reconcile(store, cfg.reconcile)
        # as 0022 left it: its mark, none of 0023's tables
        store.con.execute("DROP TABLE ledger_changes; DROP TABLE gate_seen; "
                          "CREATE TABLE gate_files (seen BIGINT NOT NULL); "
                          "DELETE FROM schema_migrations WHERE version IN (23, 28)")
        store.con.execute("INSERT INTO gate_files VALUES (?)", [seen])
    with Store(db) as store:  # migrated
        assert store.con.execute("SELECT DISTINCT seq FROM ledger_changes").fetchall() == [(2,)]
        assert {r for (r,) in store.con.execute("SELECT run_id FROM ledger_changes").fetchall()
                } == {e["run_id"] for e in EVENTS} - late
        Gates(store).evaluate(cfg.governance)
    assert final_state(db) == batch_state


# The same runs, with runs 0-4 of every agent on ETH: their exit bars (all of ETH's) can arrive
# after runs 5 and 6 (on BTC) were judged, with no new event at all.
ON_ETH = [{**e, "symbol": "ETH"} if e["type"] == "alpha" and int(e["run_id"].rsplit("-")[1]) < 5
          else e for e in EVENTS]


def eth_rows(hours: int = 200) -> list[dict[str, Any]]:
    """ETHUSDT 1h bars moving as BTCUSDT's (`bars`): a run prices the same on either."""
    t0 = int(T0.replace(tzinfo=dt.UTC).timestamp() * 1000)
    return [{"symbol": "ETHUSDT", "ts": t0 + h * 3_600_000, "open": 100.0 * 1.01 ** h,
             "high": 100.0 * 1.01 ** h, "low": 100.0 * 1.01 ** h, "close": 100.0 * 1.01 ** h,
             "volume": 1.0} for h in range(hours)]


def eth_bars(store: Store) -> None:
    store.con.executemany(
        "INSERT INTO bars (symbol, interval_s, ts, open) VALUES ('ETHUSDT', 3600, ?, ?)",
        [(T0 + dt.timedelta(hours=h), 100.0 * 1.01 ** h) for h in range(200)])


@pytest.fixture(scope="module")
def eth_batch_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Batch on everything at once: both markets, every event, one reconcile and catch-up."""
    return batch_end(tmp_path_factory.mktemp("eth_batch") / "batch.duckdb", ON_ETH,
                     [bars, eth_bars])


def test_runs_priced_by_market_data_after_later_runs_were_judged_count(
        tmp_path: Path, eth_batch_state: dict[str, Any]) -> None:
    """Every event arrives first, but only BTC has bars: runs 5 and 6 are judged (2 runs:
    inconclusive) and runs 0-4 stay unpriced. Then ETH's bars arrive, and nothing else: runs
    0-4 are priced, known before the agents' marks. The store that saw the market in two parts
    ends as batch on everything (Loser and Mixed killed, Winner promoted)."""
    cfg = PipelineConfig.load(SEED)
    db = tmp_path / "late.duckdb"
    with Store(db) as store:
        bars(store)
        ingest_events(store, ON_ETH)
        reconcile(store, cfg.reconcile)
        Gates(store).evaluate(cfg.governance)
        assert set(journal.lifecycle_states(store.con).values()) == {"candidate"}
        files = store.con.execute("SELECT count(*) FROM ingested_files").fetchall()
        eth_bars(store)
        reconcile(store, cfg.reconcile)
        Gates(store).evaluate(cfg.governance)
        assert store.con.execute("SELECT count(*) FROM ingested_files").fetchall() == files
    assert final_state(db) == eth_batch_state


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, len(ON_ETH) - 1), max_size=5, unique=True),
       market=st.integers(0, 6))
def test_any_batching_with_the_market_arriving_anywhere_ends_as_batch(
        tmp_path_factory: pytest.TempPathFactory, eth_batch_state: dict[str, Any],
        cuts: list[int], market: int) -> None:
    """The events in random batches, ETH's bars before the `market`-th of them (or after the
    last), each batch reconciled and judged (`ingest`, `reconcile`, `gates evaluate`): batch's end."""
    cfg = PipelineConfig.load(SEED)
    bounds = [0, *sorted(cuts), len(ON_ETH)]
    db = tmp_path_factory.mktemp("eth_any") / "s.duckdb"
    with Store(db) as store:
        bars(store)
        for k, (a, b) in enumerate(pairwise(bounds)):
            if k == market:
                eth_bars(store)
            ingest_events(store, ON_ETH[a:b])
            reconcile(store, cfg.reconcile)
            Gates(store).evaluate(cfg.governance)
        if market >= len(bounds) - 1:  # after the last batch
            eth_bars(store)
            reconcile(store, cfg.reconcile)
            Gates(store).evaluate(cfg.governance)
    assert final_state(db) == eth_batch_state


def test_exit_bars_posted_to_the_server_after_later_runs_were_judged_count(
        tmp_path: Path, eth_batch_state: dict[str, Any]) -> None:
    """The same through `alphatrace serve`: the events, then ETH's bars on /v1/market/bars;
    the live pipeline's passes end as batch."""
    srv = start_server(tmp_path, *SEED_FLAG, prepare=bars)
    try:
        post(srv, ON_ETH)
        res = httpx.post(srv.url + "/v1/market/bars", params={"interval": "1h"},
                         json=eth_rows(), headers=srv.auth("ingest"), timeout=60)
        assert res.status_code == 200, res.text
    finally:
        srv.stop()
    assert final_state(srv.db) == eth_batch_state


def test_kill_9_mid_stream_then_restart_ends_as_without_a_crash(
        tmp_path: Path, batch_state: dict[str, Any]) -> None:
    """The client resends every batch it got no answer for (at-least-once, fixed event ids):
    events are not lost or counted twice, and the restarted pipeline catches up."""
    batches = [EVENTS[k:k + 4] for k in range(0, len(EVENTS), 4)]
    srv = start_server(tmp_path, *SEED_FLAG, prepare=bars)
    sent = 0
    try:
        with ThreadPoolExecutor(1) as pool:
            for i, b in enumerate(batches):
                if i == len(batches) // 2:
                    # the kill lands while this batch is in flight (or just before it)
                    fut = pool.submit(post, srv, b)
                    srv.proc.kill()
                    srv.proc.wait(30)
                    try:
                        fut.result()
                        sent += 1  # answered before the kill: committed
                    except (httpx.TransportError, AssertionError):
                        pass
                    break
                post(srv, b)
                sent += 1
    finally:
        srv.stop()
    again = start_server(tmp_path, *SEED_FLAG, keys=False)
    again.keys = srv.keys
    try:
        for b in batches[sent:]:
            post(again, b)
        # a resend of what was committed is a duplicate, never a second copy
        post(again, batches[0])
    finally:
        again.stop()
    assert final_state(srv.db) == batch_state


def test_health_reports_the_pipeline_and_no_pipeline_turns_it_off(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    srv = start_server(tmp_path / "on", prepare=bars)
    try:
        post(srv, run_events("A", 0, "LONG"))
        health = httpx.get(srv.url + "/healthz").json()["pipeline"]
        assert health["policy"] == "<default policy default.yaml>"
        assert health["failures"] == 0 and health["last_error"] is None
    finally:
        srv.stop()
    (tmp_path / "off").mkdir()
    off = start_server(tmp_path / "off", "--no-pipeline")
    try:
        post(off, run_events("A", 0, "LONG"))
        assert httpx.get(off.url + "/healthz").json()["pipeline"] is None
    finally:
        off.stop()
    with Store(off.db) as store:  # events stored, nothing derived
        assert store.con.execute("SELECT count(*) FROM ledger").fetchall() == [(0,)]


def test_serve_with_a_bad_policy_exits_2_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("gates:\n  min_runz: 3\n")
    res = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "serve", "--db",
                          str(tmp_path / "s.duckdb"), "--port", "0", "--policy", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert str(bad) in res.stderr and "min_runz" in res.stderr


def test_a_cli_ingest_through_the_server_is_reconciled_at_once(tmp_path: Path) -> None:
    srv = start_server(tmp_path, prepare=bars)
    try:
        (tmp_path / "runs.jsonl").write_text(
            "\n".join(json.dumps(e) for e in run_events("Cli", 0, "LONG")) + "\n")
        res = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "ingest",
                              "runs.jsonl", "--db", str(srv.db)], cwd=tmp_path,
                             capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr
        row = None
        deadline = time.monotonic() + 30
        while row is None and time.monotonic() < deadline:  # no further HTTP round comes
            row = httpx.get(srv.url + "/v1/runs/Cli-0", headers=srv.auth("read")).json()[
                "ledger"]
            time.sleep(0.1)
        assert row is not None and row["status"] == "realized"
    finally:
        srv.stop()
