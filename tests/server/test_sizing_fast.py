"""The sizing fast path (server/sizing_fast.py) and what keeps the event loop free for it.

The fast path answers plainly valid sizing requests before FastAPI's routing; whatever it
answers must be, byte for byte, what the route answers, and whatever it does not answer must
reach the route unchanged. Checked here against the route itself (the same app with the fast
path taken out of its middleware stack), for generated queries, keys and agent names, and the
encoded body against `json.dumps` of the route's document.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRouter
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.governance.policy import SizingSection
from alphatrace.governance.sizing import AgentSizing
from alphatrace.server import sizing_routes
from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.server.live_state import Snapshot
from alphatrace.server.sizing_fast import PREFIX, SUFFIX, SizingFastPath
from alphatrace.store import Store
from tests.server.conftest import histogram_count
from tests.server.test_sizing import Collector, evidence

Answer = tuple[int, dict[str, str], bytes]


class Both:
    """One app, asked through its full stack (fast path first) or through the route alone."""

    def __init__(self, app: FastAPI, keys: dict[str, str]) -> None:
        self.app = app
        self.keys = keys
        self.full = app.build_middleware_stack()
        app.user_middleware = [m for m in app.user_middleware if m.cls is not SizingFastPath]
        self.route_only = app.build_middleware_stack()

    def get(self, path: str, query: bytes, headers: list[tuple[bytes, bytes]], *,
            fast: bool) -> Answer:
        self.app.middleware_stack = self.full if fast else self.route_only
        return asyncio.run(_asgi_get(self.app, path, query, headers))


async def _asgi_get(app: FastAPI, path: str, query: bytes,
                    headers: list[tuple[bytes, bytes]]) -> Answer:
    scope = http_scope(path, query, headers)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent[1:])


def http_scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": query, "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8700)}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Both]:
    db = tmp_path_factory.mktemp("fast") / "c.duckdb"
    with Store(db) as store:
        keys = {s: create_key(store, f"k-{s}", s)["key"] for s in ("ingest", "read", "admin")}
    app = create_app(db, linger_s=0.001, warn_without_keys=False)
    with TestClient(app) as client:
        c = Collector(client, keys)
        c.post(evidence("A", [-30.0, -10.0, 5.0]) + evidence("K", [-50.0] * 6, strategy="S9"))
        c.reconcile_and_evaluate()
        yield Both(app, keys)


def bearer(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


# ------------------------------------------------------------------ answered before routing

def test_a_plain_request_is_answered_without_the_router(
        both: Both, monkeypatch: pytest.MonkeyPatch) -> None:
    routed: list[str] = []
    inner = APIRouter.__call__

    async def counting(self: APIRouter, scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await inner(self, scope, receive, send)

    monkeypatch.setattr(APIRouter, "__call__", counting)
    status, headers, body = both.get("/v1/agents/A/sizing", b"base_size=10000&score=-1.5",
                                     bearer(both.keys["read"]), fast=True)
    assert status == 200 and routed == []
    doc = json.loads(body)
    assert (doc["agent"], doc["base_size"], doc["score"]) == ("A", 10_000.0, -1.5)
    assert doc["size"] == pytest.approx(10_000 * 1.5 * 0.85 * 0.95)
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    # A request it cannot answer with certainty goes on to the route (here: no key, 401).
    status, _, _ = both.get("/v1/agents/A/sizing", b"", [], fast=True)
    assert status == 401 and routed == ["/v1/agents/A/sizing"]


def test_fast_answers_are_counted_in_the_sizing_histogram(both: Both) -> None:
    hist = both.app.state.metrics.sizing.latency

    def count() -> float:
        return histogram_count(hist)

    before = count()
    for _ in range(3):
        assert both.get("/v1/agents/K/sizing", b"", bearer(both.keys["read"]), fast=True)[0] == 200
    assert count() == before + 3


# ------------------------------------------------------------------ the same answer as the route

NAMES = st.sampled_from(["base_size", "score", "base_size", "score", "x", "", "Score"])
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
VALUES = st.one_of(
    FLOATS.map(repr), FLOATS.map(lambda x: f"{x:.3f}"), FLOATS.map(lambda x: f"{x:e}"),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["", "-0", ".5", "5.", "+1", "1_0", " 1", "1%2E5", "1e400", "-1e-400",
                     "0x10", "inf", "-inf", "nan", "1e15", "1000000000000000.1", "1e6",
                     "-1e6", "-1000000.0000001", "00012", "1e+3", "1E3", "１"]))
ITEM = st.one_of(st.tuples(NAMES, VALUES).map(lambda nv: f"{nv[0]}={nv[1]}"), NAMES)


@settings(max_examples=300)
@given(st.lists(ITEM, max_size=3).map("&".join),
       st.sampled_from(["A", "K", "Nobody", "a/b c", "é", "A/sizing"]),
       st.sampled_from(["read", "admin", "ingest", "none", "lower", "spaces", "basic", "bogus"]))
def test_the_full_stack_answers_exactly_as_the_route(both: Both, query: str, agent: str,
                                                     auth: str) -> None:
    key = both.keys.get(auth, both.keys["read"])
    headers = {"none": [], "lower": [(b"authorization", f"bearer {key}".encode())],
               "spaces": [(b"authorization", f"Bearer   {key}  ".encode())],
               "basic": [(b"authorization", f"Basic {key}".encode())],
               "bogus": bearer("not-a-key")}.get(auth, bearer(key))
    path = f"/v1/agents/{agent}/sizing"
    q = query.encode("utf-8")
    fast = both.get(path, q, headers, fast=True)
    route = both.get(path, q, headers, fast=False)
    assert fast == route
    taken = SizingFastPath.answer({**http_scope(path, q, headers), "app": both.app})
    if taken is not None:
        assert fast[0] == 200 and taken == fast[2]


@settings(max_examples=200)
@given(st.text(max_size=30))
def test_the_fast_path_takes_only_paths_the_sizing_route_answers(both: Both, agent: str) -> None:
    """Any agent name (a path decoded from %XX may hold any character): where the fast path
    answers, the route answers the same 200; elsewhere the route decides (a 404 for a name
    with a line break, which the route's pattern does not match)."""
    path = f"{PREFIX}{agent}{SUFFIX}"
    headers = bearer(both.keys["read"])
    fast = both.get(path, b"", headers, fast=True)
    route = both.get(path, b"", headers, fast=False)
    assert fast == route
    taken = SizingFastPath.answer({**http_scope(path, b"", headers), "app": both.app})
    if taken is not None:
        assert route[0] == 200 and json.loads(route[2])["agent"] == agent


# ------------------------------------------------------------------ the encoded body

SIZINGS = st.builds(
    AgentSizing, agent=st.text(max_size=12), state=st.sampled_from(["candidate", "promoted", "killed"]),
    multiplier=st.floats(0, 5), known_ts=st.none() | st.datetimes(timezones=st.just(dt.UTC)),
    stopped_by=st.sampled_from([None, "agent", "strategy"]), strategy=st.none() | st.text(max_size=8),
    reason=st.none() | st.text(max_size=40), seq=st.none() | st.integers(1, 10**9))


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=12), SIZINGS, max_size=3), st.text(max_size=12),
       st.none() | st.floats(0, 1e15), st.floats(-1e6, 1e6), st.integers(0, 10**9),
       st.datetimes(timezones=st.just(dt.UTC)))
