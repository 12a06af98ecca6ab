"""The simulator's vectorised paper PnL against hand-computed numbers and the scalar reference."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.demo.paper import legs, price_leg_bps
from tests.demo import reference as ref

H = 3_600_000
BARS = np.arange(0, 30 * H, H, dtype=np.int64)  # 30 hourly bars from t = 0


def _opens(*values: float) -> np.ndarray:
    o = np.full(len(BARS), 100.0)
    o[: len(values)] = values
    return o


def test_long_and_short_with_fees_by_hand() -> None:
    # entry 100, exit 110, f = 5 bps.
    # LONG: (110·0.9995)/(100·1.0005) − 1 = 109.945/100.05 − 1 = 0.0989005497…  → 989.0055 bps
    # SHORT: 1 − (110·1.0005)/(100·0.9995) = 1 − 110.055/99.95 = −0.1011005503… → −1011.0055 bps
    entry, exit_ = np.array([100.0, 100.0]), np.array([110.0, 110.0])
    got = price_leg_bps(np.array([1, -1]), entry, exit_)
    assert math.isclose(got[0], 989.005497, abs_tol=1e-5)
    assert math.isclose(got[1], -1011.005503, abs_tol=1e-5)
    assert price_leg_bps(np.array([0]), entry[:1], exit_[:1])[0] == 0.0


def test_entry_is_next_bar_open_and_exit_after_horizon() -> None:
    opens = _opens(100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110)
    # Signal 1 ms after bar 1 opened: entry is bar 2 (open 102); 8h later is bar 10 (open 110).
    lg = legs(BARS, opens, np.array([H + 1]), np.array([8 * H]), np.array([1]))
    assert lg.entry_idx[0] == 2 and lg.exit_idx[0] == 10
    assert lg.entry_price[0] == 102 and lg.exit_price[0] == 110
    expected = ((110 * 0.9995) / (102 * 1.0005) - 1) * 1e4
    assert math.isclose(lg.pnl_bps[0], expected, rel_tol=1e-12)
    # A signal exactly at a bar's open enters that bar.
    lg2 = legs(BARS, opens, np.array([3 * H]), np.array([H]), np.array([-1]))
    assert lg2.entry_idx[0] == 3 and lg2.exit_idx[0] == 4


def test_leg_without_exit_bar_stays_open() -> None:
    lg = legs(BARS, _opens(), np.array([25 * H]), np.array([8 * H]), np.array([1]))
    assert lg.entry_idx[0] == 25 and lg.exit_idx[0] == -1
    assert math.isnan(lg.pnl_bps[0]) and not lg.closed[0]


def test_funding_counts_settlements_in_entry_exit_half_open_interval() -> None:
    opens = _opens()  # flat 100: the price leg is fees only
    f_ms = np.array([2 * H, 4 * H, 10 * H], dtype=np.int64)
    rate = np.array([0.001, 0.002, 0.004])
    mark = np.array([100.0, np.nan, 100.0])  # NaN mark: falls back to the bar open (100)
    # Entry bar 2 (t = 2H), exit bar 10 (t = 10H): settlements at 4H and 10H count, 2H does not.
    lg = legs(BARS, opens, np.array([2 * H]), np.array([8 * H]), np.array([1]), f_ms, rate, mark)
    # LONG pays: −1 · (0.002·100 + 0.004·100) / 100 · 1e4 = −60 bps
    assert math.isclose(lg.funding_bps[0], -60.0, rel_tol=1e-12)
    fees = ((100 * 0.9995) / (100 * 1.0005) - 1) * 1e4
    assert math.isclose(lg.pnl_bps[0], fees - 60.0, rel_tol=1e-12)


@settings(max_examples=60)
@given(
    opens=st.lists(st.floats(10, 1e5), min_size=30, max_size=30),
    sig=st.lists(st.tuples(st.integers(0, 29 * H), st.sampled_from([H, 4 * H, 8 * H, 24 * H]),
                           st.sampled_from([-1, 0, 1])), min_size=1, max_size=20),
    rates=st.lists(st.floats(-0.003, 0.003), min_size=4, max_size=4),
)
def test_vectorised_matches_scalar_reference(
    opens: list[float], sig: list[tuple[int, int, int]], rates: list[float]
) -> None:
    f_ms = np.array([3 * H, 11 * H, 19 * H, 27 * H], dtype=np.int64)
    marks = np.array(opens)[[3, 11, 19, 27]] * 1.001
    s = ref.Series(BARS.tolist(), opens, f_ms.tolist(), rates, marks.tolist())
    t, h, d = (np.array(x, dtype=np.int64) for x in zip(*sig, strict=True))
    lg = legs(BARS, np.array(opens), t, h, d, f_ms, np.array(rates), marks)
    for i in range(len(sig)):
        want = ref.paper_bps(s, int(t[i]), int(h[i]), int(d[i]))
        if want is None:
            assert math.isnan(lg.pnl_bps[i])
        else:
            assert math.isclose(lg.pnl_bps[i], want, rel_tol=1e-9, abs_tol=1e-9)


@given(entry=st.floats(1, 1e6), exit_=st.floats(1, 1e6))
def test_long_plus_short_is_always_a_loss(entry: float, exit_: float) -> None:
    """Fees on both legs: holding both sides of the same move can never make money."""
    both = price_leg_bps(np.array([1, -1]), np.array([entry] * 2), np.array([exit_] * 2))
    assert both.sum() < 0
