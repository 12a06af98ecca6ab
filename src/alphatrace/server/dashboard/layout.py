"""The page shell: head, navigation, assets. Served pages link `/dash/static/*` (strict CSP,
no inline code); the report inlines the same CSS and JS and pins them with CSP hashes, so
the file works offline and still runs nothing but its own script."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path

from alphatrace.server.dashboard.html import Html, el, join
from alphatrace.server.dashboard.links import Links

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/dash/static"
NAV = (("overview", "Overview"), ("forensics", "Forensics"), ("decisions", "Decisions"))

SERVED_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@cache
def asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@cache
def asset_version() -> str:
    """Cache-busting token for the static URLs: changes when the assets do."""
    h = hashlib.sha256()
    for name in ("dash.css", "dash.js"):
        h.update(asset(name).encode("utf-8"))
    return h.hexdigest()[:12]


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _nav(links: Links, active: str | None, signed_in: bool) -> Html:
    items = []
    for key, label in NAV:
        href = getattr(links, key)()
        items.append(el("a", label, href=href, class_="active" if key == active else None))
    logout = el("form", el("button", "sign out", type="submit", class_="link"), method="post",
                action="/logout", class_="logout") if signed_in and not links.report else None
    return el("header", el("nav", el("span", "alphatrace", class_="brand"), *items, logout))


def page(title: str, body: Html, links: Links, *, active: str | None, signed_in: bool,
         status_note: Html | None = None) -> str:
    """A served page."""
    v = asset_version()
    return "<!doctype html>" + el(
        "html",
        el("head",
           el("meta", charset="utf-8"),
           el("meta", name="viewport", content="width=device-width, initial-scale=1"),
           el("title", f"{title} · alphatrace"),
           el("link", rel="icon", href="data:,"),
           el("link", rel="stylesheet", href=f"{STATIC_PREFIX}/dash.css?v={v}"),
           el("script", src=f"{STATIC_PREFIX}/dash.js?v={v}", defer=True),
           status_note),
        el("body", _nav(links, active, signed_in), el("main", body)),
        lang="en")


def report(sections: list[tuple[str, str, Html]], links: Links, data_script: Html,
           title: str) -> str:
    """The one-file report: every section in one document; `:target` shows one at a time
    (the overview, placed last, when none is targeted), so navigation needs no script."""
    css, js = asset("dash.css"), asset("dash.js")
    csp = (f"default-src 'none'; script-src {csp_hash(js)}; style-src {csp_hash(css)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    body = [el("section", content, class_="page" + (" default" if sid == "overview" else ""),
               id=sid, data_title=stitle) for sid, stitle, content in sections]
    return "<!doctype html>" + el(
        "html",
        el("head",
           el("meta", charset="utf-8"),
           el("meta", http_equiv="Content-Security-Policy", content=csp),
           el("meta", name="viewport", content="width=device-width, initial-scale=1"),
           el("title", title),
           Html(f"<style>{css}</style>")),
        el("body", _nav(links, None, False), el("main", join(*body)), data_script,
           Html(f"<script>{js}</script>"), class_="report"),
        lang="en") + "\n"
