"""Shared fixtures. Real market data lives in ../shared/data/market (beside the repo in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from alphatrace.store import Store

# No test may depend on the machine's speed (CI runs on a shared, loaded 2-core machine): no
# hypothesis deadline and no too_slow health check anywhere. CI also derandomizes, so a red run
# is reproducible, and prints the blob that replays a failing example.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

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
