"""The binary searches behind pricing, on hand-made series given in scrambled order: positions
and values below are read off the inputs by eye, not computed by the code under test."""

from __future__ import annotations

import numpy as np

from alphatrace.ledger import locate
from alphatrace.ledger.locate import NONE

# Market 1 bars at 10, 20, 40 (30 missing); market 3 at 5, 6; market 2 has none.
# Given shuffled and interleaved, as a parallel scan returns them.
BARS = {"sid": np.array([3, 1, 1, 3, 1], dtype=np.int32),
        "us": np.array([6, 40, 10, 5, 20], dtype=np.int64),
        "open": np.array([36.0, 14.0, 11.0, 35.0, 12.0])}


def _series() -> locate.Series:
    return locate.Series.of(BARS["sid"], BARS["us"])


def test_first_at_or_after_within_the_market_only() -> None:
    s = _series()
    sid = np.array([1, 1, 1, 1, 1, 2, 3, 3], dtype=np.int64)
    t = np.array([0, 10, 11, 30, 41, 10, 6, 7], dtype=np.int64)
    pos = locate.at_or_after(s, sid, t, np.ones(len(t), dtype=bool))
    got = [(int(s.us[p]), float(BARS["open"][s.order[p]])) if p != NONE else None for p in pos]
    # 30 is a hole -> 40; after 40 nothing yet; market 2 has no bars; market 3 ends at 6
    assert got == [(10, 11.0), (10, 11.0), (20, 12.0), (40, 14.0), None, None, (6, 36.0), None]


def test_last_at_or_before_and_validity() -> None:
    s = _series()
    sid = np.array([1, 1, 1, 3, 3], dtype=np.int64)
    t = np.array([9, 10, 39, 100, 100], dtype=np.int64)
    valid = np.array([True, True, True, True, False])
    pos = locate.at_or_before(s, sid, t, valid)
    got = [int(s.us[p]) if p != NONE else None for p in pos]
    assert got == [None, 10, 20, 6, None]


def test_exits_enter_exit_and_find_settlements() -> None:
    narrow = {"k": np.array([7, 8, 9], dtype=np.int64),
              "sid": np.array([1, 3, 1], dtype=np.int32),
              "t_us": np.array([12, 5, 1], dtype=np.int64),
              "h_us": np.ma.masked_array(np.array([15, 1, 0]), mask=[False, False, True]),
              "include_funding": np.array([True, True, True])}
    settle = {"i": np.array([100, 101, 102], dtype=np.int64),
              "sid": np.array([1, 1, 3], dtype=np.int32),
              "us": np.array([25, 15, 6], dtype=np.int64)}
    s = _series()
    out = locate.exits(narrow, s, BARS["open"], settle)
    rows = {int(k): i for i, k in enumerate(out["k"])}

    def row(k: int) -> tuple[object, ...]:
        i = rows[k]
        return tuple(None if np.ma.is_masked(out[c][i]) else out[c][i].item()
                     for c in ("entry_us", "entry_price", "target_us", "exit_us", "exit_price",
                               "funded", "entry_settle", "exit_settle"))

    # k7: enters 20 @12, target 35 -> exits 40 @14; settlements 15 (i 101) and 25 (i 100)
    assert row(7) == (20, 12.0, 35, 40, 14.0, True, 101, 100)
    # k8: enters 5 @35, target 6 -> exits 6 @36; none at or before 5, the one at 6 (i 102)
    assert row(8) == (5, 35.0, 6, 6, 36.0, True, None, 102)
    # k9: no horizon -> no target, no exit, so no funding
    assert row(9) == (10, 11.0, None, None, None, False, None, None)
