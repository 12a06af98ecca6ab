"""GET /metrics: Prometheus text that parses, counters equal to the store's own counts, the
round histogram equal to the writer's rounds, scrape-time gauges, and who may read it."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from concurrent.futures import Future
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.server.metrics import (
    StoreCollector,
    pending_notifications,
    pipeline_lag_s,
    store_lag_s,
)
from alphatrace.server.metrics_routes import is_loopback
from alphatrace.store import Store
from tests.server.conftest import start_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

SPAN_OK = "0af7651916cd43dd8448eb211c80319c"


def scrape(text: str) -> Samples:
    """Every sample of a /metrics body, keyed by (name, sorted labels)."""
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def events(samples: Samples) -> dict[tuple[str, str, str], float]:
    """alphatrace_events_total as {(source, kind, status): n}."""
    out = {}
    for (name, labels), v in samples.items():
        if name == "alphatrace_events_total":
            d = dict(labels)
            out[(d["source"], d["kind"], d["status"])] = v
    return out


def http_batch(run: str) -> list[dict[str, Any]]:
    """3 accepted (telemetry, alpha, pnl), 2 rejected (alpha: bad direction; telemetry:
    negative tokens)."""
    return [
        {"type": "telemetry", "run_id": run, "agent": "M", "ts": "2025-03-01T08:00:00Z",
         "tokens_in": 10, "event_id": f"{run}:1"},
        {"type": "alpha", "run_id": run, "agent": "M", "symbol": "BTC", "direction": "short",
         "ts": "2025-03-01T08:00:01Z", "event_id": f"{run}:2"},
        {"type": "alpha", "run_id": run, "agent": "M", "symbol": "BTC", "direction": "UP"},
        {"run_id": run, "realized_pnl_bps": 12.5, "event_id": f"{run}:3"},
        {"type": "telemetry", "run_id": run, "agent": "M", "tokens_in": -3},
    ]


def otlp_doc(good: bool = True, bad: bool = True) -> dict[str, Any]:
    """One span without a trace id (rejected by the mapping) and one good span."""
    spans = []
    if bad:
        spans.append({"traceId": "", "spanId": "00f067aa0ba902b7"})
    if good:
        spans.append({"traceId": SPAN_OK, "spanId": "00f067aa0ba902b7",
                      "startTimeUnixNano": "1740816000000000000",
                      "endTimeUnixNano": "1740816001000000000",
                      "attributes": [{"key": "gen_ai.usage.prompt_tokens",
                                      "value": {"intValue": "7"}}]})
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "otlp-agent"}}]},
        "scopeSpans": [{"spans": spans}]}]}


def store_counts(db: Path) -> dict[tuple[str, str, str], float]:
    """The same numbers from the store alone: stored events per kind and the path their
    ingest call recorded, duplicates per ingest call, quarantine rows per path and kind."""
    out: dict[tuple[str, str, str], float] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for kind in ("telemetry", "alpha", "pnl"):
            for path, n in con.execute(
                f"SELECT f.path, count(*) FROM {kind} e JOIN ingested_files f USING (file_id) "
                "GROUP BY f.path").fetchall():
                out[(path.strip("<>"), kind, "accepted")] = n
        for path, n in con.execute(
                "SELECT path, sum(duplicates) FROM ingested_files GROUP BY path "
                "HAVING sum(duplicates) > 0").fetchall():
            out[(path.strip("<>"), "telemetry", "duplicate")] = n  # only telemetry is re-sent
        for path, kind, n in con.execute(
                "SELECT path, kind, count(*) FROM quarantine GROUP BY path, kind").fetchall():
            out[(path.strip("<>"), kind, "rejected")] = n
    return out


def test_counters_match_the_store_over_http_and_otlp(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        run = f"m-{uuid.uuid4()}"
        with httpx.Client(base_url=srv.url, timeout=30, headers=srv.auth("ingest")) as c:
            assert c.post("/v1/events", json=http_batch(run)).status_code == 207
            # the good telemetry event again: a duplicate
            assert c.post("/v1/events", json=http_batch(run)[:1]).json()["duplicates"] == 1
            assert c.post("/v1/traces", json=otlp_doc()).status_code == 200
            assert c.post("/v1/traces", json=otlp_doc(bad=False)).status_code == 200  # retry
            rounds = 4  # sequential requests with at least one event: one round each
            body = c.get("/metrics").text  # loopback: no key needed (the ingest key is ignored)
        got = events(scrape(body))
        # By hand from the requests above.
        assert got == {
            ("http", "telemetry", "accepted"): 1, ("http", "alpha", "accepted"): 1,
            ("http", "pnl", "accepted"): 1, ("http", "alpha", "rejected"): 1,
            ("http", "telemetry", "rejected"): 1, ("http", "telemetry", "duplicate"): 1,
            ("otlp", "telemetry", "accepted"): 1, ("otlp", "telemetry", "rejected"): 1,
            ("otlp", "telemetry", "duplicate"): 1,
        }
        samples = scrape(body)
        assert samples[("alphatrace_ingest_round_seconds_count", ())] == rounds
        assert samples[("alphatrace_ingest_round_seconds_bucket", (("le", "+Inf"),))] == rounds
        assert samples[("alphatrace_open_legs", ())] == 0
    finally:
        srv.stop()
    assert store_counts(srv.db) == got


def test_non_loopback_bind_needs_a_read_key(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--host", "0.0.0.0")
    try:
        assert httpx.get(srv.url + "/metrics").status_code == 401
        assert httpx.get(srv.url + "/metrics", headers=srv.auth("ingest")).status_code == 403
        ok = httpx.get(srv.url + "/metrics", headers=srv.auth("read"))
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        assert ("alphatrace_ingest_round_seconds_count", ()) in scrape(ok.text)
        assert httpx.get(srv.url + "/healthz").json().keys() == {
            "status", "version", "pending_events", "pipeline_lag_s", "pending_notifications",
            "pipeline"}
    finally:
        srv.stop()


def keyed_store(db: Path) -> dict[str, str]:
    with Store(db) as store:
        return {s: create_key(store, f"k-{s}", s)["key"] for s in ("ingest", "read")}


def test_auth_rule_follows_metrics_public(tmp_path: Path) -> None:
    keys = keyed_store(tmp_path / "a.duckdb")
    with TestClient(create_app(tmp_path / "a.duckdb", warn_without_keys=False)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/metrics", headers={
            "Authorization": f"Bearer {keys['ingest']}"}).status_code == 403
        assert c.get("/metrics", headers={
            "Authorization": f"Bearer {keys['read']}"}).status_code == 200
    with TestClient(create_app(tmp_path / "a.duckdb", metrics_public=True)) as c:
        assert c.get("/metrics").status_code == 200


def test_round_histogram_counts_the_writers_rounds(tmp_path: Path) -> None:
    keys = keyed_store(tmp_path / "r.duckdb")
    app = create_app(tmp_path / "r.duckdb", metrics_public=True, linger_s=0.0)
    auth = {"Authorization": f"Bearer {keys['ingest']}"}
    with TestClient(app) as c:
        for i in range(5):
            run = f"r{i}"
            c.post("/v1/events", json=http_batch(run)[: i + 1], headers=auth)
        samples = scrape(c.get("/metrics").text)
        rounds = app.state.writer.stats.rounds
    assert rounds >= 5
    assert samples[("alphatrace_ingest_round_seconds_count", ())] == rounds
    # 1+2+3+4+5 events answered, of which the 3rd and 5th of a batch are rejected
    assert sum(events(samples).values()) == 15


def test_pipeline_passes_are_counted(tmp_path: Path) -> None:
    """The app's live pipeline reports each pass: after a sync, the histogram counts every
    pass the pipeline made (the one at start included)."""
    from alphatrace.server.pipeline import PipelineConfig
    from tests.policies import SEED

    keys = keyed_store(tmp_path / "p.duckdb")
    app = create_app(tmp_path / "p.duckdb", metrics_public=True,
                     pipeline=PipelineConfig.load(SEED))
    with TestClient(app) as c:
        for i in range(3):
            c.post("/v1/events", json=http_batch(f"p{i}")[:4],
                   headers={"Authorization": f"Bearer {keys['ingest']}"})
            app.state.writer.sync().result(60)
        samples = scrape(c.get("/metrics").text)
        passes = app.state.pipeline.passes
    assert passes >= 2  # the one at start, and at least one after the events
    assert samples[("alphatrace_pipeline_pass_seconds_count", (("stage", "total"),))] == passes
    assert samples[("alphatrace_pipeline_catch_up_seconds_count", ())] == passes
    assert samples[("alphatrace_pipeline_pass_failures_total", ())] == 0


def test_open_legs_and_decisions_are_read_at_scrape_time(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    with Store(db) as store:
        for i, status in enumerate(["open", "open", "realized", "unpriced", "open"]):
            store.con.execute("INSERT INTO legs (event_id, run_id, status, policy_hash) "
                              "VALUES (?, 'r', ?, 'p')", [f"e{i}", status])
        for seq, action in enumerate(["kill", "promote", "kill", "hold"], start=1):
            store.con.execute(
                "INSERT INTO decisions (seq, eval_id, subject, scope, action, fired, blocked, "
                "state, metrics, run_ids, prev_hash, hash) "
                "VALUES (?, 1, 'a', 'agent', ?, '[]', false, 'x', '{}', '[]', '', '')",
                [seq, action])
    app = create_app(db, metrics_public=True)
    with TestClient(app) as c:
        samples = scrape(c.get("/metrics").text)
        assert samples[("alphatrace_open_legs", ())] == 3
        assert {dict(k[1])["action"]: v for k, v in samples.items()
                if k[0] == "alphatrace_decisions_total"} == {"kill": 2, "promote": 1, "hold": 1}
        app.state.writer.submit_call(lambda s: s.con.execute(
            "UPDATE legs SET status = 'realized' WHERE event_id = 'e0'")).result()
        again = scrape(c.get("/metrics").text)
        assert again[("alphatrace_open_legs", ())] == 2  # read now, not cached


def test_store_gauges_skip_missing_tables() -> None:
    with duckdb.connect() as con:
        lag = "alphatrace_pipeline_lag_seconds"  # always there: 0 without events
        fams = list(StoreCollector(lambda: nullcontext(con)).collect())
        assert [(f.name, f.samples[0].value) for f in fams] == [(lag, 0.0)]
        con.execute("CREATE TABLE legs (status VARCHAR)")
        fams = list(StoreCollector(lambda: nullcontext(con)).collect())
        assert [f.name for f in fams] == ["alphatrace_open_legs", lag]
        assert fams[0].samples[0].value == 0


def test_pipeline_lag_from_the_store_is_the_age_of_the_oldest_file_not_reconciled() -> None:
    with Store(":memory:") as store:
        con = store.con
        assert store_lag_s(con) == 0.0  # nothing ingested
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for fid, age_s in ((1, 3600.0), (2, 600.0), (3, 60.0)):
            con.execute("INSERT INTO ingested_files (file_id, path, ingested_at) VALUES (?, 'f', ?)",
                        [fid, now - dt.timedelta(seconds=age_s)])
        assert store_lag_s(con) == pytest.approx(3600.0, abs=30)  # no reconcile yet
        con.execute("INSERT INTO reconcile_log (seq, policy_hash, max_file_id) VALUES (1, 'p', 1)")
        assert store_lag_s(con) == pytest.approx(600.0, abs=30)  # file 1 covered, 2 waits
        con.execute("INSERT INTO reconcile_log (seq, policy_hash, max_file_id) VALUES (2, 'p', 3)")
        assert store_lag_s(con) == 0.0

    class Reports:
        lag_s = 1.25

    assert pipeline_lag_s(Reports(), lambda: nullcontext(None)) == 1.25  # type: ignore[arg-type]


def test_pending_notifications_once_the_outbox_exists() -> None:
    with duckdb.connect() as con:
        def read() -> nullcontext[duckdb.DuckDBPyConnection]:
            return nullcontext(con)

        assert pending_notifications(read) is None
        assert "alphatrace_notifications_pending" not in {
            f.name for f in StoreCollector(read).collect()}
        con.execute("CREATE TABLE notify_deliveries (id INTEGER, target VARCHAR, "
                    "status VARCHAR)")
        con.execute("INSERT INTO notify_deliveries VALUES (1, 'a', 'pending'), "
                    "(2, 'a', 'delivered'), (3, 'b', 'pending'), (4, 'b', 'expired')")
        assert pending_notifications(read) == 2
        fams = {f.name: f for f in StoreCollector(read).collect()}
        assert fams["alphatrace_notifications_pending"].samples[0].value == 2
        # no attempts table: the attempts family has no samples; finished deliveries counted
        assert fams["alphatrace_notification_attempts"].samples == []
        assert {(s.labels["target"], s.labels["status"]): s.value
                for s in fams["alphatrace_notification_deliveries"].samples} == {
            ("a", "delivered"): 1, ("b", "expired"): 1}


@given(st.ip_addresses(v=4))
def test_ipv4_loopback_is_127_slash_8(ip: Any) -> None:
    assert is_loopback(str(ip)) == str(ip).startswith("127.")


def test_named_hosts() -> None:
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    for host in ("0.0.0.0", "::", "example.com", "", "fe80::1"):
        assert not is_loopback(host), host


def test_spool_pickup_is_counted_as_source_follow(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [json.dumps(e) for e in http_batch("f1")]
    (spool / "a.jsonl").write_text("\n".join(lines) + "\n")
    app = create_app(tmp_path / "f.duckdb", follow=[spool], metrics_public=True)
    with TestClient(app) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = events(scrape(c.get("/metrics").text))
            if sum(got.values()) >= 5:  # one pass counts its statuses one after another
                break
            time.sleep(0.1)
    assert got == {("follow", "all", "accepted"): 3, ("follow", "all", "rejected"): 2}
    with duckdb.connect(str(tmp_path / "f.duckdb"), read_only=True) as con:
        row = con.execute("SELECT sum(accepted), sum(duplicates), sum(quarantined) "
                          "FROM spool_files").fetchone()
    assert row == (3, 0, 2)


def test_events_the_store_cannot_take_are_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch on which ingest raises is split until the poisoned events are alone: each event
    is counted once, the poisoned ones as rejected (quarantined by the collector)."""
    keys = keyed_store(tmp_path / "p.duckdb")
    app = create_app(tmp_path / "p.duckdb", metrics_public=True)
    writer = app.state.writer
    real = writer.submit_events

    def submit(evs: list[Any], source: str = "<http>") -> Future[Any]:
        if any(e.get("poison") for e in evs):
            fut: Future[Any] = Future()
            fut.set_exception(duckdb.ConversionException("Conversion Error: bad value"))
            return fut
        return real(evs, source)

    monkeypatch.setattr(writer, "submit_events", submit)
    batch = [{"type": "telemetry", "run_id": "p", "agent": "p", "ts": "2025-03-01T08:00:00Z",
              "event_id": f"p:{i}", "poison": i in (2, 5, 6)} for i in range(9)]
    with TestClient(app) as c:
        res = c.post("/v1/events", json=batch, headers={"Authorization": f"Bearer {keys['ingest']}"})
        assert res.status_code == 207
        got = events(scrape(c.get("/metrics").text))
    assert got == {("http", "telemetry", "accepted"): 6, ("http", "telemetry", "rejected"): 3}
    assert store_counts(tmp_path / "p.duckdb") == got


