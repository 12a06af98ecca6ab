"""Time-ordered run ids (RFC 9562 UUIDv7) without a third-party package.

Why v7: run ids sort by creation time, so a store ordered by run_id is roughly ordered by time
and ids from many processes never collide (74 random bits). Within one process, ids made in the
same millisecond stay strictly increasing: the 12-bit `rand_a` field is a counter seeded at
random each millisecond (RFC 9562 §6.2, method 1); if it overflows, the timestamp borrows the
next millisecond.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7_int(now_ns: int | None = None) -> int:
    """The 128-bit value of a new UUIDv7."""
    global _last_ms, _counter
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        if ms > _last_ms:
            _last_ms = ms
            _counter = (rand >> 64) & 0x7FF  # top bit clear leaves room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand_b = rand & ((1 << 62) - 1)
    return (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b


def uuid7(now_ns: int | None = None) -> str:
    """A new UUIDv7 in the canonical 8-4-4-4-12 text form."""
    h = f"{uuid7_int(now_ns):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_time_ms(value: str) -> int:
    """The Unix millisecond timestamp embedded in a UUIDv7 string."""
    return int(value.replace("-", "")[:12], 16)


def _reset_after_fork() -> None:
    # A forked child may inherit the lock held by another thread, and the parent's counter:
    # a fresh lock and a reseeded counter keep ids unique and the child live.
    global _last_ms, _lock
    _lock = threading.Lock()
    _last_ms = 0


os.register_at_fork(after_in_child=_reset_after_fork)


def reset_for_tests() -> None:
    """Forget the last timestamp (tests feed arbitrary times)."""
    _reset_after_fork()