def test_encoded_is_json_dumps_of_the_document(agents: dict[str, AgentSizing], ask: str,
                                               base: float | None, score: float, seq: int,
                                               built: dt.datetime) -> None:
    snap = Snapshot(seq, agents, SizingSection(), built)
    for name in [*agents, ask]:
        want = json.dumps(sizing_routes.answer(snap, name, base, score)).encode()
        assert sizing_routes.encoded(snap, name, base, score) == want
        assert sizing_routes.encoded(snap, name, base, score) == want  # from the cache


def test_a_size_that_is_not_finite_is_left_to_the_route() -> None:
    huge = AgentSizing("H", "candidate", 1e300, None, None, None, None, None)
    snap = Snapshot(1, {"H": huge}, SizingSection(), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert sizing_routes.encoded(snap, "H", 1e15, 1e6) is None
    assert sizing_routes.encoded(snap, "H", 1.0, 1.0) is not None


# ------------------------------------------------------------------ the loop stays free

def test_a_batch_is_parsed_and_answered_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alphatrace.server import body as body_mod
    from alphatrace.server import ingest_routes

    threads: dict[str, int] = {}
    parse, encode, raw = body_mod.parse_json, ingest_routes.encode_results, body_mod.read_raw

    def parse_here(b: bytes) -> Any:
        threads["parse"] = threading.get_ident()
        return parse(b)

    def encode_here(results: Any) -> Any:
        threads["encode"] = threading.get_ident()
        return encode(results)

    async def raw_here(request: Any, limit: int) -> bytes:
        threads["loop"] = threading.get_ident()
        return await raw(request, limit)

    monkeypatch.setattr(body_mod, "parse_json", parse_here)
    monkeypatch.setattr(body_mod, "read_raw", raw_here)
    monkeypatch.setattr(ingest_routes, "encode_results", encode_here)
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        key = create_key(store, "k", "ingest")["key"]
    with TestClient(create_app(db, linger_s=0.001, warn_without_keys=False)) as client:
        r = client.post("/v1/events", json=evidence("A", [1.0]),
                        headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json()["accepted"] == 2
    assert threads["parse"] != threads["loop"] and threads["encode"] != threads["loop"]


def test_serve_shortens_the_gil_switch_interval_and_leaves_python_a_core(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While serving: the switch interval, and DuckDB's threads one below the cores
    (`serving_threads`; without it DuckDB keeps its default, the machine's cores)."""
    import os

    import uvicorn

    from alphatrace.cli import server as cli_server

    seen: list[float] = []

    def run(self: uvicorn.Server, sockets: Any = None) -> None:
        store = self.config.app.state.writer.store
        seen.append(sys.getswitchinterval())
        seen.append(int(store.con.execute("SELECT current_setting('threads')").fetchall()[0][0]))
        for s in sockets or []:
            s.close()
        store.close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    before = sys.getswitchinterval()
    try:
        cli_server.serve(port=0, db=tmp_path / "s.duckdb", otlp_grpc_port=0, no_pipeline=True,
                         log_level="warning")
    finally:
        sys.setswitchinterval(before)
    assert seen == [cli_server.SWITCH_INTERVAL_S, 4] and seen[0] < 0.005


@pytest.mark.parametrize(("cores", "threads"), [(None, 1), (1, 1), (2, 1), (8, 7), (64, 63)])
def test_duckdb_leaves_the_python_side_a_core(cores: int | None, threads: int) -> None:
    from alphatrace.cli.server import serving_threads

    assert serving_threads(cores) == threads


@pytest.mark.parametrize("protobuf", [True, False])
def test_an_otlp_export_is_decoded_and_mapped_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protobuf: bool) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from alphatrace.server import otlp_routes
    from tests.server.test_otlp import make_spans, otlp_json

    threads: dict[str, int] = {}
    mapper, raw = otlp_routes.map_body, otlp_routes.read_raw

    def map_here(*args: Any) -> Any:
        threads["map"] = threading.get_ident()
        return mapper(*args)

    async def raw_here(request: Any, limit: int) -> bytes:
        threads["loop"] = threading.get_ident()
        return await raw(request, limit)

    monkeypatch.setattr(otlp_routes, "map_body", map_here)
    monkeypatch.setattr(otlp_routes, "read_raw", raw_here)
    spans, _ = make_spans({"service.name": "svc"}, run_attr="otlp-off-loop")
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        key = create_key(store, "k", "ingest")["key"]
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(db, linger_s=0.001, warn_without_keys=False)) as client:
        if protobuf:
            r = client.post("/v1/traces", content=encode_spans(spans).SerializeToString(),
                            headers={**auth, "Content-Type": "application/x-protobuf"})
        else:
            r = client.post("/v1/traces", json=otlp_json(spans, hex_ids=True), headers=auth)
    assert r.status_code == 200
    assert threads["map"] != threads["loop"]
