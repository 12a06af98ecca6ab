"""The warm-up computes exactly the documents the pages then ask for (issue #16 item 14: the
keys are built in one function per page, so the two sides cannot drift apart)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import pytest

from alphatrace.server.dashboard import agent as agent_doc
from alphatrace.server.dashboard import overview as overview_doc
from alphatrace.server.dashboard.params import DEFAULT_POINTS, RunFilter, sort_key
from alphatrace.server.dashboard.routes import Dashboard
from alphatrace.server.dashboard.source import Source
from tests.dashboard.util import make_store


def test_pages_are_served_from_what_the_warm_up_computed(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "w.duckdb")

    @contextlib.contextmanager
    def connect() -> Iterator[duckdb.DuckDBPyConnection]:
        with store.cursor() as cur:  # the warm-up's jobs run on a thread of their own
            yield cur

    src = Source(connect, wait_s=None, side_wait_s=None)
    dash = Dashboard(src, sessions=None)  # type: ignore[arg-type]  # no page is signed into
    dash.warm(store.con)
    version = src.version(store.con)
    agents = [r[0] for r in store.con.execute(
        "SELECT DISTINCT agent FROM ledger WHERE agent IS NOT NULL ORDER BY 1").fetchall()]
    assert agents

    def recompute(*_: Any) -> NoReturn:
        raise AssertionError("a page recomputed what the warm-up should have kept")

    # Wait for the background jobs the warm-up queued, without computing anything here.
    src.memo.background(overview_doc.cache_key(version, RunFilter()), recompute, None)
    for a in agents:
        src.memo.background(agent_doc.cache_key(version, a, DEFAULT_POINTS),
                            recompute, None)
    monkeypatch.setattr(overview_doc, "rows", recompute)
    monkeypatch.setattr(agent_doc, "core", recompute)
    doc = overview_doc.overview(src, store.con, RunFilter(), sort_key(None, None))
    assert {r["name"] for r in doc["agents"]} == set(agents)
    for a in agents:
        assert agent_doc.agent(src, store.con, a, DEFAULT_POINTS)["summary"]
    src.verify(version, wait_s=None)  # the last queued jobs end before the store closes
    src.forensics(version, wait_s=None)
    store.close()
