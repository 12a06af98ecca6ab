"""Backoff: exponential, jittered within [d/2, d], capped, and never past the horizon."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.notify.backoff import delay_s, next_attempt

T0 = dt.datetime(2025, 1, 1)


def test_by_hand() -> None:
    # initial 1 s: d = 1, 2, 4, 8 ...; u = 0 gives d/2, u -> 1 gives d
    assert [delay_s(n, 1.0, 3600.0, 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert delay_s(3, 1.0, 3600.0, 0.5) == 3.0
    assert delay_s(20, 1.0, 60.0, 0.0) == 30.0  # capped at max: 60 / 2
    with pytest.raises(ValueError):
        delay_s(0, 1.0, 60.0, 0.0)


@given(st.integers(1, 200), st.floats(0.01, 100), st.floats(0, 1, exclude_max=True))
def test_within_half_and_whole_of_the_capped_exponential(n: int, initial: float, u: float) -> None:
    cap = initial * 50
    d = min(initial * 2 ** min(n - 1, 64), cap)
    got = delay_s(n, initial, cap, u)
    assert d / 2 <= got <= d
    assert delay_s(n + 1, initial, cap, u) >= got  # never shorter for the same draw


@given(st.integers(1, 40), st.floats(0, 7200))
def test_never_after_the_horizon_and_none_once_past_it(n: int, elapsed: float) -> None:
    expires = T0 + dt.timedelta(hours=1)
    now = T0 + dt.timedelta(seconds=elapsed)
    nxt = next_attempt(now, n, 1.0, 600.0, expires, random.Random(n))
    if now >= expires:
        assert nxt is None
    else:
        assert nxt is not None and now < nxt <= expires
