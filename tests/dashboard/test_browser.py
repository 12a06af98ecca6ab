"""End to end in a real headless Chromium (Debian's, driven by Playwright) against the dashboard
served on 127.0.0.1 over the demo store: sign in, every page, agent → run links, a filter, the
charts counted against the JSON API, hostile names, the pages without JavaScript, the report.

Screenshots go to test-artifacts/dashboard/ (the README's come from the plain demo store:
`python -m tests.dashboard.readme_screenshots`). Without /usr/bin/chromium the module is
skipped, except under CI (env CI set), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.dashboard.browser_data import SLOW_AGENT, build
from tests.dashboard.util import EVIL_AGENT, EVIL_RUN, EVIL_STRATEGY, EVIL_SYMBOL

pytestmark = pytest.mark.slow  # see `make test-fast`

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "dashboard"


def need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("CI: /usr/bin/chromium is missing (apt-get install -y chromium)")
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    key: str
    db: Path
    tmp: Path

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params,
                      headers={"Authorization": f"Bearer {self.key}"}, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    need_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "demo.duckdb"
    key = build(db)
    shutil.copy(db, tmp / "copy.duckdb")  # for the report: the server holds the store's lock
    port = free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.dashboard.serve_app", str(db), str(port)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    srv = Live(f"http://127.0.0.1:{port}", key, db, tmp)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(srv.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start: " + log.read_text()
            time.sleep(0.1)
        # Let the background cluster searches finish, so pages and API agree from here on.
        for params in ({}, {"agent": SLOW_AGENT}):
            while srv.api("/v1/dash/forensics", **params)["status"] == "computing":
                assert time.monotonic() < deadline + 120
                time.sleep(0.5)
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    page: Any
    dialogs: list[str]
    errors: list[str]


def open_tab(browser: Any, live: Live, *, js: bool = True) -> Tab:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, java_script_enabled=js)
    page = ctx.new_page()
    tab = Tab(page, [], [])
    page.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.goto(live.url + "/")
    assert "/login" in page.url
    page.fill("#key", live.key)
    page.click("#login-submit")
    page.wait_for_url(live.url + "/")
    return tab


@pytest.fixture
def tab(browser: Any, live: Live) -> Iterator[Tab]:
    t = open_tab(browser, live)
    yield t
    assert t.dialogs == [], "a script from the data ran"
    assert t.errors == []
    t.page.context.close()


def rendered(page: Any, scope: str = "") -> None:
    expect(page.locator(f"{scope} [data-chart]:not([data-rendered])")).to_have_count(0, timeout=20_000)
    expect(page.locator(f"{scope} [data-chart][data-rendered=error]")).to_have_count(0)


def shot(page: Any, name: str) -> None:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)


def vertices(page: Any, chart: str, series: str | None = None) -> list[int]:
    """Points drawn per line of a chart, read from the SVG path data itself."""
    sel = f"[data-chart={chart}] path.series" + (f"[data-series='{series}']" if series else "")
    return [len(re.findall(r"[ML]", d)) for d in page.locator(sel).evaluate_all(
        "els => els.map(e => e.getAttribute('d'))")]


def present(values: list[Any], positive: bool = False) -> int:
    return sum(1 for v in values if v is not None and (v > 0 or not positive))


def pnl_usd_lines_are_told_apart(page: Any) -> None:
    """Trading PnL is dashed on top of the wide net line, and the legend draws each the same."""
    chart = "[data-chart=agent-pnl-usd]"
    net = page.locator(f"{chart} path.series[data-series='net USD (after inference)']")
    trading = page.locator(f"{chart} path.series[data-series='trading PnL USD']")
    assert net.get_attribute("stroke-dasharray") is None
    assert trading.get_attribute("stroke-dasharray") == "6 4"
    assert float(net.get_attribute("stroke-width")) > float(trading.get_attribute("stroke-width"))
    legend = page.locator(f"{chart} g.legend-item")
    assert legend.locator("text").all_text_contents() == ["net USD (after inference)", "trading PnL USD"]
    assert legend.locator("line").evaluate_all(
        "els => els.map(e => e.getAttribute('stroke-dasharray'))") == [None, "6 4"]
    # trading is drawn last: on top where the two coincide
    assert page.locator(f"{chart} path.series").evaluate_all(
        "els => els.map(e => e.getAttribute('data-series'))")[-1] == "trading PnL USD"


def text_scale(page: Any, chart: str) -> float:
    """Screen pixels per SVG unit of a chart: its 11px text renders at 11 times this."""
    return float(page.locator(f"{chart} svg").first.evaluate(
        "s => s.getBoundingClientRect().width / s.viewBox.baseVal.width"))


def test_overview_filter_agent_and_run_pages(tab: Tab, live: Live) -> None:
    page = tab.page
    ov = live.api("/v1/dash/overview")
    rendered(page)
    rows = page.locator("table.agents tbody tr")
    expect(rows).to_have_count(len(ov["agents"]))
    assert rows.locator("a.agent-link").all_inner_texts() == [a["name"] for a in ov["agents"]]
    bars = page.locator("[data-chart=overview-net] rect.bar")
    expect(bars).to_have_count(present([a["net_usd"] for a in ov["agents"]]))
    # one number format on every bar: whole dollars with thousands separators
    labels = page.locator("[data-chart=overview-net] text.value").all_text_contents()
    assert labels == [("\u2212" if a["net_usd"] < 0 else "") + f"${abs(round(a['net_usd'])):,}"
                      for a in ov["agents"] if a["net_usd"] is not None]
    shot(page, "overview")

    # The agent with the most change points: its charts carry decisions and change marks.
    docs = {a["name"]: live.api("/v1/dash/agent", name=a["name"]) for a in ov["agents"]}
    name = max(docs, key=lambda n: (len(docs[n]["changepoints"]), n))
    doc = docs[name]
    strategy = doc["summary"]["strategies"][0]

    page.select_option("#strategy-filter", strategy)
    page.click("#apply-filter")
    page.wait_for_url(re.compile(r".*strategy=" + re.escape(quote(strategy))))
    rendered(page)
    filtered = live.api("/v1/dash/overview", strategy=strategy)
    assert 0 < len(filtered["agents"]) < len(ov["agents"])
    assert page.locator("table.agents a.agent-link").all_inner_texts() == [
        a["name"] for a in filtered["agents"]]
    expect(page.locator("[data-chart=overview-net] rect.bar")).to_have_count(len(filtered["agents"]))
    shot(page, "overview-filtered")

    page.locator("table.agents a.agent-link", has_text=re.compile(f"^{re.escape(name)}$")).click()
    page.wait_for_url(re.compile(r".*/agent\?name="))
    rendered(page)
    assert page.locator("h1 .agent-name").inner_text() == name
    s = doc["series"]
    assert vertices(page, "agent-pnl-bps") == [present(s["cum_pnl_bps"])]
    assert vertices(page, "agent-pnl-usd") == [present(s["cum_net_usd"]), present(s["cum_pnl_usd"])]
    pnl_usd_lines_are_told_apart(page)
    for card in ("net bps / run",):  # bps with two decimals, like the cents beside them
        value = page.locator(".card", has_text=card).locator(".card-v").inner_text()
        assert re.fullmatch(r"[+\u2212]?[\d,]+\.\d{2}", value), value
    assert vertices(page, "agent-latency") == [present(s["mean_latency_ms"])]
    assert vertices(page, "agent-tokens") == [present(s["tokens_per_run"])]
    assert vertices(page, "agent-cost") == [present(s["cost_per_run"])]
    assert vertices(page, "agent-confidence") == [present(doc["confidence"]["multiplier"], True)]
    assert len(s["t"]) == doc["summary"]["runs"]  # the demo's agents: one point per run

    def n_marks(metric: str | None, decisions: bool) -> int:
        cps = [c for c in doc["changepoints"] if c["metric"] == metric and c["t"] is not None]
        return len(cps) + (len(doc["marks"]) if decisions else 0)

    assert doc["marks"], "the demo's gates record a decision for every agent"
    for chart, metric, dec in (("agent-pnl-bps", "mean_pnl_bps", True), ("agent-pnl-usd", None, True),
                               ("agent-confidence", None, True), ("agent-cost", "cost_per_run", False),
                               ("agent-latency", "mean_latency_ms", False)):
        expect(page.locator(f"[data-chart={chart}] g.mark")).to_have_count(n_marks(metric, dec))
    expect(page.locator("table.decisions tbody tr")).to_have_count(len(doc["decisions"]))
    expect(page.locator("table.changepoints tbody tr")).to_have_count(max(1, len(doc["changepoints"])))
    shot(page, "agent")

    first = doc["runs"]["recent"][0]["run_id"]
    page.locator("table.recent a.run-link").first.click()
    page.wait_for_url(re.compile(r".*/run\?id="))
    rendered(page)
    run = live.api("/v1/dash/run", id=first)
    assert page.locator("h1 .run-id").inner_text() == first
    expect(page.locator("[data-chart=run-waterfall] rect.step")).to_have_count(
        len(run["explain"]["waterfall"]))
    expect(page.locator("table.events tbody tr")).to_have_count(len(run["events"]))
    assert page.locator("p.because").inner_text() == run["explain"]["because"]
    shot(page, "run")


def test_forensics_clusters_scatter_and_region(tab: Tab, live: Live) -> None:
    page = tab.page
    doc = live.api("/v1/dash/forensics", agent=SLOW_AGENT)
    assert doc["clusters"], "the slow runs of SlowLoserAgent are a loss cluster"
    page.goto(f"{live.url}/forensics?agent={SLOW_AGENT}")
    rendered(page)
    assert text_scale(page, "[data-chart=forensics-scatter]") == pytest.approx(1, abs=0.02)
    expect(page.locator("ol.clusters li.cluster")).to_have_count(len(doc["clusters"]))
    assert page.locator("ol.clusters li.cluster .cluster-pick").all_inner_texts() == [
        c["sentence"] for c in doc["clusters"]]
    chart = page.locator("[data-chart=forensics-scatter]")
    sc = doc["scatter"]
    first = doc["clusters"][0]
    assert {p["feature"] for p in first["predicates"]} & {sc["x"], sc["y"]}
    xs, ys = sc["values"][sc["x"]], sc["values"][sc["y"]]
    ok = [i for i in range(sc["points"]) if xs[i] is not None and ys[i] is not None]
    expect(chart.locator("circle.pt")).to_have_count(len(ok))
    expect(chart.locator("circle.in-cluster")).to_have_count(len(set(first["members"]) & set(ok)))
    expect(chart.locator("rect.region")).to_have_count(1)
    shot(page, "forensics")

    page.select_option("select[data-axis=y]", "tokens_in")
    expect(chart).to_have_attribute("data-y", "tokens_in")
    ty = sc["values"]["tokens_in"]
    expect(chart.locator("circle.pt")).to_have_count(
        sum(1 for i in range(sc["points"]) if xs[i] is not None and ty[i] is not None))
    expect(chart.locator("rect.region")).to_have_count(1)  # latency is still on x

    everything = live.api("/v1/dash/forensics")
    page.goto(f"{live.url}/forensics")
    rendered(page)
    expect(page.locator("[data-chart=forensics-scatter] circle.pt")).to_have_count(
        sum(1 for i in range(everything["scatter"]["points"])
            if everything["scatter"]["values"][everything["scatter"]["x"]][i] is not None
            and everything["scatter"]["values"][everything["scatter"]["y"]][i] is not None))
    expect(page.locator("table.changepoints tbody tr")).to_have_count(
        max(1, len(everything["changepoints"])))


def test_decisions_page_shows_verification(tab: Tab, live: Live) -> None:
    """The demo evaluated its gates before the extra agents' runs arrived, so `audit verify`
    finds that first evaluation would now decide more subjects (late data, not tampering); the
    evaluation recorded after them is intact."""
    page = tab.page
    doc = live.api("/v1/dash/decisions")
    page.click("header a:text('Decisions')")
    page.wait_for_url(live.url + "/decisions")
    statuses = [r["status"] for r in doc["records"]]
    assert doc["verify"]["ok"] is False and "inputs_changed" in statuses and "ok" in statuses
    expect(page.locator("#verify-status")).to_contain_text(
        f"found {doc['verify']['problems']} problem(s) in {doc['total']} records")
    expect(page.locator("table.audit tbody tr")).to_have_count(len(doc["records"]))
    assert page.locator("table.audit tbody tr td:nth-child(2)").all_inner_texts() == statuses
    assert page.locator("table.audit tbody tr td:nth-child(1)").all_inner_texts() == [
        str(r["seq"]) for r in doc["records"]]
    shot(page, "decisions")


def test_hostile_names_are_text(tab: Tab, live: Live) -> None:
    page = tab.page
    expect(page.locator("table.agents a.agent-link", has_text="<script>")).to_have_count(1)
    page.locator("table.agents a.agent-link", has_text="<script>").click()
    page.wait_for_url(re.compile(r".*/agent\?name=%3Cscript"))
    rendered(page)
    assert page.locator("h1 .agent-name").inner_text() == EVIL_AGENT
    assert EVIL_STRATEGY in page.locator("main p.muted").first.inner_text()
    shot(page, "hostile-agent")
    page.locator("table.recent a.run-link").first.click()
    page.wait_for_url(re.compile(r".*/run\?id="))
    assert page.locator("h1 .run-id").inner_text() == EVIL_RUN
    events = page.locator("table.events").inner_text()
    assert EVIL_SYMBOL in events and "</script><script>alert(5)</script>" in events
    assert page.locator("img, main script, svg script").count() == 0
    shot(page, "hostile-run")
    # dialogs stay empty: checked by the fixture


def test_tables_without_javascript(browser: Any, live: Live) -> None:
    t = open_tab(browser, live, js=False)
    page = t.page
    ov = live.api("/v1/dash/overview")
    expect(page.locator("table.agents tbody tr")).to_have_count(len(ov["agents"]))
    expect(page.locator("table.strategies tbody tr")).to_have_count(len(ov["strategies"]))
    page.select_option("#strategy-filter", ov["strategies"][0]["name"])
    page.click("#apply-filter")
    f = live.api("/v1/dash/overview", strategy=ov["strategies"][0]["name"])
    expect(page.locator("table.agents tbody tr")).to_have_count(len(f["agents"]))
    page.goto(f"{live.url}/agent?name={quote(ov['agents'][0]['name'])}")
    expect(page.locator("table.recent tbody tr")).to_have_count(15)
    expect(page.locator("[data-chart] noscript")).to_have_count(6)
    t.page.context.close()


def test_report_opens_offline(browser: Any, live: Live) -> None:
    out = live.tmp / "report.html"
    res = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "report", "--db",
                          str(live.tmp / "copy.duckdb"), "--out", str(out), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(out.as_uri())
    rendered(page, "#overview")
    # the scatter's text is the served page's size (the hidden section is redrawn when shown)
    page.goto(out.as_uri() + "#forensics")
    page.reload()
    rendered(page, "#forensics")
    assert text_scale(page, "#forensics [data-chart=forensics-scatter]") == pytest.approx(1, abs=0.02)
    page.goto(out.as_uri())
    page.locator("header a[href='#forensics']").first.click()
    rendered(page, "#forensics")
    assert text_scale(page, "#forensics [data-chart=forensics-scatter]") == pytest.approx(1, abs=0.02)
    page.goto(out.as_uri())
    rendered(page, "#overview")
    ov = live.api("/v1/dash/overview")
    expect(page.locator("#overview table.agents tbody tr")).to_have_count(len(ov["agents"]))
    shot(page, "report-overview")
    page.select_option("#overview #strategy-filter", ov["strategies"][0]["name"])
    visible = page.locator("#overview table.agents tbody tr:not(.hidden)")
    expect(visible).to_have_count(len(live.api("/v1/dash/overview",
                                               strategy=ov["strategies"][0]["name"])["agents"]))
    page.select_option("#overview #strategy-filter", "")
    page.locator("#overview table.agents a.agent-link").first.click()
    target = "section.page:target"
    rendered(page, target)
    doc = live.api("/v1/dash/agent", name=ov["agents"][0]["name"])
    assert vertices(page, "agent-pnl-bps")[0] == present(doc["series"]["cum_pnl_bps"])
    page.locator(f"{target} table.recent a.run-link").first.click()
    expect(page.locator(f"{target} h1 .run-id")).to_have_text(doc["runs"]["recent"][0]["run_id"])
    rendered(page, target)
    shot(page, "report-run")
    assert {r.split(":", 1)[0] for r in requests} == {"file"}
    assert dialogs == []
    ctx.close()
