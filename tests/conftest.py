"""Shared fixtures. Real market data lives in ../shared/data/market (beside the repo in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alphatrace.store import Store

REPO = Path(__file__).resolve().parents[1]
MARKET_DIR = REPO.parent / "shared" / "data" / "market"


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "t.duckdb")
    yield s
    s.close()


@pytest.fixture
def market_dir() -> Path:
    if not MARKET_DIR.is_dir():
        pytest.skip(f"shared market data not found at {MARKET_DIR}")
    return MARKET_DIR
