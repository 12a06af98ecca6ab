from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.receiver import Receiver, free_port

SECRET = "whsec_test_0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port()).up()
    yield r
    r.down()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ALPHATRACE_TEST_HOOK_SECRET", SECRET)
    return SECRET