def notify_store_counts(db: Path) -> dict[tuple[str, str, str], float]:
    """The notification counters from the store alone: attempts per target by their status
    code, and deliveries per target whose status is final."""
    out: dict[tuple[str, str, str], float] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for target, code, n in con.execute(
                "SELECT d.target, a.status_code, count(*) FROM notify_attempts a, "
                "notify_deliveries d WHERE a.delivery_id = d.id GROUP BY ALL").fetchall():
            outcome = ("no_response" if code is None else
                       "delivered" if 200 <= code < 300 else "http_error")
            key = ("alphatrace_notification_attempts_total", target, outcome)
            out[key] = out.get(key, 0) + n
        for target, status, n in con.execute(
                "SELECT target, status, count(*) FROM notify_deliveries GROUP BY ALL").fetchall():
            if status != "pending":
                out[("alphatrace_notification_deliveries_total", target, status)] = n
    return out


def test_notification_counters_match_the_outbox(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Three webhooks: one answers 200, one 503, one is not listening. Each is sent the two
    kills (agent A, its strategy S); the failing ones retry until their 1 s horizon ends."""
    from alphatrace.api import Database
    from tests.notify.receiver import Receiver, free_port
    from tests.notify.util import SECRET_ENV, hook, losers, policy

    monkeypatch.setenv(SECRET_ENV, "s3cret")
    ok, bad = Receiver(free_port()).up(), Receiver(free_port(), mode="fail").up()
    gone = f"http://127.0.0.1:{free_port()}/hook"
    pol = policy([hook(ok.url, "ok"), hook(bad.url, "bad"), hook(gone, "gone")],
                 retry={"initial": "0.05s", "max": "0.1s", "horizon": "1s"})
    db = tmp_path / "n.duckdb"
    with Store(db) as store:
        losers(store, ["A"])
    app = create_app(db, metrics_public=True)
    try:
        with TestClient(app) as c:
            before = scrape(c.get("/metrics").text)
            assert not [k for k in before if k[0].startswith("alphatrace_notification_")]
            app.state.writer.submit_call(
                lambda s: Database(s).gates.evaluate(pol, catch_up=False)).result(60)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # every delivery delivered or expired
                samples = scrape(c.get("/metrics").text)
                if samples.get(("alphatrace_notifications_pending", ())) == 0:
                    break
                time.sleep(0.1)
            body = c.get("/metrics").text
    finally:
        ok.down()
        bad.down()
    got = {(name, dict(labels)["target"], dict(labels).get("outcome") or dict(labels)["status"]): v
           for (name, labels), v in scrape(body).items()
           if name in ("alphatrace_notification_attempts_total",
                       "alphatrace_notification_deliveries_total")}
    assert got == notify_store_counts(db)
    # By hand: 2 kills to each target; "ok" took both at once, the others never did.
    attempts = "alphatrace_notification_attempts_total"
    finished = "alphatrace_notification_deliveries_total"
    assert got[(attempts, "ok", "delivered")] == 2 and (attempts, "ok", "http_error") not in got
    assert got[(finished, "ok", "delivered")] == 2
    assert got[(attempts, "bad", "http_error")] >= 2 and (attempts, "bad", "delivered") not in got
    assert got[(attempts, "gone", "no_response")] >= 2
    assert got[(finished, "bad", "expired")] == got[(finished, "gone", "expired")] == 2
    assert len(ok.accepted()) == 2 and len(bad.requests) == got[(attempts, "bad", "http_error")]


def _otlp_body(n_traces: int, first: int) -> bytes:
    """An OTLP protobuf export of `n_traces` traces (a tagged root and 3 LLM-call spans each)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def kv(k: str, v: str | int) -> KeyValue:
        return KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int)
                        else AnyValue(string_value=v))

    spans = []
    for t in range(first, first + n_traces):
        tid, start = (t + 1).to_bytes(16, "big"), 1_740_816_000_000_000_000 + t * 10**9
        root = Span(trace_id=tid, span_id=(1 << 60 | t).to_bytes(8, "big"), name="run",
                    start_time_unix_nano=start, end_time_unix_nano=start + 9 * 10**8,
                    attributes=[kv("alphatrace.run_id", f"gc-{t}"), kv("alphatrace.agent", "G")])
        spans.append(root)
        spans += [Span(trace_id=tid, span_id=(2 << 60 | t << 4 | i).to_bytes(8, "big"),
                       parent_span_id=root.span_id, name="chat",
                       start_time_unix_nano=start + i, end_time_unix_nano=start + 10**8,
                       attributes=[kv("gen_ai.request.model", "gpt-4o"),
                                   kv("gen_ai.usage.input_tokens", 100 + i),
                                   kv("gen_ai.usage.output_tokens", 7)])
                  for i in range(3)]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv("service.name", "gc")]),
        scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString()


def test_the_server_collects_cycles_rarely_under_ingest(tmp_path: Path) -> None:
    """`serve` freezes what exists at start out of the cyclic collector's scans and raises its
    thresholds (cli/server.py GC_THRESHOLDS): 10,240 OTLP spans make at most a few young
    collections (Python's defaults made 57, each holding the GIL; `python_gc_collections_total`
    counts them, from /metrics). Counts of collections, not times: they do not depend on the
    machine's speed."""
    srv = start_server(tmp_path)
    try:
        def young() -> float:
            text = httpx.get(srv.url + "/metrics", timeout=30).text
            return scrape(text)[("python_gc_collections_total", (("generation", "0"),))]

        before = young()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            for r in range(20):
                res = c.post("/v1/traces", content=_otlp_body(128, r * 128), headers={
                    **srv.auth("ingest"), "Content-Type": "application/x-protobuf"})
                assert res.status_code == 200
        assert young() - before <= 5
    finally:
        srv.stop()
