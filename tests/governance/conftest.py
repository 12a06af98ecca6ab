"""The governance tests' shared fixture: an empty in-memory store (tests/rows.py builds
its ledger rows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import alphatrace as at
from alphatrace.api import Database


@pytest.fixture
def db() -> Iterator[Database]:
    d = at.connect(":memory:")
    yield d
    d.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[Database]:
    """One store per module, for hypothesis tests that reset it at each example."""
    d = at.connect(":memory:")
    yield d
    d.close()
