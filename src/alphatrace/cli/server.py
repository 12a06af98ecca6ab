"""`alphatrace serve`, `alphatrace keys create|list|revoke`, `alphatrace follow`."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    console,
    emit,
    err_console,
    handle_errors,
    open_store,
    print_json,
)
from alphatrace.errors import InputError
from alphatrace.server.limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS
from alphatrace.server.trace_hold import MAX_BYTES, MAX_SPANS, WAIT_S, TraceHold

SWITCH_INTERVAL_S = 0.0005  # sys.setswitchinterval while serving (see `serve`)
# The cyclic garbage collector's thresholds while serving (see `serve`): a young collection
# after 50,000 net new container objects instead of 700, the older ones as rarely.
GC_THRESHOLDS = (50_000, 20, 100)


def serving_threads(cores: int | None) -> int:
    """DuckDB's worker threads while serving: one core fewer than the machine has (at least
    one). The server's Python (the event loop, request parsing, the writer's rounds) runs one
    thread at a time under the GIL, about a core's worth at full load; DuckDB's default of a
    thread per core let a pass's parallel scans take that core too, and requests waited behind
    them. On 2 cores at 10,500 OTLP spans/s: p99 224–292 ms with one thread against 197–1,810 ms
    with two, and ~5% less CPU a span (bench/RESULTS.md, session of 2026-12-03 12:20, lead)."""
    return max(1, (cores or 1) - 1)


def tune_for_serving(app: Any) -> None:
    """The process settings `serve` runs with (a benchmark that serves `create_app` in its own
    process calls this too, so it measures what `serve` does)."""
    # The event loop shares the GIL with the writer, pipeline and parsing threads: a request
    # that arrives while one of them runs Python waits for the switch interval (5 ms by
    # default) before the loop gets the GIL back; 0.5 ms shortens that wait for sizing answers.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app.state.writer.store.con.execute(f"SET threads = {serving_threads(os.cpu_count())}")
    # A collector round makes and frees a dict per event, and the app keeps hundreds of
    # thousands of long-lived objects (modules, the trace hold, caches): with Python's default
    # thresholds the cyclic collector ran ~900 times in 10 s at 10,000 OTLP spans/s, ~1 s of
    # CPU holding the GIL, with pauses up to 96 ms in the middle of requests (bench_otlp.py,
    # bench/RESULTS.md, session of 2026-12-03, lead). The events are freed by reference
    # counting; what the cyclic collector is for (cycles) is rare here. So what exists at
    # start is frozen out of its scans and it runs far less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


keys_app = typer.Typer(help="API keys of the collector (stored hashed; a key is shown once).",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("follow")(follow_cmd)
    app.add_typer(keys_app, name="keys")


@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8700,
    db: DbOption = None,
    follow: Annotated[list[Path] | None, typer.Option(
        "--follow", help="Also ingest closed spool files from this folder (repeatable).")] = None,
    follow_market: Annotated[list[Path] | None, typer.Option(
        "--follow-market", help="Also import the market files (bars, funding) a price recorder "
                                "drops in this folder, once each (repeatable).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    header_timeout: Annotated[float, typer.Option(
        help="Seconds a client has to send a request's line and headers.")] = HEADER_TIMEOUT_S,
    body_timeout: Annotated[float, typer.Option(
        help="Seconds a client has to send a request's body, from the end of its headers.",
    )] = BODY_TIMEOUT_S,
    max_connections: Annotated[int, typer.Option(
        help="Open connections beyond this are answered 503 and closed.")] = MAX_CONNECTIONS,
    otlp_grpc_port: Annotated[int, typer.Option(
        help="Port of the OTLP/gRPC traces service (0 = off).")] = 4317,
    policy: Annotated[Path | None, typer.Option(
        "--policy", help="Policy file (YAML/TOML) of the live pipeline: its `reconcile:` "
                         "section prices the legs, its governance sections decide the gates. "
                         "Default: the shipped policy.")] = None,
    no_pipeline: Annotated[bool, typer.Option(
        "--no-pipeline", help="Only store events: no reconcile or gates after each round "
                              "(run them with the CLI).")] = False,
    otlp_hold_seconds: Annotated[float, typer.Option(
        help="Seconds an OTLP span waits for its trace's root span before its trace is "
             "decided without it.")] = WAIT_S,
    otlp_hold_spans: Annotated[int, typer.Option(
        help="OTLP spans held at most (waiting for their root); beyond, the oldest traces "
             "are decided early.")] = MAX_SPANS,
    otlp_hold_bytes: Annotated[int, typer.Option(
        help="Estimated bytes of held OTLP spans at most; beyond, the oldest traces are "
             "decided early.")] = MAX_BYTES,
) -> None:
    """Run the collector: HTTP events, OTLP traces and the read API, as the store's only writer.

    After every round that committed new data, the live pipeline reconciles what changed and
    evaluates the gates (docs/collector.md §The live pipeline); --no-pipeline turns it off."""
    import uvicorn

    from alphatrace.server.app import NO_KEYS, create_app
    from alphatrace.server.limits import Limits
    from alphatrace.server.listen import bind
    from alphatrace.server.metrics_routes import is_loopback
    from alphatrace.server.pipeline import PipelineConfig
    from alphatrace.server.sizing_fast import serving_protocol

    for d in follow or []:
        if not d.is_dir():
            raise InputError(f"--follow {d}: not a folder")
    for d in follow_market or []:
        if not d.is_dir():
            raise InputError(f"--follow-market {d}: not a folder")
    try:
        limits = Limits(header_timeout, body_timeout, max_connections)
    except ValueError as e:
        raise InputError(f"--header-timeout/--body-timeout/--max-connections: {e}") from None
    if no_pipeline and policy is not None:
        raise InputError("--policy configures the live pipeline: not with --no-pipeline")
    try:
        hold = TraceHold(wait_s=otlp_hold_seconds, max_spans=otlp_hold_spans,
                         max_bytes=otlp_hold_bytes)
    except ValueError:
        raise InputError("--otlp-hold-seconds/--otlp-hold-spans/--otlp-hold-bytes must be "
                         ">= 0") from None
    live = None if no_pipeline else PipelineConfig.load(str(policy) if policy else None)
    app = create_app(db, follow=follow or [], follow_market=follow_market or [],
                     warn_without_keys=False, metrics_public=is_loopback(host), pipeline=live,
                     policy=live.governance if live is not None else None, trace_hold=hold)
    try:
        # Before any banner: a port in use is one line and exit 2, not a startup then a crash.
        sock = bind(host, port)
        port = int(sock.getsockname()[1])  # the real one when --port 0
        if otlp_grpc_port:
            app.state.stop_first.append(start_grpc(app, host, otlp_grpc_port).stop)
    except InputError:
        app.state.writer.store.close()
        raise
    n_keys = len(app.state.keyring)
    err_console.print(
        f"[bold]alphatrace collector[/] on http://{host}:{port}  (docs: /docs, "
        f"{n_keys} active key{'s' if n_keys != 1 else ''})", highlight=False,
    )
    if otlp_grpc_port:
        err_console.print(f"[bold]OTLP/gRPC[/] on {host}:{otlp_grpc_port}", highlight=False)
    err_console.print(f"[bold]dashboard[/] on http://{host}:{port}/  "
                      "(sign in with a key of scope read)", highlight=False)
    err_console.print("[bold]live pipeline[/] " + (
        "off (--no-pipeline): run reconcile and gates evaluate yourself" if live is None
        else f"on: reconcile + gates after each round (policy {live.path})"), highlight=False)
    if not n_keys:
        err_console.print(Text(NO_KEYS, style="yellow"))
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=10, http=serving_protocol(limits, app.state))
    from alphatrace.store import discovery

    served = None
    if app.state.db_abs is not None:
        local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
        local = f"[{local}]" if ":" in local and not local.startswith("[") else local
        served = discovery.write(app.state.db_abs, f"http://{local}:{port}")
        app.state.local_token = served.token
        # At shutdown, inside the app's lifespan: uvicorn ends the process by re-raising the
        # signal that stopped it, so code after `run` is not reached on Ctrl-C or SIGTERM.
        app.state.stop_first.append(partial(discovery.remove, app.state.db_abs, served))
    tune_for_serving(app)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if served is not None:
            discovery.remove(app.state.db_abs, served)


def start_grpc(app: Any, host: str, port: int) -> Any:
    """The OTLP/gRPC service of `app`, bound and serving (InputError if it cannot bind)."""
    from alphatrace.server.otlp_grpc import GrpcServer

    server = GrpcServer(app.state.writer, app.state.trace_hold, app.state.keyring,
                        app.state.prices, host, port, app.state.max_body)
    server.start()
    return server


@keys_app.command("create")
@handle_errors
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key (unique).")],
    scope: Annotated[str, typer.Option("--scope", help="ingest | read | admin")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key. It is printed once; only its hash is stored."""
    from alphatrace.server.keys import create_key

    with open_store(db) as store:
        doc = create_key(store, name, scope)
    if as_json:
        print_json(doc)
        return
    console.print(f"key [bold]{doc['name']}[/] (scope {doc['scope']}):")
    console.print(doc["key"], highlight=False, markup=False)
    console.print("[dim]Shown once: store it now. Send it as `Authorization: Bearer <key>`.[/]")


