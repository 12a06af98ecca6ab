"""The collector app: `create_app(db_path)` → a FastAPI app that is the store's single writer.

Routers live in their own modules (ingest, OTLP, reads, admin); the dashboard adds its router
to the returned app without touching these. The store is opened here, eagerly, so a locked or
unreadable file is reported before the server starts listening.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alphatrace import __version__
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.notify.dispatcher import Dispatcher
from alphatrace.sdk.prices import PriceTable, resolve_table
from alphatrace.server import (
    admin_routes,
    call_routes,
    cli_routes,
    decision_routes,
    ingest_routes,
    market_routes,
    metrics_routes,
    otlp_routes,
    read_routes,
    sizing_routes,
    stream_routes,
)
from alphatrace.server.auth import KeyRing
from alphatrace.server.body import MAX_BODY
from alphatrace.server.keys import active_keys
from alphatrace.server.live_state import LiveState
from alphatrace.server.metrics import CollectorMetrics
from alphatrace.server.otlp_late import LateWriter
from alphatrace.server.pipeline import Pipeline, PipelineConfig
from alphatrace.server.sizing_fast import SizingFastPath
from alphatrace.server.trace_hold import TraceHold
from alphatrace.server.writer import Busy, Writer
from alphatrace.store.connection import SERVED

log = logging.getLogger("alphatrace.server")

DESCRIPTION = """\
Collector for alphatrace events. Send telemetry, alpha and pnl events as JSON to
`POST /v1/events`, or OTLP traces to `POST /v1/traces` (also `/v1/otlp/v1/traces`). Every
route except `/healthz` (and `/metrics` when bound to loopback) needs `Authorization: Bearer
<key>` (create keys with `alphatrace keys create`): writes need scope `ingest`, reads `read`;
`admin` has both and manages keys.
"""

NO_KEYS = ("no API keys yet: every route but /healthz (and /metrics on loopback) answers 401. "
           "Stop the server and run "
           "`alphatrace keys create --name NAME --scope ingest`.")


def create_app(
    db_path: str | os.PathLike[str] | None = None,
    *,
    follow: Sequence[str | os.PathLike[str]] = (),
    follow_market: Sequence[str | os.PathLike[str]] = (),
    max_body: int = MAX_BODY,
    linger_s: float = 0.05,
    max_batch_events: int = 50_000,
    max_pending_events: int = 500_000,
    prices: PriceTable | Any = None,
    warn_without_keys: bool = True,
    metrics_public: bool = False,
    policy: str | Path | GovernancePolicy | None = None,
    trace_hold: TraceHold | None = None,
    pipeline: PipelineConfig | None = None,
) -> FastAPI:
    """The app, with its writer (and store) open; the writer thread starts with the app.

    `warn_without_keys=False` leaves the "no API keys" warning to the caller (`alphatrace
    serve` prints it in its banner, once). `metrics_public=True` serves `/metrics` without a
    key (`alphatrace serve` sets it when it binds a loopback address). `policy`: the
    governance policy the sizing state uses (confidence, `sizing:`; default the shipped one).
    `trace_hold`: where OTLP spans wait for their trace's root (server/trace_hold.py; default
    bounds if None).
    `pipeline`: run the live pipeline (server/pipeline.py) with this policy after every ingest
    round, as the first after-round hook, and once at start for what arrived while the server
    was down (`alphatrace serve` passes one unless --no-pipeline; None: store events only)."""
    writer = Writer(
        db_path,
        linger_s=linger_s,
        max_batch_events=max_batch_events,
        max_pending_events=max_pending_events,
        # absolute now: a command run for the CLI changes the working directory while it runs
        # (server/cli_routes.py), and the follow thread must keep reading the same folders
        follow_dirs=[Path(d).resolve() for d in follow],
        market_dirs=[Path(d).resolve() for d in follow_market],
    )
    metrics = CollectorMetrics(writer.reader, lambda: getattr(app.state, "pipeline", None))
    # Notifications: sends on its own thread and cursor (docs/governance.md §Notifications).
    dispatcher = Dispatcher(writer.store)
    writer.before_close(dispatcher.stop)
    writer.observer = metrics.ingest
    pipe = None
    if pipeline is not None:
        pipe = Pipeline(pipeline, rounds=writer.after_rounds.covering,
                        observe=metrics.pipeline.observe)
        writer.after_round(pipe)  # first: the hooks after it read what it derived
        writer.signal_horizon_s = pipeline.reconcile.policy.shortest_horizon_s()
    # The sizing state: read now, then after every round that wrote; registered after the
    # live pipeline's hook, so it reads what the pipeline derived in the same run of the hooks.
    live = LiveState(load_governance(policy), reader=writer.reader)
    try:
        live.start(writer.store)
    except Exception:
        log.exception("reading the sizing state failed; sizing answers 503 until it succeeds")
    writer.after_round(live.refresh)
    writer.before_close(live.stop)
    hold = trace_hold if trace_hold is not None else TraceHold()
    late = LateWriter(writer, hold)
    ring = KeyRing(active_keys(writer.store.con))
    if warn_without_keys and not len(ring):
        log.warning(NO_KEYS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        dispatcher.start()
        late.start()
        if pipe is not None:  # catch up at once with what arrived while no server ran
            writer.submit_call(lambda store: None)
        # Everything alive now (the app, its routes and models, the libraries) lives as long as
        # the server: out of the collector's way, so the full collections that thousands of
        # events a second trigger do not walk it again each time (p99 291 -> 245 ms in
        # bench_collector, same run conditions).
        gc.freeze()
        try:
            yield
        finally:
            for stop in app.state.stop_first:  # front ends that feed the writer (OTLP/gRPC)
                stop()
            late.close()  # OTLP spans still waiting for their trace's root: written now
            writer.stop()
            gc.unfreeze()

    app = FastAPI(
        title="alphatrace collector",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.writer = writer
    app.state.trace_hold = hold
    app.state.stop_first = []  # callables run at shutdown before the writer stops
    app.state.keyring = ring
    app.state.max_body = max_body
    app.state.prices = resolve_table(prices)
    app.state.metrics = metrics
    app.state.dispatcher = dispatcher
    app.state.live = live
    app.state.pipeline = pipe
    app.state.local_token = None  # set by `serve` with the discovery file (store/discovery.py)
    app.state.db_abs = writer.store.path.resolve() if writer.store.path is not None else None
    if app.state.db_abs is not None:
        SERVED.add(app.state.db_abs)
    for module in (ingest_routes, otlp_routes, read_routes, admin_routes, cli_routes,
                   market_routes, decision_routes, sizing_routes, stream_routes, call_routes):
        app.include_router(module.router)
    app.include_router(metrics_routes.router(public=metrics_public))
    app.add_middleware(SizingFastPath)  # plainly valid sizing requests, before the routing
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Busy, _busy)
    from alphatrace.server.dashboard import mount as mount_dashboard

    mount_dashboard(app)
    # Last of the after-round hooks: the dispatcher wakes after the live pipeline's has run.
    writer.after_round(dispatcher.after_round)
    return app


async def _busy(request: Request, exc: Exception) -> Response:
    """More events waiting than the writer takes: the client retries after a second."""
    return JSONResponse({"detail": "collector busy: retry later"}, status_code=503,
                        headers={"Retry-After": "1"})


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's handler, except that a 405 lists every method the path allows (Starlette's
    lists only those of the first route that matched the path)."""
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    allowed: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        if regex is not None and methods and regex.match(request.url.path):
            allowed |= set(methods)
    return JSONResponse({"detail": exc.detail}, status_code=405,
                        headers={"Allow": ", ".join(sorted(allowed))})
