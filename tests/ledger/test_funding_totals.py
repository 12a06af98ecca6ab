"""Funding running totals are one sequential double sum per market (`locate.funding_totals`),
not a DECIMAL window: the same bits on any engine (issue #18, parity fix)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger import locate
from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, add_bars, add_funding, at, leg, run_reconcile


def _by_hand(settlements: list[tuple[float, float, float]], entry_h: float, exit_h: float,
             entry_price: float) -> float:
    """−d·(C(exit) − C(entry))/entry·1e4 for a LONG, C(x) the running sum of rate·mark over
    settlements at or before x, added one settlement at a time in time order."""
    total, c_entry, c_exit = 0.0, 0.0, 0.0
    for h, rate, mark in sorted(settlements):
        total = total + rate * mark
        if h <= entry_h:
            c_entry = total
        if h <= exit_h:
            c_exit = total
    return -1 * (c_exit - c_entry) / entry_price * 1e4


@settings(max_examples=15)
@given(st.lists(st.tuples(st.floats(-0.003, 0.003), st.floats(90.0, 110.0)),
                min_size=1, max_size=30))
def test_funding_is_the_sequential_sum_of_its_settlements(raw: list[tuple[float, float]]
                                                          ) -> None:
    s = Store(":memory:")
    try:
        add_bars(s, "BTCUSDT", [100.0 + i * 0.37 for i in range(40)])
        settlements = [(float(i) + 0.5, r, m) for i, (r, m) in enumerate(raw)]
        add_funding(s, "BTCUSDT", [(at(h), r, m) for h, r, m in settlements])
        e = add_alpha(s, "r1", "BTCUSDT", "LONG", at(2), horizon_s=20 * 3600)
        run_reconcile(s)
        got = leg(s, e)["funding_bps"]
        want = _by_hand(settlements, 2.0, 22.0, 100.0 + 2 * 0.37)
        assert np.float64(got).tobytes() == np.float64(want).tobytes(), (got, want)
    finally:
        s.close()


def test_totals_restart_per_market_and_skip_missing_terms() -> None:
    rows = {"sid": np.array([1, 1, 1, 2, 2], dtype=np.int32),
            "us": np.array([1, 2, 3, 1, 5], dtype=np.int64),
            "rm": np.ma.masked_array([0.1, 0.2, 0.3, 1.0, 2.0],
                                     mask=[False, True, False, False, False])}
    t = locate.funding_totals(rows)
    assert t["i"].tolist() == [0, 1, 2, 3, 4]
    assert t["cum"].tolist() == [0.1, 0.1, 0.1 + 0.3, 1.0, 3.0]
