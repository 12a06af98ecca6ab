"""When a failed delivery is tried again: exponential backoff with jitter, up to a horizon.

The n-th retry (n = attempts so far) waits d/2 + u·d/2 with d = min(initial·2^(n-1), max) and
u uniform in [0, 1): the wait grows, is never under half of d, and receivers that went down
together are not hit by every sender at the same instant when they come back.
"""

from __future__ import annotations

import datetime as dt
import random


def delay_s(attempts: int, initial_s: float, max_s: float, u: float) -> float:
    """Seconds before the next try after `attempts` (≥ 1) failed tries; `u` in [0, 1)."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    d = min(initial_s * 2.0 ** min(attempts - 1, 64), max_s)
    return d / 2 + u * d / 2


def next_attempt(now: dt.datetime, attempts: int, initial_s: float, max_s: float,
                 expires_at: dt.datetime, rng: random.Random | None = None
                 ) -> dt.datetime | None:
    """The time of the next try, or None when the horizon has passed (give up). A retry
    that would fall after the horizon happens at the horizon: the last chance."""
    if now >= expires_at:
        return None
    u = (rng or random).random()
    return min(now + dt.timedelta(seconds=delay_s(attempts, initial_s, max_s, u)), expires_at)
