"""SDK fixtures: every test gets its own spool folder and a fresh process-wide emitter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alphatrace.sdk import emitter
from alphatrace.sdk.sinks import SpoolSink
from alphatrace.sdk.spool import SpoolWriter


class ListSink:
    """Keeps what it is given, in order (the events as queued, before encoding)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.flushes = 0
        self.lock = threading.Lock()

    def write(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend(events)

    def tick(self, now: float) -> None:
        pass

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass

    def salvage(self) -> list[str]:
        return []

    def abandon(self) -> None:
        pass


@pytest.fixture(autouse=True)
def isolated_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("ALPHATRACE_URL", "ALPHATRACE_API_KEY", "ALPHATRACE_SINK", "ALPHATRACE_PRICES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALPHATRACE_SPOOL", str(tmp_path / "spool"))
    emitter.reset()
    yield
    emitter.shutdown()
    emitter.reset()


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[ListSink]:
    sink = ListSink()
    overflow = SpoolSink(SpoolWriter(tmp_path / "overflow"))
    em = emitter.Emitter(sink, overflow, poll_s=0.01)  # type: ignore[arg-type]
    emitter.install(em)
    yield sink
    em.close(5)
