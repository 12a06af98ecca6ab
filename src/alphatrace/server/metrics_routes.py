"""GET /metrics: the app's registry in the Prometheus text format (or OpenMetrics, if asked).

Auth: scope `read`, like every read; without a key only when the app was created with
`metrics_public=True`, which `alphatrace serve` sets when it binds a loopback address (a
Prometheus on the same host scrapes without a key; nothing off the host reaches it).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder

from alphatrace.server.auth import require
from alphatrace.server.ingest_routes import AUTH_ERRORS


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1); a name or a wildcard
    (0.0.0.0, ::) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def router(public: bool) -> APIRouter:
    """The /metrics route: without a key when `public`, else with scope read. Built per app so
    that the OpenAPI document says which (a keyed route documents its 401/403)."""
    r = APIRouter(tags=["health"])
    deps = [] if public else [Depends(require("read"))]
    errors: dict[int | str, dict[str, Any]] = {} if public else AUTH_ERRORS
    r.add_api_route(
        "/metrics", get_metrics, methods=["GET"], dependencies=deps,
        summary="Operational metrics (Prometheus)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
                   **errors},
    )
    return r


def get_metrics(request: Request) -> Response:
    """Events per source, kind and status; ingest round durations; open legs and decisions
    by action (read from the store now). See docs/collector.md, "/metrics"."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(request.app.state.metrics.registry), media_type=content_type)
