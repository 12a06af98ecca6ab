"""UUIDv7: layout per RFC 9562, embedded time, strict order within a process."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.sdk import ids as u7


def test_layout_matches_the_stdlib_parser() -> None:
    s = u7.uuid7(now_ns=1_740_816_000_123_456_789)
    parsed = uuid.UUID(s)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert str(parsed) == s
    assert u7.uuid7_time_ms(s) >= 1_740_816_000_123


def test_same_millisecond_ids_strictly_increase() -> None:
    now = 1_900_000_000_000_000_000
    ids = [u7.uuid7(now_ns=now) for _ in range(5000)]  # 5000 > 4096: the counter overflows
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert u7.uuid7_time_ms(ids[0]) == now // 1_000_000
    assert u7.uuid7_time_ms(ids[-1]) <= now // 1_000_000 + 2


@given(st.lists(st.integers(min_value=2_000_000_000_000, max_value=2**47), min_size=1, max_size=50))
def test_time_is_embedded_and_order_follows_time(ms_list: list[int]) -> None:
    u7.reset_for_tests()
    for ms in sorted(set(ms_list)):
        s = u7.uuid7(now_ns=ms * 1_000_000)
        assert u7.uuid7_time_ms(s) == ms
    u7.reset_for_tests()
