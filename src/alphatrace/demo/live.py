"""`alphatrace demo --live`: the demo's history sent to a running collector in accelerated time.

It builds the demo data as `alphatrace demo` does (shipped prices, simulated agents), starts a
collector in this process (uvicorn on a free 127.0.0.1 port, over its own store), creates an
ingest key and a read key, and replays the bars, funding and events into it through HTTP in
the order they became known (demo/replay.py), `speed` market days per second. After each step
it reads the decision log after the last seq it saw (GET /v1/decisions) and reports each new
record: the live pipeline (server/pipeline.py, the writer's first after-round hook) records
them as the data arrives.

The collector's policy is the shipped live policy plus a `notify` section with one webhook: a
receiver in this process (demo/hook.py), which checks each delivery's signature. After each
step the kills it received are reported with their delay from the evidence: from the moment
the replay sent the request that carried the data making the kill's newest run known (its
`as_of`, a knowledge time), to the moment the receiver read the delivery.

At the end the same data is evaluated the old way, once, as of the end (`gates evaluate
--as-of END` on a separate store that holds the same data: the batch build), and the closing
table puts each kill's timing and the PnL made after it side by side.
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphatrace.demo import hook
from alphatrace.demo.pipeline import (
    DEFAULT_RUNS_PER_AGENT,
    DEFAULT_SEED,
    STEPS,
    DemoContext,
    Step,
    fresh_store_path,
    run_demo,
)
from alphatrace.demo.replay import (
    DAY_MS,
    Item,
    Run,
    Tick,
    bar_items,
    epoch_ms,
    event_items,
    funding_items,
    iso,
    kill_table,
    knowledge_times,
    next_tick,
    timeline,
)
from alphatrace.demo.simulate import DemoEvents
from alphatrace.errors import AlphatraceError, InputError
from alphatrace.policy import Policy, load_policy
from alphatrace.store import Store

DEFAULT_SPEED = 1.0  # market days per second
TICK_S = 0.25  # wall seconds between replay steps, at least
BATCH_STEPS = ("market", "simulate", "ingest", "reconcile")
HOOK_SECRET_ENV = "ALPHATRACE_DEMO_HOOK_SECRET"  # set in this process while the demo runs
DELIVERY_WAIT_S = 15.0  # after the replay, how long the demo waits for kills still in flight


class ReplayError(AlphatraceError):
    """The collector refused a request of the replay."""


@dataclass
class LiveResult:
    url: str
    speed: float
    start: str
    end: str
    sent: dict[str, int]
    decisions: list[dict[str, Any]]
    batch: list[dict[str, Any]]
    kills: list[dict[str, Any]]
    pnl_break: dict[str, Any] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "speed_days_per_s": self.speed, "start": self.start,
                "end": self.end, "sent": self.sent, "decisions": self.decisions,
                "batch_decisions": self.batch, "kills": self.kills,
                "pnl_break": self.pnl_break, "deliveries": self.deliveries}


# -- the demo data --------------------------------------------------------------------------

@dataclass
class DemoData:
    items: list[Item]
    runs: list[Run]
    demo: DemoEvents
    batch_db: Path


def build(folder: Path, *, seed: int, runs_per_agent: int, data_dir: Path | None) -> DemoData:
    """The demo's market import, simulation, ingest and reconcile into `folder/batch.duckdb`
    (the batch store), and the timeline of what the replay sends."""
    captured: dict[str, DemoEvents] = {}

    def capture(ctx: DemoContext) -> dict[str, Any]:
        if ctx.demo is not None:
            captured["demo"] = ctx.demo
        return {}

    steps = [s for s in STEPS if s.name in BATCH_STEPS] + [Step("capture", "", capture)]
    batch_db = folder / "batch.duckdb"
    run_demo(batch_db, seed=seed, runs_per_agent=runs_per_agent, data_dir=data_dir, steps=steps)
    with Store(batch_db, read_only=True) as store:
        con = store.con
        bars = _dicts(con.execute(
            "SELECT symbol, ts, open, high, low, close, volume, interval_s FROM bars "
            "WHERE interval_s > 0 ORDER BY ts, symbol"))
        funding = _dicts(con.execute(
            "SELECT symbol, ts, funding_rate, mark_price FROM funding ORDER BY ts, symbol"))
        runs = [Run(str(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in con.execute(
            "SELECT run_id, agent, strategy, ts, net_usd, "
            "row_number() OVER (PARTITION BY agent ORDER BY ts, run_id) - 1 FROM ledger "
            "WHERE ts IS NOT NULL").fetchall()]
    demo = captured["demo"]
    events = [e for kind in ("telemetry", "alpha", "pnl") for e in demo.events.get(kind, [])]
    items = timeline(bar_items(bars), funding_items(funding), event_items(events))
    return DemoData(items, runs, demo, batch_db)


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# -- the collector, in this process ---------------------------------------------------------

@dataclass
class Collector:
    url: str
    app: Any
    ingest_key: str
    read_key: str

    def settle(self) -> None:
        """Wait until the writer has finished every round sent so far and the after-round
        hooks (the live pipeline) have run for them (`Writer.sync`)."""
        self.app.state.writer.sync().result(timeout=600)


def demo_policy(hook_url: str) -> Policy:
    """The shipped default policy, whose kills go to the demo's receiver (signed with the secret
    in HOOK_SECRET_ENV; retried quickly, since the demo is short)."""
    live = load_policy()
    notify = {"retry": {"initial": "0.2s", "max": "2s", "horizon": "5m"},
              "targets": [{"name": "demo-receiver", "kind": "webhook", "url": hook_url,
                           "secret_env": HOOK_SECRET_ENV, "actions": ["kill"]}]}
    return Policy({**live.data, "notify": notify}, f"{live.path} + the demo's webhook")


@contextmanager
def hook_secret(secret: str) -> Iterator[None]:
    """HOOK_SECRET_ENV set to `secret` in this process (the dispatcher reads the secret from
    the environment, never from the policy), restored afterwards."""
    old = os.environ.get(HOOK_SECRET_ENV)
    os.environ[HOOK_SECRET_ENV] = secret
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(HOOK_SECRET_ENV, None)
        else:
            os.environ[HOOK_SECRET_ENV] = old


@contextmanager
def collector(db: Path, policy: Policy | None = None) -> Iterator[Collector]:
    """A collector on a free 127.0.0.1 port over `db`, with an ingest and a read key, whose
    live pipeline runs `policy` (default the shipped live policy)."""
    import uvicorn

    from alphatrace.server.app import create_app
    from alphatrace.server.keys import create_key
    from alphatrace.server.listen import bind
    from alphatrace.server.pipeline import PipelineConfig

    with Store(db) as store:
        ingest = create_key(store, "demo-live-ingest", "ingest")["key"]
        read = create_key(store, "demo-live-read", "read")["key"]
    config = PipelineConfig.load(policy if policy is not None else load_policy())
    app = create_app(db, warn_without_keys=False, pipeline=config, policy=config.governance)
    sock = bind("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="alphatrace-demo-collector", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ReplayError("the demo collector did not start")
        time.sleep(0.02)
    try:
        yield Collector(f"http://127.0.0.1:{port}", app, ingest, read)
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


class Client:
    """One keep-alive HTTP connection to the collector (stdlib: the demo needs no extra)."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self._con = http.client.HTTPConnection(host, int(port), timeout=600)

    def request(self, method: str, path: str, key: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":"), default=str)
        headers = {"Authorization": f"Bearer {key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            self._con.request(method, path, body=data, headers=headers)
            res = self._con.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the kept-alive connection while it sat idle (uvicorn: 5 s, as
            # when the replay waits for the pipeline to settle): send again on a new one (the
            # requests are idempotent: events by id, reads).
            self._con.close()
            self._con.request(method, path, body=data, headers=headers)
            res = self._con.getresponse()
        text = res.read()
        if res.status >= 300 and res.status != 207:
            raise ReplayError(f"{method} {path}: HTTP {res.status}: {text[:500]!r}")
        return json.loads(text)

    def close(self) -> None:
        self._con.close()


# -- the replay -----------------------------------------------------------------------------

OnDecision = Callable[[dict[str, Any]], None]
OnTick = Callable[[Tick], None]
OnDelivery = Callable[[dict[str, Any]], None]
OnRequest = Callable[[str, list[dict[str, Any]]], None]


def delivery_row(got: hook.Received, posted_at: Mapping[int, float]) -> dict[str, Any]:
    """A kill as the receiver got it, with its delays: `evidence_delay_s` from the moment the
    replay sent the request carrying its evidence (`posted_at`: knowledge time in epoch ms →
    the wall time of the first request that carried it; None: not found), and
    `append_delay_s` from its record's `created_at` (the append)."""
    rec = got.record
    posted = posted_at.get(epoch_ms(rec["as_of"])) if rec.get("as_of") else None
    created = epoch_ms(rec["created_at"]) / 1000 if rec.get("created_at") else None
    return {"seq": rec["seq"], "action": rec["action"], "scope": rec["scope"],
            "subject": rec["subject"], "rule": rec.get("rule"), "as_of": rec.get("as_of"),
            "delivery_id": got.delivery_id,
            "received_at": iso(int(got.received_at * 1000)),
            "evidence_posted_at": None if posted is None else iso(int(posted * 1000)),
            "evidence_delay_s": None if posted is None else round(got.received_at - posted, 3),
            "append_delay_s": None if created is None else round(got.received_at - created, 3)}


def note_posted(posted: dict[int, float], path: str, rows: list[dict[str, Any]]) -> None:
    """Remember now as the time each knowledge time the request carries was first posted."""
    now = time.time()
    for known in knowledge_times(path.split("?")[0], rows):
        posted.setdefault(known, now)


def wait_for_kills(decisions: list[dict[str, Any]], deliveries: list[dict[str, Any]],
                   received: Callable[[], None], timeout_s: float = DELIVERY_WAIT_S) -> None:
    """Wait (at most `timeout_s`) until the receiver got every kill the log holds."""
    want = {d["seq"] for d in decisions if d.get("action") == "kill"}
    deadline = time.monotonic() + timeout_s
    while want - {d["seq"] for d in deliveries} and time.monotonic() < deadline:
        time.sleep(0.05)
        received()


def replay(items: list[Item], client: Client, col: Collector, *, speed: float,
           on_decision: OnDecision, on_tick: OnTick | None = None,
           before_request: OnRequest | None = None,
           after_poll: Callable[[], None] | None = None,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Send the timeline at `speed` market days per wall second and report each decision the
    collector records. Returns (items sent per route, every decision).

    The market clock follows the wall clock: each step sends what became known since the last
    one, at least TICK_S apart. When the collector is slower than the clock, steps grow rather
    than the replay falling behind; over a gap in the data the replay waits for the next item.
    `before_request` sees each request (path, rows) just before it is sent; `after_poll` runs
    after each reading of the decision log.
    """
    if speed <= 0:
        raise InputError("--speed must be a positive number of market days per second")
    rate = speed * DAY_MS  # market ms per wall second
    sent: dict[str, int] = {}
    decisions: list[dict[str, Any]] = []
    last = 0

    def poll() -> None:
        nonlocal last
        while True:
            doc = client.request("GET", f"/v1/decisions?after={last}", col.read_key)
            for rec in doc["decisions"]:
                decisions.append(rec)
                on_decision(rec)
            if doc["last_seq"] == last:
                return
            last = int(doc["last_seq"])

    if not items:
        return sent, decisions
    first = items[0].at_ms
    t0 = clock()
    start, i = first - 1, 0
    while i < len(items):
        step_due = t0 + (start - first) / rate + TICK_S  # TICK_S after the clock passed `start`
        next_due = t0 + (items[i].at_ms - first) / rate  # when the next item becomes known
        wait = max(step_due, next_due) - clock()
        if wait > 0:
            sleep(wait)
        end = max(first + int((clock() - t0) * rate), items[i].at_ms)
        tick, i = next_tick(items, i, start, end)
        for path, bodies in tick.requests:
            if before_request is not None:
                before_request(path, bodies)
            client.request("POST", path, col.ingest_key, bodies)
            route = path.split("?")[0]
            sent[route] = sent.get(route, 0) + len(bodies)
        if on_tick is not None:
            on_tick(tick)
        poll()
        if after_poll is not None:
            after_poll()
        start = end
    col.settle()
    poll()
    if after_poll is not None:
        after_poll()
    return sent, decisions


def batch_decisions(batch_db: Path, end: str) -> list[dict[str, Any]]:
    """The old way: one `gates evaluate --as-of END` over all the data."""
    from alphatrace.api import Database

    with Store(batch_db) as store:
        return Database(store).gates.evaluate(load_policy(), as_of=end,
                                                 catch_up=False)


def run_live(
    db: Path | None = None,
    *,
    speed: float = DEFAULT_SPEED,
    seed: int = DEFAULT_SEED,
    runs_per_agent: int = DEFAULT_RUNS_PER_AGENT,
    data_dir: Path | None = None,
    on_ready: Callable[[str, DemoData], None] | None = None,
    on_decision: OnDecision = lambda rec: None,
    on_tick: OnTick | None = None,
    on_delivery: OnDelivery = lambda d: None,
) -> LiveResult:
    """The whole live demo; `db` is the collector's store (rebuilt), default a temporary one.
    `on_delivery` is called, on this thread, with each kill the demo's receiver got
    (`delivery_row`), after the decision itself was reported."""
    if speed <= 0:
        raise InputError("--speed must be a positive number of market days per second")
    with tempfile.TemporaryDirectory(prefix="alphatrace-live-") as tmp:
        folder = Path(tmp)
        data = build(folder, seed=seed, runs_per_agent=runs_per_agent, data_dir=data_dir)
        live_db = db if db is not None else folder / "live.duckdb"
        fresh_store_path(live_db)
        posted: dict[int, float] = {}  # knowledge time (ms) → when a request first carried it
        deliveries: list[dict[str, Any]] = []
        with hook.receiver() as rcv, hook_secret(rcv.secret), \
                collector(live_db, demo_policy(rcv.url)) as col:
            if on_ready is not None:
                on_ready(col.url, data)

            def received() -> None:
                for got in rcv.drain():
                    row = delivery_row(got, posted)
                    deliveries.append(row)
                    on_delivery(row)

            client = Client(col.url)
            try:
                sent, decisions = replay(
                    data.items, client, col, speed=speed, on_decision=on_decision,
                    on_tick=on_tick, after_poll=received,
                    before_request=lambda path, rows: note_posted(posted, path, rows))
            finally:
                client.close()
            wait_for_kills(decisions, deliveries, received)
        end = iso(data.items[-1].at_ms) if data.items else ""
        batch = batch_decisions(data.batch_db, end)
        qb = data.demo.truth.quality_break
        return LiveResult(
            url=col.url, speed=speed, start=iso(data.items[0].at_ms) if data.items else "",
            end=end, sent=sent, decisions=decisions, batch=batch,
            kills=kill_table(decisions, batch, data.runs),
            pnl_break={"agent": qb.agent, "run_index": qb.pnl_break_index,
                       "run_id": qb.pnl_break_run_id, "ts": qb.pnl_break_ts},
            deliveries=deliveries,
        )
