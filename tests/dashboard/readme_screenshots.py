"""Regenerate the README's screenshots (docs/img/overview.png, docs/img/agent.png) from the plain
demo store: `python -m tests.dashboard.readme_screenshots`. Needs /usr/bin/chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

from alphatrace.demo.pipeline import run_demo
from alphatrace.server.keys import create_key
from alphatrace.store import Store
from tests.dashboard.test_browser import ARGS, CHROMIUM, REPO, free_port

AGENT = "BreakoutMomentumAgent"  # the demo's cost-then-PnL break: marks on every chart


def main() -> None:
    out = REPO / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.duckdb"
        run_demo(db)
        with Store(db) as store:
            key = str(create_key(store, "screenshots", "read")["key"])
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tests.dashboard.serve_app", str(db), str(port)],
                                cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 860})
                page.goto(url + "/login")
                page.fill("#key", key)
                page.click("#login-submit")
                page.wait_for_url(url + "/")
                while httpx.get(url + "/v1/dash/forensics", headers={"Authorization": f"Bearer {key}"},
                                timeout=60).json()["status"] == "computing":
                    time.sleep(0.5)
                page.reload()
                expect(page.locator("[data-chart]:not([data-rendered])")).to_have_count(0)
                page.screenshot(path=str(out / "overview.png"))
                page.goto(f"{url}/agent?name={AGENT}")
                expect(page.locator("[data-chart]:not([data-rendered])")).to_have_count(0)
                page.set_viewport_size({"width": 1400, "height": 1180})
                page.screenshot(path=str(out / "agent.png"))
                browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"wrote {out / 'overview.png'} and {out / 'agent.png'}")


if __name__ == "__main__":
    main()
