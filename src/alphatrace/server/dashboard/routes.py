"""The dashboard's routes on the collector app: pages at `/`, their JSON at `/v1/dash/...`,
assets at `/dash/static/...`, and the sign-in form.

Every page and JSON endpoint needs read access (session cookie or Bearer key); a page without
it redirects to the sign-in form, JSON answers 401/403. Reads use the request thread's own
cursor (the writer's `reader()`), so the dashboard never waits behind ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import duckdb
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from alphatrace.errors import AlphatraceError, InputError, NotFoundError
from alphatrace.server.auth import GRANTS
from alphatrace.server.dashboard import agent as agent_doc
from alphatrace.server.dashboard import decisions as decisions_doc
from alphatrace.server.dashboard import forensics as forensics_doc
from alphatrace.server.dashboard import layout, views
from alphatrace.server.dashboard import overview as overview_doc
from alphatrace.server.dashboard import run as run_doc
from alphatrace.server.dashboard.html import Html, el
from alphatrace.server.dashboard.links import Links
from alphatrace.server.dashboard.params import (
    DEFAULT_POINTS,
    DEFAULT_SCATTER_POINTS,
    RunFilter,
    feature,
    points,
    sort_key,
)
from alphatrace.server.dashboard.session import COOKIE, DEFAULT_TTL_S, Sessions, access, safe_next
from alphatrace.server.dashboard.source import PolicyArg, Source
from alphatrace.server.writer import Writer

LINKS = Links()
PAGE_HEADERS = {
    "Content-Security-Policy": layout.SERVED_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
WARM_AGENTS = 20  # agent pages computed ahead, largest first
JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass
class Dashboard:
    source: Source
    sessions: Sessions
    warmed: Any = None

    def warm(self, con: duckdb.DuckDBPyConnection) -> None:
        """Start the heavy results of the current data version in the background, with the
        unfiltered overview (the page everyone opens first) and the pages of the agents with
        the most runs (the slowest to compute)."""
        version = self.source.version(con)
        if version == self.warmed:
            return
        self.warmed = version
        src = self.source

        def default_overview() -> dict[str, Any]:
            with src.connect() as c:
                return overview_doc.rows(src, c, RunFilter())

        def agent_page(name: str) -> Callable[[], dict[str, Any]]:
            def build() -> dict[str, Any]:
                with src.connect() as c:
                    return agent_doc.core(src, c, version, name, DEFAULT_POINTS)
            return build

        top = [str(r[0]) for r in con.execute(
            f"SELECT agent FROM ledger WHERE agent IS NOT NULL GROUP BY agent "
            f"ORDER BY count(*) DESC, agent LIMIT {WARM_AGENTS}").fetchall()]
        src.warm(version, first=[(overview_doc.cache_key(version, RunFilter()), default_overview)],
                 later=[(agent_doc.cache_key(version, a, DEFAULT_POINTS), agent_page(a))
                        for a in top])


def _dash(request: Request) -> Dashboard:
    d: Dashboard = request.app.state.dashboard
    return d


def _status(e: AlphatraceError) -> int:
    return 404 if isinstance(e, NotFoundError) else 400


Build = Callable[[duckdb.DuckDBPyConnection, Dashboard], tuple[str, Html]]


def _page(request: Request, active: str | None, build: Build, *, refresh: bool = False) -> Response:
    d = _dash(request)
    acc = access(request, d.sessions)
    if acc.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
    if acc.status == 403:
        return _html("Forbidden", views.error_page(
            "This key cannot read: the dashboard needs a key with scope read or admin."),
            active, 403)
    writer: Writer = request.app.state.writer
    note: Html | None = None
    try:
        with writer.reader() as con:
            d.warm(con)
            title, body = build(con, d)
        if refresh and "forensics-pending" in body:
            note = el("meta", http_equiv="refresh", content="5")
    except AlphatraceError as e:
        return _html("Not available", views.error_page(str(e)), active, _status(e))
    return _html(title, body, active, 200, note)


def _html(title: str, body: Html, active: str | None, status: int,
          note: Html | None = None, signed_in: bool = True) -> HTMLResponse:
    text = layout.page(title, body, LINKS, active=active, signed_in=signed_in, status_note=note)
    return HTMLResponse(text, status_code=status, headers=PAGE_HEADERS)


def _json(request: Request, build: Callable[[duckdb.DuckDBPyConnection, Dashboard], Any]) -> Response:
    d = _dash(request)
    acc = access(request, d.sessions)
    if acc.status != 200:
        detail = "unauthorized" if acc.status == 401 else "forbidden"
        headers = {"WWW-Authenticate": "Bearer"} if acc.status == 401 else {}
        return JSONResponse({"detail": detail}, status_code=acc.status, headers=headers)
    writer: Writer = request.app.state.writer
    try:
        with writer.reader() as con:
            d.warm(con)
            doc = build(con, d)
    except AlphatraceError as e:
        return JSONResponse({"detail": str(e)}, status_code=_status(e), headers=JSON_HEADERS)
    return JSONResponse(doc, headers=JSON_HEADERS)


def _query(**values: str | int | None) -> dict[str, object]:
    return {k: v for k, v in values.items() if v not in (None, "")}


def _names(con: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    return [str(r[0]) for r in con.execute(
        f"SELECT DISTINCT {column} FROM ledger WHERE {column} IS NOT NULL ORDER BY 1").fetchall()]


router = APIRouter(include_in_schema=False)


# --- pages --------------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, strategy: str | None = None, since: str | None = None,
                  until: str | None = None, sort: str | None = None,
                  order: str | None = None) -> Response:
    def build(con: duckdb.DuckDBPyConnection, d: Dashboard) -> tuple[str, Html]:
        doc = overview_doc.overview(d.source, con, RunFilter.parse(strategy, since, until),
                                    sort_key(sort, order))
        q = _query(strategy=strategy, since=since, until=until, sort=sort, order=order)
        return "Overview", views.overview_page(doc, LINKS, q)

    return _page(request, "overview", build)


@router.get("/agent", response_class=HTMLResponse)
def agent_page(request: Request, name: str = "", n: Annotated[int | None, Query(alias="points")] = None) -> Response:
    def build(con: duckdb.DuckDBPyConnection, d: Dashboard) -> tuple[str, Html]:
        doc = agent_doc.agent(d.source, con, name, points(n))
        return f"Agent {name}", views.agent_page(doc, LINKS)

    return _page(request, None, build)


@router.get("/forensics", response_class=HTMLResponse)
def forensics_page(request: Request, agent: str | None = None, strategy: str | None = None,
                   x: str | None = None, y: str | None = None,
                   cluster: int | None = None) -> Response:
    def build(con: duckdb.DuckDBPyConnection, d: Dashboard) -> tuple[str, Html]:
        doc = _forensics(con, d, agent, strategy, x, y, cluster, None)
        q = _query(agent=agent, strategy=strategy, x=x, y=y)
        return "Forensics", views.forensics_page(doc, LINKS, q, _names(con, "agent"),
                                                 _names(con, "strategy"))

    return _page(request, "forensics", build, refresh=True)


@router.get("/run", response_class=HTMLResponse)
def run_page(request: Request, id: str = "") -> Response:
    def build(con: duckdb.DuckDBPyConnection, d: Dashboard) -> tuple[str, Html]:
        return f"Run {id}", views.run_page(run_doc.run(d.source, con, id), LINKS)

    return _page(request, None, build)


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, limit: int = 200, offset: int = 0) -> Response:
    def build(con: duckdb.DuckDBPyConnection, d: Dashboard) -> tuple[str, Html]:
        doc = _decisions(con, d, limit, offset)
        return "Decisions", views.decisions_page(doc, LINKS)

    return _page(request, "decisions", build)


# --- JSON ---------------------------------------------------------------------------------------

def _forensics(con: duckdb.DuckDBPyConnection, d: Dashboard, agent: str | None,
               strategy: str | None, x: str | None, y: str | None, cluster: int | None,
               n: int | None) -> dict[str, Any]:
    fx = feature(x, "latency_ms") if x else None
    fy = feature(y, "cost_usd") if y else None
    return forensics_doc.forensics(d.source, con, agent or None, strategy or None, fx, fy, cluster,
                                   points(n, DEFAULT_SCATTER_POINTS))


def _decisions(con: duckdb.DuckDBPyConnection, d: Dashboard, limit: int, offset: int) -> dict[str, Any]:
    if not 1 <= limit <= decisions_doc.MAX_LIMIT or offset < 0:
        raise InputError(f"limit must be 1..{decisions_doc.MAX_LIMIT} and offset ≥ 0")
    return decisions_doc.decisions(d.source, con, limit, offset)


@router.get("/v1/dash/overview")
def overview_json(request: Request, strategy: str | None = None, since: str | None = None,
                  until: str | None = None, sort: str | None = None,
                  order: str | None = None) -> Response:
    return _json(request, lambda con, d: overview_doc.overview(
        d.source, con, RunFilter.parse(strategy, since, until), sort_key(sort, order)))


@router.get("/v1/dash/agent")
def agent_json(request: Request, name: str = "", n: Annotated[int | None, Query(alias="points")] = None) -> Response:
    return _json(request, lambda con, d: agent_doc.agent(d.source, con, name, points(n)))


@router.get("/v1/dash/forensics")
def forensics_json(request: Request, agent: str | None = None, strategy: str | None = None,
                   x: str | None = None, y: str | None = None, cluster: int | None = None,
                   n: Annotated[int | None, Query(alias="points")] = None) -> Response:
    return _json(request, lambda con, d: _forensics(con, d, agent, strategy, x, y, cluster, n))


@router.get("/v1/dash/run")
def run_json(request: Request, id: str = "") -> Response:
    return _json(request, lambda con, d: run_doc.run(d.source, con, id))


@router.get("/v1/dash/decisions")
def decisions_json(request: Request, limit: int = 200, offset: int = 0) -> Response:
    return _json(request, lambda con, d: _decisions(con, d, limit, offset))


# --- signing in -------------------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    target = safe_next(next)
    if access(request, _dash(request).sessions).status == 200:
        return RedirectResponse(target, status_code=303)
    return _html("Sign in", views.login_page(target, None), None, 200, signed_in=False)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    d = _dash(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    key = (form.get("key") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    who = request.app.state.keyring.verify(key) if key else None
    if who is None:
        return _html("Sign in", views.login_page(target, "Unknown or revoked key."), None, 401,
                     signed_in=False)
    if "read" not in GRANTS.get(who.scope, frozenset()):
        return _html("Sign in", views.login_page(
            target, f"Key {who.name!r} has scope {who.scope}: the dashboard needs read or admin."),
            None, 403, signed_in=False)
    token = d.sessions.create(key)
    writer: Writer = request.app.state.writer
    with writer.reader() as con:  # start the heavy results while the browser follows the redirect
        d.warm(con)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(COOKIE, token, max_age=int(d.sessions.ttl_s), httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/")
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        _dash(request).sessions.drop(token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


def mount(app: FastAPI, *, policy: PolicyArg = None, wait_s: float | None = 3.0,
          session_ttl_s: float = DEFAULT_TTL_S) -> None:
    """Add the dashboard to a collector app from `create_app` (idempotent).

    `policy`: the policy the pages' confidence and forensics use (default: the shipped one).
    `wait_s`: how long a page waits for a heavy result (the loss-cluster
    search, the audit re-computation) before showing 'computing' and polling.
    """
    if getattr(app.state, "dashboard", None) is not None:
        return
    writer: Writer = app.state.writer
    source = Source(writer.reader, policy=policy, wait_s=wait_s)
    writer.before_close(source.memo.shutdown)
    app.state.dashboard = Dashboard(source, Sessions(session_ttl_s))
    app.include_router(router)
    app.mount(layout.STATIC_PREFIX, StaticFiles(directory=layout.STATIC), name="dashboard-static")
