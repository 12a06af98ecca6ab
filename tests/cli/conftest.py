"""A demo store built once for the CLI tests: real long agent names, real numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alphatrace.cli import common
from alphatrace.demo.pipeline import run_demo


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cli_demo") / "demo.duckdb"
    run_demo(db, runs_per_agent=120)
    return db


@pytest.fixture
def columns(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Set the terminal width the CLI renders for: `columns(80)`."""

    def set_width(n: int) -> None:
        monkeypatch.setattr(common.console, "_width", n)

    yield set_width
