"""The dashboard on a collector app (in process): who gets in, what each route answers, and
that hostile names come out as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alphatrace.server.app import create_app
from alphatrace.server.dashboard import mount
from alphatrace.server.dashboard.session import COOKIE
from alphatrace.server.keys import active_keys, create_key
from tests.dashboard.util import (
    EVIL_AGENT,
    EVIL_RUN,
    EVIL_STRATEGY,
    EVIL_SYMBOL,
    KILL_POLICY,
    evaluate,
    make_store,
)


@dataclass
class Site:
    client: TestClient
    keys: dict[str, str]

    def bearer(self, scope: str = "read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("dash-routes")
    db = tmp / "d.duckdb"
    store = make_store(db)
    keys = {s: create_key(store, f"k-{s}", s)["key"] for s in ("ingest", "read", "admin")}
    evaluate(store, KILL_POLICY, tmp)
    store.close()
    app = create_app(db)
    mount(app, wait_s=60)
    mount(app)  # idempotent
    with TestClient(app, base_url="http://testserver") as client:
        yield Site(client, keys)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def login(site: Site, key: str, nxt: str = "/") -> TestClient:
    c = TestClient(site.client.app, base_url="http://testserver")
    r = c.post("/login", data={"key": key, "next": nxt}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def test_pages_need_a_session_or_a_key(site: Site) -> None:
    c = site.client
    r = c.get("/agent?name=A", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fagent%3Fname%3DA"
    assert c.get("/v1/dash/overview").status_code == 401
    assert c.get("/v1/dash/overview", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/v1/dash/overview", headers=site.bearer("ingest")).status_code == 403
    assert c.get("/", headers=site.bearer("ingest")).status_code == 403
    for scope in ("read", "admin"):
        assert c.get("/v1/dash/overview", headers=site.bearer(scope)).status_code == 200
        assert c.get("/", headers=site.bearer(scope)).status_code == 200
    # A wrong Bearer key is refused even with a valid session cookie beside it.
    browser = login(site, site.keys["read"])
    assert browser.get("/v1/dash/overview", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(site: Site) -> None:
    c = TestClient(site.client.app, base_url="http://testserver")
    bad = c.post("/login", data={"key": "atk_wrong", "next": "/"}, follow_redirects=False)
    assert bad.status_code == 401 and "Unknown or revoked key" in bad.text
    ingest = c.post("/login", data={"key": site.keys["ingest"]}, follow_redirects=False)
    assert ingest.status_code == 403 and "scope ingest" in ingest.text
    r = c.post("/login", data={"key": site.keys["read"], "next": "/forensics?agent=A"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/forensics?agent=A"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert site.keys["read"] not in cookie
    assert c.get("/").status_code == 200
    assert c.get("/login", follow_redirects=False).headers["location"] == "/"
    out = c.post("/logout", follow_redirects=False)
    assert out.status_code == 303
    assert c.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil", "evil"])
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    c = TestClient(site.client.app, base_url="http://testserver")
    r = c.post("/login", data={"key": site.keys["read"], "next": target}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_revoking_a_key_ends_its_sessions(site: Site, tmp_path: Path) -> None:
    c = login(site, site.keys["admin"])
    assert c.get("/").status_code == 200
    ring = site.client.app.state.keyring
    writer = site.client.app.state.writer
    saved = active_keys(writer.store.con)
    ring.replace([k for k in saved if k[1] != "k-admin"])
    try:
        assert c.get("/", follow_redirects=False).status_code == 303
        assert c.get("/v1/dash/overview").status_code == 401
    finally:
        ring.replace(saved)


def test_overview_json_and_errors(site: Site) -> None:
    c, h = site.client, site.bearer()
    doc = c.get("/v1/dash/overview", headers=h).json()
    a = {r["name"]: r for r in doc["agents"]}["A"]
    assert a["net_usd"] == pytest.approx(-7.0) and a["runs"] == 4
    b = {r["name"]: r for r in doc["agents"]}["B"]
    assert b["state"] == "killed" and b["last_decision"]["action"] == "kill"
    f = c.get("/v1/dash/overview?strategy=S2&sort=runs&order=asc", headers=h).json()
    assert [r["name"] for r in f["agents"]] == ["B"]
    r = c.get("/v1/dash/overview?since=someday", headers=h)
    assert r.status_code == 400 and "since" in r.json()["detail"]
    assert c.get("/v1/dash/overview?sort=evil", headers=h).status_code == 400
    assert c.get("/v1/dash/agent?name=nobody", headers=h).status_code == 404
    assert c.get("/v1/dash/agent?name=A&points=3", headers=h).status_code == 400
    assert c.get("/v1/dash/run?id=nope", headers=h).status_code == 404
    assert c.get("/v1/dash/forensics?x=drop", headers=h).status_code == 400
    assert c.get("/v1/dash/decisions?limit=0", headers=h).status_code == 400
    agent = c.get("/v1/dash/agent", params={"name": EVIL_AGENT, "points": 50}, headers=h).json()
    assert agent["agent"] == EVIL_AGENT and agent["series"]["run_id"] == [EVIL_RUN]
    run = c.get("/v1/dash/run", params={"id": EVIL_RUN}, headers=h).json()
    assert any(e.get("symbol") == EVIL_SYMBOL for e in run["events"])
    dec = c.get("/v1/dash/decisions", headers=h).json()
    assert dec["verify"]["ok"] is True and dec["total"] == 6
    fx = c.get("/v1/dash/forensics", headers=h).json()
    assert fx["status"] == "ready" and fx["scatter"]["of_runs"] == 7


def test_pages_escape_hostile_names_and_carry_a_strict_csp(site: Site) -> None:
    c, h = site.client, site.bearer()
    pages = [c.get("/", headers=h), c.get("/agent", params={"name": EVIL_AGENT}, headers=h),
             c.get("/run", params={"id": EVIL_RUN}, headers=h), c.get("/decisions", headers=h),
             c.get("/forensics", headers=h)]
    for r in pages:
        assert r.status_code == 200, r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        for evil in (EVIL_AGENT, EVIL_STRATEGY, EVIL_SYMBOL, "</script><script>alert(5)"):
            assert evil not in r.text
        # Read as a browser would: the only script is our own file, no element from the data,
        # no event-handler attribute anywhere.
        tags = Tags()
        tags.feed(r.text)
        scripts = [a for t, a in tags.found if t == "script"]
        assert len(scripts) == 1 and re.fullmatch(r"/dash/static/dash\.js\?v=[0-9a-f]{12}",
                                                  scripts[0]["src"] or "")
        assert not {t for t, _ in tags.found} & {"img", "svg", "iframe", "object"}
        assert not [k for _, a in tags.found for k in a if k.startswith("on")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].text
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[2].text
    assert "&lt;/script&gt;&lt;script&gt;alert(5)&lt;/script&gt;" in pages[2].text


def test_agent_page_lists_decisions_and_links_runs(site: Site) -> None:
    r = site.client.get("/agent?name=B", headers=site.bearer())
    assert "kill_losses" in r.text and 'href="/run?id=b1"' in r.text
    assert 'data-src="/v1/dash/agent?name=B"' in r.text
    missing = site.client.get("/agent?name=nobody", headers=site.bearer())
    assert missing.status_code == 404 and "no agent named" in missing.text


def test_static_assets_need_no_key(site: Site) -> None:
    r = site.client.get("/dash/static/dash.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert site.client.get("/dash/static/dash.css").status_code == 200
    assert site.client.get("/dash/static/../layout.py").status_code == 404