@keys_app.command("list")
@handle_errors
def keys_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Keys with name, scope, prefix and state (never the keys themselves)."""
    from alphatrace.server.keys import list_keys

    with open_store(db) as store:
        rows = list_keys(store)
    emit(rows, as_json, columns=["name", "scope", "prefix", "created_at", "revoked", "revoked_at"],
         title="API keys")


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: it stops working at the next server start (or at once via DELETE /v1/keys)."""
    from alphatrace.server.keys import revoke_key

    with open_store(db) as store:
        doc = revoke_key(store, name)
    emit(doc, as_json, title="revoked")


def run_follow(dirs: list[Path], *, once: bool, max_seconds: float | None, poll: float,
               db: Path | None, as_json: bool) -> None:
    """The body of `alphatrace follow` (and of `alphatrace ingest --follow`)."""
    from alphatrace.sdk.follow import FollowReport, follow

    for d in dirs:
        if not d.is_dir():
            raise InputError(f"{d}: not a folder")
    stop = threading.Event()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def should_stop() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    def on_pass(r: FollowReport) -> None:
        if not as_json and r.files:
            console.print(f"[green]+{r.files} file(s)[/]: {r.accepted:,} accepted, "
                          f"{r.duplicates:,} duplicates, {r.quarantined:,} quarantined")

    with open_store(db) as store:
        try:
            total = follow(store, dirs, once=once, poll_s=poll, stop=should_stop, on_pass=on_pass)
        except KeyboardInterrupt:
            total = None
    if total is not None:
        emit(total.to_dict(), as_json, title="spool pickup")


@handle_errors
def follow_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="Spool folders to tail.")],
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    max_seconds: Annotated[float | None, typer.Option(
        "--max-seconds", help="Stop after this many seconds.")] = None,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between passes.")] = 1.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tail spool folders: ingest each closed file exactly once, across restarts."""
    run_follow(dirs, once=once, max_seconds=max_seconds, poll=poll, db=db, as_json=as_json)
