"""OTLP/gRPC traces: `alphatrace serve --otlp-grpc-port 4317` (0 = off).

The same Export as `POST /v1/traces` (`otlp_export.export`: span mapping, the same trace
hold, per-span rejection, quarantine, partial_success), behind the same API keys: metadata `authorization: Bearer <key>`
with scope `ingest` (none or unknown → UNAUTHENTICATED, wrong scope → PERMISSION_DENIED). A
busy writer is UNAVAILABLE, which OTLP exporters retry. gzip-compressed messages are decoded
by gRPC itself; a message may be at most the HTTP body limit (5 MB).

The server runs on its own thread with its own asyncio loop (grpc.aio), beside uvicorn's, and
hands events to the same single writer. It binds when started, before the collector announces
itself, so a port in use is one line and exit 2, as for the HTTP port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from alphatrace.errors import InputError
from alphatrace.server.auth import KeyRing, allows, bearer_principal
from alphatrace.server.listen import bind
from alphatrace.server.otlp_export import export, partial_message
from alphatrace.server.otlp_proto import message_events
from alphatrace.server.trace_hold import TraceHold
from alphatrace.server.writer import Busy, Writer

log = logging.getLogger("alphatrace.server")
OPTION = "--otlp-grpc-port"


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, writer: Writer, hold: TraceHold, ring: KeyRing, prices: Any) -> None:
        self.writer, self.hold, self.ring, self.prices = writer, hold, ring, prices

    async def Export(
        self, request: ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> ExportTraceServiceResponse:
        auth = None
        for key, value in context.invocation_metadata() or ():
            if key.lower() == "authorization":
                auth = value if isinstance(value, str) else value.decode("latin-1")
        who = bearer_principal(self.ring, auth)
        if who is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unauthorized")
        assert who is not None  # abort raises
        if not allows(who, "ingest"):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "forbidden")
        try:
            rejected, message = await export(self.writer, self.hold,
                                             message_events(request, self.prices))
        except Busy:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "collector busy: retry later")
        return partial_message(rejected, message)


class GrpcServer:
    """The OTLP/gRPC service on (host, port), on its own thread; `start()` binds or raises."""

    def __init__(self, writer: Writer, hold: TraceHold, ring: KeyRing, prices: Any, host: str,
                 port: int, max_message: int) -> None:
        self.service = TraceService(writer, hold, ring, prices)
        self.host, self.port, self.max_message = host, port, max_message
        self._bound: Future[int] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="alphatrace-otlp-grpc", daemon=True)

    def start(self) -> int:
        """Bind and serve; the bound port, or InputError (in use, privileged, bad host)."""
        # gRPC reports a failed bind without the reason, and by default shares a port in use
        # (SO_REUSEPORT, disabled below): a plain bind first says why in one line.
        bind(self.host, self.port, option=OPTION).close()
        self._thread.start()
        return self._bound.result(timeout=60)

    def stop(self, grace_s: float = 5.0) -> None:
        """Finish the calls in flight (up to `grace_s`), then stop; before the writer stops."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(grace_s + 5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to start(), or logged if it ends later
            if not self._bound.done():
                self._bound.set_exception(e)
            else:
                log.exception("OTLP/gRPC server stopped")
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = grpc.aio.server(options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", self.max_message),
        ])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self.service, server)
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as e:
            raise InputError(f"cannot listen on {address} ({OPTION}): {e}") from None
        if port == 0:
            raise InputError(f"cannot listen on {address} ({OPTION})")
        await server.start()
        self._bound.set_result(port)
        await self._stop.wait()
        await server.stop(5.0)
