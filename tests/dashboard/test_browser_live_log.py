"""The decisions page updates live from the decision stream (issue #20 item 3), in headless
Chromium: a record appended while the page is open appears at the top of the log, without a
reload, once, with the text of its fields. Its own server (a small store), so the shared demo
server of test_browser.py keeps its decision log unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.test_browser import ARGS, CHROMIUM, Live, expect, need_chromium, open_tab
from tests.policies import SEED_FLAG
from tests.server.conftest import Server, start_server
from tests.server.test_sizing import evidence
from tests.server.test_sizing_live import cli

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    need_chromium()
    # --no-pipeline and one evaluation (--once): the page must get exactly the records the
    # test appends (the live pipeline would add its own as the evidence arrives)
    srv = start_server(tmp_path, "--no-pipeline")
    yield srv
    srv.stop()


def decide(server: Server, agent: str, strategy: str) -> None:
    r = httpx.post(f"{server.url}/v1/events", json=evidence(agent, [-50.0] * 6, strategy),
                   headers=server.auth("ingest"), timeout=30)
    assert r.status_code == 200, r.text
    for args in (("reconcile",), ("gates", "evaluate", "--once", *SEED_FLAG)):
        done = cli(server.db.parent, *args, "--db", server.db.name)
        assert done.returncode == 0, done.stderr


def test_a_new_decision_appears_at_the_top_of_the_open_log(server: Server) -> None:
    decide(server, "A", "S1")  # A and S1 killed: seq 1, 2
    live = Live(server.url, server.keys["read"], server.db, server.db.parent)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            tab = open_tab(b, live)
            page: Any = tab.page
            page.goto(server.url + "/decisions")
            expect(page.locator("#decision-log tbody tr")).to_have_count(2)
            expect(page.locator("#decision-log[data-since='2']")).to_have_count(1)
            decide(server, "Z", "S9")  # Z and S9 killed: seq 3, 4, while the page is open
            new = page.locator("#decision-log tbody tr.live-new")
            expect(new).to_have_count(2, timeout=20_000)
            assert new.first.get_attribute("data-seq") == "4"  # newest on top
            expect(page.locator("#decision-log tbody tr")).to_have_count(4)
            cells = new.nth(1).locator("td").all_text_contents()
            assert cells[0] == "3" and "Z" in cells and "kill" in cells
            assert tab.errors == [] and tab.dialogs == []
        finally:
            b.close()
